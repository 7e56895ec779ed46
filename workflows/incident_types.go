package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// IncidentWorkflowName is the registered name of the incident playbook.
const IncidentWorkflowName = "Incident"

// IncidentWorkflowID is the workflow ID of an incident: one run per incident ID.
func IncidentWorkflowID(id string) string { return "incident/" + id }

// Incident modes.
const (
	// ModeContain revokes every existing credential of each secret at once (sessions
	// ended), then issues, tests and promotes a new one. Consumers fail in between.
	ModeContain = "contain"
	// ModeRotate rotates each secret with no grace period, then revokes the old credential.
	// Consumers that reload at once never fail.
	ModeRotate = "rotate"
)

// QueryProgress returns an IncidentProgress.
const QueryProgress = "progress"

// ErrTypeEmptyScope: the incident's selector matches no secret.
const ErrTypeEmptyScope = "KeyturnEmptyScope"

// Incident limits. A paged incident reads and rotates its scope in pages of secretsPerRun
// (pageSize), each page an IncidentPage child; an incident started before pages handles
// secretsPerRun secrets per run and then continues as new. Either way a history stays
// far below Temporal's 51,200 events and its open children below 2,000.
const (
	DefaultIncidentParallelism = 200
	MaxIncidentParallelism     = 1000
	secretsPerRun              = 1000
)

// IncidentInput starts an incident.
type IncidentInput struct {
	IncidentID string              `json:"incidentId"`
	Selector   activities.Selector `json:"selector"`
	Mode       string              `json:"mode"`
	// Reason and Operator are recorded in the report and on every rotation it starts.
	Reason   string `json:"reason"`
	Operator string `json:"operator"`
	// DryRun is refused: a dry run is planned by the CLI from the inventory and starts
	// no workflow. The field stays so an older client's dry run fails instead of being
	// read as a real incident.
	DryRun bool `json:"dryRun,omitempty"`
	// Planned is the scope the CLI planned from its own inventory and showed the
	// operator. The worker's inventory decides the scope; the report names every
	// difference (Unplanned, Unmatched) so the CLI can say so. Nil: no comparison.
	Planned []secret.ID `json:"planned,omitempty"`
	// ResumeSchedules resumes the paused schedules once every secret is done.
	ResumeSchedules bool `json:"resumeSchedules,omitempty"`
	// Parallelism bounds the secrets worked on at once; 0 means the default.
	Parallelism int `json:"parallelism,omitempty"`

	// Carry is the state a run hands to the next when it continues as new.
	Carry *IncidentCarry `json:"carry,omitempty"`
}

// IncidentCarry is what one run of a long incident hands to the next.
type IncidentCarry struct {
	StartedAt time.Time      `json:"startedAt"`
	Scope     []secret.ID    `json:"scope"`
	Kinds     []string       `json:"kinds"`
	Done      []SecretReport `json:"done"`
	// Contained holds, by scope index, when the first run's batch containment contained
	// each secret (ms after the start; 0: not contained there, its rotation does it).
	Contained []int64 `json:"contained,omitempty"`
	// Ended holds, by scope index, the uses the batch containment ended (described by
	// endedLines); empty where it ended none or the kind cannot tell.
	Ended [][]string `json:"ended,omitempty"`
	// Stopped lists the secrets whose rotation in flight the first run stopped.
	Stopped []secret.ID `json:"stopped,omitempty"`
	// ScopeDiff is how the worker's scope differed from the CLI's plan.
	ScopeDiff
	// Schedules is what the first run paused.
	Schedules PausedSchedules `json:"schedules"`
}

// ScopeDiff is how the scope the worker resolved differs from the one the CLI planned.
type ScopeDiff struct {
	// Unplanned are in the worker's scope but were not in the plan the operator saw.
	Unplanned []secret.ID `json:"unplanned,omitempty"`
	// Unmatched were in the plan but are not in the worker's scope: the incident did
	// not touch them.
	Unmatched []secret.ID `json:"unmatched,omitempty"`
}

// Empty reports whether the two scopes agreed.
func (d ScopeDiff) Empty() bool { return len(d.Unplanned) == 0 && len(d.Unmatched) == 0 }

// listed is d as a report carries it: each list cut at maxListedSecrets, with its full
// length in a line of its own at the end ("... and N more"), since the report travels as
// one payload.
func (d ScopeDiff) listed() ScopeDiff {
	cut := func(ids []secret.ID) []secret.ID {
		if len(ids) <= maxListedSecrets {
			return ids
		}
		return append(slices.Clip(ids[:maxListedSecrets]), secret.ID(fmt.Sprintf("... and %d more", len(ids)-maxListedSecrets)))
	}
	return ScopeDiff{Unplanned: cut(d.Unplanned), Unmatched: cut(d.Unmatched)}
}

