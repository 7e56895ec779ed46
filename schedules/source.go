package schedules

import (
	"fmt"
	"strings"
	"time"

	"github.com/keyturn/keyturn/secret"
)

// Source is what Keyturn's schedules are built from: every secret it manages, in the
// order of the file they come from, with each one's cron spec if it has one. The command
// line reads it from the inventory; this package knows nothing of the inventory's format.
type Source struct {
	// Path names the file the secrets come from, for messages.
	Path string
	// CatchupWindow is how late a missed run may still start after an outage. It must be
	// positive: the inventory's default fills it.
	CatchupWindow time.Duration
	Secrets       []SourceSecret
}

// SourceSecret is one secret of a Source.
type SourceSecret struct {
	ID   secret.ID
	Kind string
	// Certificate marks a kind that expires: it also gets an hourly renewal check.
	Certificate bool
	// Schedule is the cron spec (cronspec rules), empty for none; Timezone is the zone
	// it is read in, empty for cronspec.DefaultTimezone; Window is the jitter.
	Schedule string
	Timezone string
	Window   time.Duration
	// Line is the secret's line in Path, for messages.
	Line int
}

// lookup finds a secret of the source.
func (s Source) lookup(id secret.ID) (SourceSecret, bool) {
	for _, sec := range s.Secrets {
		if sec.ID == id {
			return sec, true
		}
	}
	return SourceSecret{}, false
}

// SpecProblem is a cron spec of a Source that cronspec refuses, with its place.
type SpecProblem struct {
	File  string
	Line  int
	Field string
	Err   error
}

// SpecProblems are every refused spec of a Source; nothing is desired from it.
type SpecProblems []SpecProblem

// Error lists the problems one per line, as file:line: field: what is wrong.
func (p SpecProblems) Error() string {
	lines := make([]string, len(p))
	for i, sp := range p {
		lines[i] = fmt.Sprintf("%s:%d: %s: %v", sp.File, sp.Line, sp.Field, sp.Err)
	}
	return strings.Join(lines, "\n")
}
