package fake

import (
	"context"
	"fmt"
	"sync"

	"github.com/keyturn/keyturn/rotators"
)

// WithUsage is the fake whose target also reports whether a version is in use
// (rotators.UsageReporter), with uses the test controls: open sessions per role, as
// pg_stat_activity would list them. The plain Rotator reports nothing, like a kind that
// cannot tell.
type WithUsage struct {
	*Rotator

	mu     sync.Mutex
	uses   map[string][]rotators.Use // role -> open uses
	checks int
}

var _ rotators.UsageReporter = (*WithUsage)(nil)

// NewWithUsage returns a fake target in the given mode that reports uses.
func NewWithUsage(mode Mode) *WithUsage { return ReportingUses(New(mode)) }

// ReportingUses wraps r (sharing its roles and passwords) so that it reports uses.
func ReportingUses(r *Rotator) *WithUsage {
	return &WithUsage{Rotator: r, uses: map[string][]rotators.Use{}}
}

// SetUses makes InUse report uses for role until changed; none makes the role idle.
func (f *WithUsage) SetUses(role string, uses ...rotators.Use) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.uses[role] = uses
}

// UsageChecks counts InUse calls.
func (f *WithUsage) UsageChecks() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.checks
}

// InUse reports the uses set with SetUses for the version's role. When the kept version
// shares the role (Shared mode) only uses that began before req.Since count, as only a
// real target's sessions opened before the promotion can hold the old password.
func (f *WithUsage) InUse(_ context.Context, req rotators.UsageRequest) (rotators.Usage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks++
	role := req.Version.Metadata["role"]
	shared := req.Keep != nil && req.Keep.Metadata["role"] == role
	var out []rotators.Use
	for _, u := range f.uses[role] {
		if shared && !u.Since.Before(req.Since) {
			continue
		}
		out = append(out, u)
	}
	return rotators.Usage{Uses: out, Checked: fmt.Sprintf("fake sessions of role %s", role)}, nil
}
