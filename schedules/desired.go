package schedules

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	schedulepb "go.temporal.io/api/schedule/v1"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/keyturn/keyturn/internal/durtext"
	"github.com/keyturn/keyturn/schedules/cronspec"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// Schedule ID prefixes. Keyturn reads, changes and deletes only schedules whose ID
// starts with one of them.
const (
	// CronPrefix starts the ID of a secret's cron schedule: keyturn/<secret-id>.
	CronPrefix = "keyturn/"
	// RenewalPrefix starts the ID of a certificate's renewal check: keyturn-renew/<secret-id>.
	RenewalPrefix = "keyturn-renew/"
)

// RenewalCheckEvery is how often a certificate is checked for renewal. An hour is far
// below any sensible renewal window (days), so a certificate is renewed at most an hour
// after it became due, at the cost of one short workflow an hour per certificate.
const RenewalCheckEvery = time.Hour

// recordFormat is part of every desired-state hash. Bump it when Keyturn changes what it
// writes into a schedule (the action, its options, the policies), so the next apply
// updates every schedule and says why.
//
// Format 2: each run starts with its KeyturnStep set and is told so
// (ScheduledInput.StartAttributes).
const recordFormat = 2

// CronScheduleID is the ID of a secret's cron schedule.
func CronScheduleID(id secret.ID) string { return CronPrefix + string(id) }

// RenewalScheduleID is the ID of a certificate secret's renewal-check schedule.
func RenewalScheduleID(id secret.ID) string { return RenewalPrefix + string(id) }

// SecretOf is the secret a Keyturn schedule ID belongs to; "" for another schedule.
func SecretOf(scheduleID string) secret.ID {
	for _, p := range []string{RenewalPrefix, CronPrefix} {
		if rest, ok := strings.CutPrefix(scheduleID, p); ok {
			return secret.ID(rest)
		}
	}
	return ""
}

// Managed reports whether a schedule ID is one Keyturn manages, and for which secret.
func Managed(scheduleID string) (secret.ID, bool) {
	for _, p := range []string{CronPrefix, RenewalPrefix} {
		if rest, ok := strings.CutPrefix(scheduleID, p); ok && rest != "" {
			return secret.ID(rest), true
		}
	}
	return "", false
}

// Desired is one schedule a Source asks for.
type Desired struct {
	// ScheduleID is keyturn/<secret-id> or keyturn-renew/<secret-id>.
	ScheduleID string
	SecretID   secret.ID
	Kind       string
	// RenewalCheck marks the hourly renewal check of a certificate.
	RenewalCheck bool
	// Spec is the cron spec as the inventory writes it; for a renewal check, a
	// description of the interval.
	Spec string
	// Timezone is the IANA zone the spec is read in.
	Timezone string
	// Window is the schedule's jitter: each run starts at a random point up to this long
	// after the spec's time.
	Window time.Duration
	// CatchupWindow is how late a missed run may still start after an outage.
	CatchupWindow time.Duration
	// File and Line place the secret in the inventory, for messages.
	File string
	Line int

	spec *schedulepb.ScheduleSpec
}

// Describe says when the schedule fires, in words.
func (d Desired) Describe() string {
	if d.RenewalCheck {
		return d.Spec
	}
	s := fmt.Sprintf("%q in %s", d.Spec, d.Timezone)
	if d.Window > 0 {
		s += ", window " + durtext.Short(d.Window)
	}
	return s
}

