package schedules

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// ErrNotFound means Temporal has no schedule with the ID.
var ErrNotFound = errors.New("no such schedule")

// Status is one Keyturn schedule as Temporal holds it now.
type Status struct {
	ScheduleID string    `json:"scheduleId"`
	SecretID   secret.ID `json:"secretId"`
	// RenewalCheck marks a certificate's hourly renewal check.
	RenewalCheck bool `json:"renewalCheck,omitempty"`
	// Spec is the cron spec the schedule was built from, as the inventory wrote it.
	Spec     string `json:"spec"`
	Timezone string `json:"timezone"`
	// Window is the schedule's jitter.
	Window time.Duration `json:"window"`
	Paused bool          `json:"paused"`
	Note   string        `json:"note,omitempty"`
	// NextRuns are Temporal's next action times, jitter included.
	NextRuns []time.Time `json:"nextRuns"`
	// Actions counts the runs started so far; SkippedOverlap those not started because
	// the previous run was still going; MissedCatchup those dropped after an outage
	// longer than the catch-up window.
	Actions        int `json:"actions"`
	SkippedOverlap int `json:"skippedOverlap"`
	MissedCatchup  int `json:"missedCatchup"`
	// LastRun is the most recent run, nil before the first.
	LastRun *Run `json:"lastRun,omitempty"`
}

// Run is one run a schedule started.
type Run struct {
	WorkflowID  string    `json:"workflowId"`
	RunID       string    `json:"runId"`
	ScheduledAt time.Time `json:"scheduledAt"`
	StartedAt   time.Time `json:"startedAt"`
	// Status is the run's workflow status: running, completed, failed, ...
	Status string `json:"status"`
	// Outcome is what the run did, from its KeyturnStep search attribute: rotated,
	// skipped, not_due, rolled_back, ...; while running, the step it is on.
	Outcome string `json:"outcome,omitempty"`
}

// List returns every Keyturn schedule, sorted by ID, each read with its own describe so
// paused states and notes are current (Temporal's schedule list may lag behind).
func List(ctx context.Context, c client.Client) ([]Status, error) {
	ids, err := listIDs(ctx, c)
	if err != nil {
		return nil, err
	}
	out := make([]Status, 0, len(ids))
	for _, id := range ids {
		st, err := Get(ctx, c, id)
		if errors.Is(err, ErrNotFound) {
			continue // deleted since it was listed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Get describes one Keyturn schedule by its ID; an error wrapping ErrNotFound when
// Temporal has none.
func Get(ctx context.Context, c client.Client, scheduleID string) (Status, error) {
	secretID, ok := Managed(scheduleID)
	if !ok {
		return Status{}, fmt.Errorf("%s is not a Keyturn schedule ID (IDs start with %s or %s)", scheduleID, CronPrefix, RenewalPrefix)
	}
	d, err := describeSchedule(ctx, c, scheduleID)
	if err != nil {
		return Status{}, err
	}
	st := Status{
		ScheduleID:     scheduleID,
		SecretID:       secretID,
		RenewalCheck:   strings.HasPrefix(scheduleID, RenewalPrefix),
		NextRuns:       d.Info.NextActionTimes,
		Actions:        d.Info.NumActions,
		SkippedOverlap: d.Info.NumActionsSkippedOverlap,
		MissedCatchup:  d.Info.NumActionsMissedCatchupWindow,
	}
	if s := d.Schedule.State; s != nil {
		st.Paused, st.Note = s.Paused, s.Note
	}
	if spec := d.Schedule.Spec; spec != nil {
		st.Timezone, st.Window = spec.TimeZoneName, spec.Jitter
		if len(spec.Calendars) == 1 {
			st.Spec = spec.Calendars[0].Comment
		}
	}
	if a, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction); ok {
		if p, ok := a.Memo[memoKey].(*commonpb.Payload); ok {
			var r record
			if plain.FromPayload(p, &r) == nil && r.Spec != "" {
				st.Spec = r.Spec
			}
		}
	}
	if n := len(d.Info.RecentActions); n > 0 {
		st.LastRun = lastRun(ctx, c, d.Info.RecentActions[n-1])
	}
	return st, nil
}

// NextRun is when a Keyturn schedule starts its next run (Temporal's next action time,
// jitter included) and whether it is paused; the time is zero when the schedule is paused
// or has no run left. It reads only the schedule's description: the age sweep asks it
// for every scheduled secret on every pass. An error wraps ErrNotFound when Temporal has
// no such schedule (the inventory's was never applied).
func NextRun(ctx context.Context, c client.Client, scheduleID string) (next time.Time, paused bool, err error) {
	d, err := describeSchedule(ctx, c, scheduleID)
	if err != nil {
		return time.Time{}, false, err
	}
	if s := d.Schedule.State; s != nil && s.Paused {
		return time.Time{}, true, nil
	}
	if len(d.Info.NextActionTimes) > 0 {
		next = d.Info.NextActionTimes[0]
	}
	return next, false, nil
}

// describeSchedule reads a schedule's description; an error wrapping ErrNotFound when
// Temporal has no schedule with the ID.
func describeSchedule(ctx context.Context, c client.Client, scheduleID string) (*client.ScheduleDescription, error) {
	d, err := c.ScheduleClient().GetHandle(ctx, scheduleID).Describe(ctx)
	if isNotFound(err) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, scheduleID)
	}
	if err != nil {
		return nil, fmt.Errorf("describe schedule %s: %w", scheduleID, err)
	}
	return d, nil
}

// lastRun reads how a run went. What cannot be read (the run's history was already
// removed by the namespace's retention) is left empty rather than failing the listing.
func lastRun(ctx context.Context, c client.Client, a client.ScheduleActionResult) *Run {
	r := &Run{ScheduledAt: a.ScheduleTime, StartedAt: a.ActualTime}
	if a.StartWorkflowResult == nil {
		return r
	}
	r.WorkflowID, r.RunID = a.StartWorkflowResult.WorkflowID, a.StartWorkflowResult.FirstExecutionRunID
	resp, err := c.DescribeWorkflowExecution(ctx, r.WorkflowID, r.RunID)
	if err != nil {
		return r
	}
	info := resp.GetWorkflowExecutionInfo()
	r.Status = strings.ToLower(strings.TrimPrefix(info.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_"))
	if p := info.GetSearchAttributes().GetIndexedFields()[workflows.SearchAttrStep.GetName()]; p != nil {
		_ = plain.FromPayload(p, &r.Outcome)
	}
	return r
}
