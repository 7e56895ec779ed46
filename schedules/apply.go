package schedules

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/secret"
)

// identity is recorded by Temporal as the author of each schedule change.
const identity = "keyturn apply"

// maxUpdateAttempts bounds how often Apply retries an update that Temporal dropped
// because the schedule changed in between (a pause, another apply).
const maxUpdateAttempts = 5

// marker is the schedule's own memo, written once at creation (Temporal's workflow-backed
// schedules cannot change it later): it tells a person in the Web UI who manages the
// schedule. Ownership itself is decided by the ID prefix alone.
type marker struct {
	ManagedBy string    `json:"managedBy"`
	SecretID  secret.ID `json:"secretId"`
	Note      string    `json:"note"`
}

// Apply carries out a plan: it creates, updates and deletes schedules, leaving unchanged
// ones alone. It refuses any schedule ID without a Keyturn prefix. It is idempotent:
// a change already made (by an earlier apply, or concurrently) is recognised and not
// made twice, so applying one plan twice, or a new plan after it, changes nothing more.
// An update keeps the schedule's paused state and note. Apply goes on past a failed
// change and returns every failure, each naming its schedule.
func Apply(ctx context.Context, c client.Client, namespace string, plan Changes) error {
	_, err := ApplyMade(ctx, c, namespace, plan)
	return err
}

// ApplyMade is Apply that also returns the changes it made (not the unchanged ones), so
// that a caller can record them even when other changes failed.
func ApplyMade(ctx context.Context, c client.Client, namespace string, plan Changes) (Changes, error) {
	var errs []error
	var made Changes
	for _, ch := range plan {
		if err := applyOne(ctx, c, namespace, ch); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", ch.Action, ch.ScheduleID, err))
			continue
		}
		if ch.Action != Unchanged {
			made = append(made, ch)
		}
	}
	return made, errors.Join(errs...)
}

func applyOne(ctx context.Context, c client.Client, namespace string, ch Change) error {
	if _, ok := Managed(ch.ScheduleID); !ok {
		return fmt.Errorf("not a Keyturn schedule (IDs start with %s or %s); refusing to touch it", CronPrefix, RenewalPrefix)
	}
	if (ch.Action == Create || ch.Action == Update) && (ch.Desired == nil || ch.Desired.ScheduleID != ch.ScheduleID || ch.Desired.spec == nil) {
		return errors.New("the change carries no desired schedule; make plans with Plan")
	}
	switch ch.Action {
	case Unchanged:
		return nil
	case Create:
		return create(ctx, c, namespace, ch.Desired, true)
	case Update:
		return update(ctx, c, namespace, ch.Desired, true)
	case Delete:
		err := c.ScheduleClient().GetHandle(ctx, ch.ScheduleID).Delete(ctx)
		if isNotFound(err) {
			return nil // gone already
		}
		return err
	}
	return fmt.Errorf("unknown action %q", ch.Action)
}

// create makes the schedule; if it exists already (an earlier apply made it, or one is
// running now) it is brought in line with d instead, when fallback allows.
func create(ctx context.Context, c client.Client, namespace string, d *Desired, fallback bool) error {
	sched, err := d.schedule(nil)
	if err != nil {
		return err
	}
	m, err := plain.ToPayload(marker{ManagedBy: "keyturn", SecretID: d.SecretID, Note: "managed by `keyturn apply`: change the inventory, not this schedule"})
	if err != nil {
		return fmt.Errorf("encode memo: %w", err)
	}
	_, err = c.WorkflowService().CreateSchedule(ctx, &workflowservice.CreateScheduleRequest{
		Namespace:        namespace,
		ScheduleId:       d.ScheduleID,
		Schedule:         sched,
		Identity:         identity,
		RequestId:        uuid.NewString(),
		Memo:             &commonpb.Memo{Fields: map[string]*commonpb.Payload{memoKey: m}},
		SearchAttributes: d.searchAttributes(),
	})
	if alreadyExists(err) && fallback {
		return update(ctx, c, namespace, d, false)
	}
	return err
}

// update replaces the schedule's spec, action and policies with d's and keeps its state
// (paused, note) as Temporal holds it. The update carries the conflict token of the
// description it was built from, so one that races a pause is dropped by Temporal rather
// than resuming the schedule. Temporal drops it without an error, so each update is read
// back, and built again from a fresh description until the schedule matches d. A
// schedule deleted meanwhile is created again, when fallback allows.
func update(ctx context.Context, c client.Client, namespace string, d *Desired, fallback bool) error {
	for attempt := 0; ; attempt++ {
		desc, err := describe(ctx, c, namespace, d.ScheduleID)
		if isNotFound(err) && fallback {
			return create(ctx, c, namespace, d, false) // deleted meanwhile: the inventory still wants it
		}
		if err != nil {
			return err
		}
		if len(reasons(d, desc.GetSchedule())) == 0 {
			return nil
		}
		if attempt == maxUpdateAttempts {
			return fmt.Errorf("the schedule changed under every one of %d updates (paused, resumed or updated by someone else meanwhile); run apply again", maxUpdateAttempts)
		}
		sched, err := d.schedule(desc.GetSchedule().GetState())
		if err != nil {
			return err
		}
		_, err = c.WorkflowService().UpdateSchedule(ctx, &workflowservice.UpdateScheduleRequest{
			Namespace:        namespace,
			ScheduleId:       d.ScheduleID,
			Schedule:         sched,
			ConflictToken:    desc.GetConflictToken(),
			Identity:         identity,
			RequestId:        uuid.NewString(),
			SearchAttributes: d.searchAttributes(),
		})
		if err != nil {
			return err
		}
	}
}

// alreadyExists recognises Temporal's answer to creating a schedule whose ID is taken.
func alreadyExists(err error) bool {
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	var exists *serviceerror.AlreadyExists
	return errors.As(err, &started) || errors.As(err, &exists)
}