// diffScope compares the worker's scope with the CLI's plan.
func diffScope(scope, planned []secret.ID) ScopeDiff {
	var d ScopeDiff
	if planned == nil {
		return d
	}
	// Lookups only, never ranged over: deterministic in a workflow.
	inScope, inPlan := set(scope), set(planned)
	for _, id := range scope {
		if !inPlan[id] {
			d.Unplanned = append(d.Unplanned, id)
		}
	}
	for _, id := range planned {
		if !inScope[id] {
			d.Unmatched = append(d.Unmatched, id)
		}
	}
	return d
}

func set(ids []secret.ID) map[secret.ID]bool {
	m := make(map[secret.ID]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// PausedSchedules is what an incident did to its scope's schedules. Only the schedules
// in Paused are ever resumed for it, and only while they still carry Note.
type PausedSchedules struct {
	// Note is the pause note the incident wrote; a schedule with another note was paused
	// or re-paused by someone else and is left alone.
	Note string `json:"note,omitempty"`
	// Paused are the schedules the incident paused.
	Paused []string `json:"paused,omitempty"`
	// KeptPaused were paused already, for another reason; the incident leaves them be.
	KeptPaused []string `json:"keptPaused,omitempty"`
	// Resumed are the schedules resumed at the end (--resume-schedules).
	Resumed []string `json:"resumed,omitempty"`
	// LeftPaused were paused by the incident but carried another note by its end, so
	// they were not resumed.
	LeftPaused []string `json:"leftPaused,omitempty"`
	// PauseFailed says a pause failed part way: schedules of the scope may be paused with
	// Note without being listed in Paused. Resuming then asks every schedule of the
	// scope and resumes those still carrying Note.
	PauseFailed bool `json:"pauseFailed,omitempty"`
	// ResumeCommand resumes the schedules the incident paused and has not resumed.
	ResumeCommand string `json:"resumeCommand,omitempty"`
	// A list longer than maxListedSchedules is cut there in a report (it travels as one
	// payload) and its full length is given here; 0 means the list is whole.
	PausedCount     int `json:"pausedCount,omitempty"`
	KeptPausedCount int `json:"keptPausedCount,omitempty"`
	ResumedCount    int `json:"resumedCount,omitempty"`
	LeftPausedCount int `json:"leftPausedCount,omitempty"`
}

// maxListedSchedules bounds each list of schedule IDs in a report, and the schedules one
// ResumeSchedules activity of a paged incident resumes.
const maxListedSchedules = 2000

// listed is s as a report carries it: each list cut at maxListedSchedules, with its
// full length beside it.
func (s PausedSchedules) listed() PausedSchedules {
	cut := func(ids []string, count *int) []string {
		if len(ids) <= maxListedSchedules {
			return ids
		}
		*count = len(ids)
		return ids[:maxListedSchedules:maxListedSchedules]
	}
	s.Paused = cut(s.Paused, &s.PausedCount)
	s.KeptPaused = cut(s.KeptPaused, &s.KeptPausedCount)
	s.Resumed = cut(s.Resumed, &s.ResumedCount)
	s.LeftPaused = cut(s.LeftPaused, &s.LeftPausedCount)
	return s
}

// Cut reports whether a list of s was cut for the report.
func (s PausedSchedules) Cut() bool {
	return s.PausedCount+s.KeptPausedCount+s.ResumedCount+s.LeftPausedCount > 0
}

// ResumeCommand is the command that resumes what an incident paused, and only that.
func ResumeCommand(incidentID string) string {
	return "keyturn schedules resume --incident " + incidentID
}

// ValidIncidentID reports whether id can name an incident: 1 to 100 characters without
// spaces or slashes (it becomes part of a workflow ID and an audit chain's name).
func ValidIncidentID(id string) bool {
	return id != "" && !strings.ContainsAny(id, " /\t\n\r") && len(id) <= 100
}

// Validate rejects input no retry can fix.
func (in IncidentInput) Validate() error {
	var problems []string
	if !ValidIncidentID(in.IncidentID) {
		problems = append(problems, "incident ID must be 1 to 100 characters without spaces or slashes")
	}
	if in.Selector.Empty() {
		problems = append(problems, "the selector is empty; select by id, tag, kind or prefix")
	}
	if in.Mode != ModeContain && in.Mode != ModeRotate {
		problems = append(problems, fmt.Sprintf("mode %q is unknown; use %s or %s", in.Mode, ModeContain, ModeRotate))
	}
	if strings.TrimSpace(in.Reason) == "" {
		problems = append(problems, "a reason is required for the audit trail")
	}
	if in.DryRun {
		problems = append(problems, "a dry run starts no workflow: `keyturn incident start --dry-run` plans it from the inventory")
	}
	if in.Parallelism < 0 || in.Parallelism > MaxIncidentParallelism {
		problems = append(problems, fmt.Sprintf("parallelism must be between 1 and %d", MaxIncidentParallelism))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

// PlannedSecret is one line of an incident's plan.
type PlannedSecret struct {
	activities.SecretInfo
	// Steps says what the incident will do to this secret, in order.
	Steps []string `json:"steps"`
}

// SecretReport is what an incident did to one secret. Times are milliseconds after the
// incident started, kept short because a report of 10,000 secrets travels as one payload.
type SecretReport struct {
	ID secret.ID `json:"id"`
	// Outcome is the rotation's outcome, "superseded" handling included.
	Outcome string `json:"o"`
	// ContainedMs is when every earlier credential was refused (contain mode).
	ContainedMs int64 `json:"c,omitempty"`
	// RotatedMs is when the new credential was tested and promoted.
	RotatedMs int64 `json:"r,omitempty"`
	// Superseded is true when a rotation in flight was stopped for the incident.
	Superseded bool `json:"s,omitempty"`
	// Batch is true when the secret was contained by the incident's batch containment
	// rather than by its own rotation.
	Batch bool   `json:"b,omitempty"`
	Error string `json:"e,omitempty"`
	// Ended names the uses (sessions) containment ended: user, application, client and
	// since when, at most maxEndedLines. An incident skips the revoke gate; this is who
	// it cut off.
	Ended []string `json:"u,omitempty"`
}

// maxEndedLines caps the uses a secret's report names: the report is carried from run to
// run of a long incident, so it stays small.
const maxEndedLines = 5

// endedLines describes uses for a SecretReport, capped at maxEndedLines.
func endedLines(uses []rotators.Use) []string {
	var out []string
	for i := range uses {
		if i == maxEndedLines {
			out = append(out, fmt.Sprintf("and %d more", len(uses)-maxEndedLines))
			break
		}
		out = append(out, DescribeUses(uses[i:i+1], 1))
	}
	return out
}

// IncidentReport is the result of an incident.
type IncidentReport struct {
	IncidentID string    `json:"incidentId"`
	Mode       string    `json:"mode"`
	Selector   string    `json:"selector"`
	Reason     string    `json:"reason"`
	Operator   string    `json:"operator"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	// Secrets reports each secret, in scope order; for a scope larger than
	// maxListedSecrets, only those that need a human.
	Secrets []SecretReport `json:"secrets,omitempty"`
	// Unlisted counts the secrets Secrets leaves out: rotated as planned, with their
	// records in the audit trail.
	Unlisted int `json:"unlisted,omitempty"`
	// Schedules says which schedules the incident paused, and how to resume them.
	Schedules PausedSchedules `json:"schedules"`
	IncidentProgress
}

// IncidentProgress is the answer to the progress query, and the report's summary.
type IncidentProgress struct {
	Phase     string `json:"phase"`
	Total     int    `json:"total"`
	Done      int    `json:"done"`
	Contained int    `json:"contained"`
	Rotated   int    `json:"rotated"`
	Failed    int    `json:"failed"`
	// NeedsHuman counts the secrets that ended in a state the incident cannot finish by
	// itself (IncidentReport.NeedingHuman): every failed one, and any not rotated.
	NeedsHuman int `json:"needsHuman"`
	// AllContainedMs and AllRotatedMs are when the last secret was contained and rotated,
	// in milliseconds after the start: the incident's speed.
	AllContainedMs int64 `json:"allContainedMs,omitempty"`
	AllRotatedMs   int64 `json:"allRotatedMs,omitempty"`
	// ScopeDiff is set when the worker's scope is not the plan the CLI showed.
	ScopeDiff
}

// Incident phases.
const (
	PhaseScope   = "scope"
	PhasePause   = "pausing schedules"
	PhaseContain = "containing"
	PhaseWorking = "working"
	PhaseResume  = "resuming schedules"
	PhaseDone    = "done"
)

// PlanIncident resolves a selector over the secrets of an inventory and says what an
// incident in mode will do to each: the one plan both the CLI (dry runs, confirmation)
// and the worker (the incident itself) build. An ID the inventory lacks is an error
// wrapping activities.ErrUnknownSecret; an empty scope is not an error here.
func PlanIncident(all []activities.SecretInfo, sel activities.Selector, mode string) ([]PlannedSecret, error) {
	scope, err := activities.Select(all, sel)
	if err != nil {
		return nil, err
	}
	return planOf(scope, mode), nil
}

// planOf adds the steps of mode to each secret of a resolved scope.
func planOf(scope []activities.SecretInfo, mode string) []PlannedSecret {
	out := make([]PlannedSecret, 0, len(scope))
	for _, s := range scope {
		out = append(out, PlannedSecret{SecretInfo: s, Steps: plannedSteps(mode)})
	}
	return out
}

// plannedSteps says in words what an incident in mode will do to a secret.
func plannedSteps(mode string) []string {
	if mode == ModeContain {
		return []string{
			"stop a rotation in flight (terminated, so its rollback cannot bring a credential back)",
			"revoke every existing version on the target at once and end their sessions",
			"pause its schedules (one paused for another reason stays as it is), then revoke again if a rotation ran meanwhile",
			"create, test and promote a new version",
		}
	}
	return []string{
		"pause its schedules (one paused for another reason stays as it is)",
		"stop a rotation in flight and revoke what it left (pending and previous versions)",
		"create, test and promote a new version with no grace period",
		"revoke the old version",
	}
}