// Desire lists the schedules src asks for, in its order: each secret's cron schedule, then
// its renewal check if it is a certificate. It parses every spec again with
// cronspec.Parse, so a source built in code rather than read from a validated inventory
// is held to the same rules; the bad ones are reported as SpecProblems with their place,
// and nothing is desired from a source with any bad spec.
func Desire(src Source) ([]Desired, error) {
	if src.CatchupWindow <= 0 {
		return nil, fmt.Errorf("schedules of %s: the catch-up window must be positive, not %s", src.Path, src.CatchupWindow)
	}
	var out []Desired
	var problems SpecProblems
	for i, s := range src.Secrets {
		tz := s.Timezone
		if tz == "" {
			tz = cronspec.DefaultTimezone
		}
		base := Desired{SecretID: s.ID, Kind: s.Kind, Timezone: tz, CatchupWindow: src.CatchupWindow, File: src.Path, Line: s.Line}
		if s.Schedule != "" {
			parsed, err := cronspec.Parse(s.Schedule, tz)
			if err != nil {
				problems = append(problems, SpecProblem{File: src.Path, Line: s.Line, Field: fmt.Sprintf("secrets[%d].schedule", i), Err: err})
				continue
			}
			spec, ok := parsed.(*cron.SpecSchedule)
			if !ok {
				return nil, fmt.Errorf("schedule of %s: unexpected schedule type %T", s.ID, parsed)
			}
			d := base
			d.ScheduleID = CronScheduleID(s.ID)
			d.Spec = strings.TrimSpace(s.Schedule)
			d.Window = s.Window
			d.spec = &schedulepb.ScheduleSpec{
				StructuredCalendar: []*schedulepb.StructuredCalendarSpec{calendarOf(d.Spec, spec)},
				TimezoneName:       tz,
				Jitter:             durationpb.New(d.Window),
			}
			out = append(out, d)
		}
		if s.Certificate {
			d := base
			d.ScheduleID = RenewalScheduleID(s.ID)
			d.RenewalCheck = true
			d.Timezone = "UTC" // an interval is the same in every zone
			phase := renewalPhase(s.ID)
			d.Spec = fmt.Sprintf("renewal check every %s, at minute %d", durtext.Short(RenewalCheckEvery), int(phase.Minutes()))
			d.spec = &schedulepb.ScheduleSpec{
				Interval:     []*schedulepb.IntervalSpec{{Interval: durationpb.New(RenewalCheckEvery), Phase: durationpb.New(phase)}},
				TimezoneName: d.Timezone,
				Jitter:       durationpb.New(0),
			}
			out = append(out, d)
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return out, nil
}

// renewalPhase spreads the renewal checks of many certificates over the hour, by a
// stable hash of the secret ID, instead of starting them all on the hour.
func renewalPhase(id secret.ID) time.Duration {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return time.Duration(h.Sum32()%60) * time.Minute
}

// record is what Keyturn writes into a schedule's action memo: the desired state it was
// built from, in words, and a hash of it. Plan compares hashes to find what changed and
// the fields to say how. (Temporal's workflow-backed schedules refuse memo updates, so
// the record lives in the action, which every update replaces.)
type record struct {
	Format        int       `json:"format"`
	SecretID      secret.ID `json:"secretId"`
	Kind          string    `json:"kind,omitempty"`
	RenewalCheck  bool      `json:"renewalCheck,omitempty"`
	Spec          string    `json:"spec"`
	Timezone      string    `json:"timezone"`
	Window        string    `json:"window"`
	CatchupWindow string    `json:"catchupWindow"`
	Hash          string    `json:"hash"`
}

// memoKey names the record in the action memo.
const memoKey = "keyturn"

// record returns the desired state's record with its hash.
func (d Desired) record() record {
	r := record{
		Format:        recordFormat,
		SecretID:      d.SecretID,
		Kind:          d.Kind,
		RenewalCheck:  d.RenewalCheck,
		Spec:          d.Spec,
		Timezone:      d.Timezone,
		Window:        durtext.Short(d.Window),
		CatchupWindow: durtext.Short(d.CatchupWindow),
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%d\x00%s\x00%s\x00%t\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s",
		r.Format, r.SecretID, r.Kind, r.RenewalCheck, r.Spec, r.Timezone, r.Window, r.CatchupWindow,
		workflows.ScheduledWorkflowName, workflows.TaskQueue))
	r.Hash = hex.EncodeToString(sum[:8])
	return r
}

// changes lists, in words, how the desired record differs from the one a schedule holds.
func (r record) changes(was record) []string {
	var out []string
	diff := func(what, from, to string) {
		if from != to {
			out = append(out, fmt.Sprintf("%s changed from %s to %s", what, from, to))
		}
	}
	diff("spec", fmt.Sprintf("%q", was.Spec), fmt.Sprintf("%q", r.Spec))
	diff("timezone", was.Timezone, r.Timezone)
	diff("window (jitter)", was.Window, r.Window)
	diff("catch-up window", was.CatchupWindow, r.CatchupWindow)
	diff("kind", fmt.Sprintf("%q", was.Kind), fmt.Sprintf("%q", r.Kind))
	if len(out) == 0 && was.Format != r.Format {
		out = append(out, fmt.Sprintf("this Keyturn writes schedules in format %d, the schedule has format %d", r.Format, was.Format))
	}
	if len(out) == 0 {
		out = append(out, "the schedule's definition changed")
	}
	return out
}

// Next returns the next n times the schedule is due after from, before jitter, as the
// inventory defines them: for a cron spec, cronspec.Preview's times in the spec's
// zone; for a renewal check, the hourly interval at its phase.
func (d Desired) Next(from time.Time, n int) ([]time.Time, error) {
	if !d.RenewalCheck {
		return cronspec.Preview(d.Spec, d.Timezone, from, n)
	}
	// Temporal's interval times are the Unix epoch plus whole intervals plus the phase.
	every, phase := RenewalCheckEvery, renewalPhase(d.SecretID)
	t := from.UTC().Truncate(every).Add(phase)
	if !t.After(from) {
		t = t.Add(every)
	}
	out := make([]time.Time, 0, max(n, 0))
	for range max(n, 0) {
		out = append(out, t)
		t = t.Add(every)
	}
	return out, nil
}
