package schedules

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	schedulepb "go.temporal.io/api/schedule/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/secret"
)

// Action is what Apply does to one schedule.
type Action string

// Actions of a plan.
const (
	Create    Action = "create"
	Update    Action = "update"
	Delete    Action = "delete"
	Unchanged Action = "unchanged"
)

// Change is one schedule in a plan: what Apply would do to it and why.
type Change struct {
	Action     Action
	ScheduleID string
	SecretID   secret.ID
	// Reasons say why, in words ("spec changed from ... to ...", "no longer in the
	// inventory"); empty for a create (the schedule is new) and when unchanged.
	Reasons []string
	// Paused and Note are the schedule's state in Temporal now. An update keeps them.
	Paused bool
	Note   string
	// Desired is what the inventory asks for; nil for a delete.
	Desired *Desired
}

// String renders the change as one line of a plan.
func (c Change) String() string {
	sign := map[Action]string{Create: "+", Update: "~", Delete: "-", Unchanged: "="}[c.Action]
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-9s %s", sign, c.Action, c.ScheduleID)
	switch {
	case len(c.Reasons) > 0:
		b.WriteString(": " + strings.Join(c.Reasons, "; "))
	case c.Desired != nil:
		b.WriteString(": " + c.Desired.Describe())
	}
	switch {
	case c.Paused && c.Action == Delete:
		fmt.Fprintf(&b, " [paused: %q]", c.Note)
	case c.Paused:
		fmt.Fprintf(&b, " [paused: %q; stays paused]", c.Note)
	}
	return b.String()
}

// Changes is a plan: one entry per schedule the inventory asks for, in inventory order,
// then the schedules Keyturn would delete, by ID.
type Changes []Change

// Pending counts the changes Apply would make.
func (cs Changes) Pending() int {
	n := 0
	for _, c := range cs {
		if c.Action != Unchanged {
			n++
		}
	}
	return n
}

// Count counts the changes with the action.
func (cs Changes) Count(a Action) int {
	n := 0
	for _, c := range cs {
		if c.Action == a {
			n++
		}
	}
	return n
}

// Summary counts the changes by action, in words.
func (cs Changes) Summary() string {
	return fmt.Sprintf("%d to create, %d to update, %d to delete, %d unchanged", cs.Count(Create), cs.Count(Update), cs.Count(Delete), cs.Count(Unchanged))
}

// Plan compares the schedules src asks for with those Temporal holds and returns what
// Apply would do. It changes nothing. Desired schedules are read one by one with
// DescribeSchedule, which is always current; schedules to delete are found through
// Temporal's schedule list, which is eventually consistent, so a schedule created a
// moment ago may only be found (and deleted) by the next plan. namespace is the one the
// client is connected to: schedule updates need Temporal's own API, which names it.
func Plan(ctx context.Context, c client.Client, namespace string, src Source) (Changes, error) {
	desired, err := Desire(src)
	if err != nil {
		return nil, err
	}
	var out Changes
	wanted := map[string]bool{}
	for i := range desired {
		d := &desired[i]
		wanted[d.ScheduleID] = true
		ch, err := planOne(ctx, c, namespace, d)
		if err != nil {
			return nil, err
		}
		out = append(out, ch)
	}

	existing, err := listIDs(ctx, c)
	if err != nil {
		return nil, err
	}
	for _, id := range existing {
		if wanted[id] {
			continue
		}
		desc, err := describe(ctx, c, namespace, id)
		if isNotFound(err) {
			continue // deleted since it was listed
		}
		if err != nil {
			return nil, err
		}
		secretID, _ := Managed(id)
		out = append(out, Change{
			Action:     Delete,
			ScheduleID: id,
			SecretID:   secretID,
			Reasons:    []string{deleteReason(src, id, secretID)},
			Paused:     desc.GetSchedule().GetState().GetPaused(),
			Note:       desc.GetSchedule().GetState().GetNotes(),
		})
	}
	return out, nil
}

// planOne compares one desired schedule with Temporal's.
func planOne(ctx context.Context, c client.Client, namespace string, d *Desired) (Change, error) {
	ch := Change{ScheduleID: d.ScheduleID, SecretID: d.SecretID, Desired: d}
	desc, err := describe(ctx, c, namespace, d.ScheduleID)
	if isNotFound(err) {
		ch.Action = Create
		return ch, nil
	}
	if err != nil {
		return Change{}, err
	}
	got := desc.GetSchedule()
	ch.Paused, ch.Note = got.GetState().GetPaused(), got.GetState().GetNotes()
	ch.Reasons = reasons(d, got)
	ch.Action = Unchanged
	if len(ch.Reasons) > 0 {
		ch.Action = Update
	}
	return ch, nil
}

// reasons says why the schedule Temporal holds must be updated to d; none means it is in
// sync. A changed inventory is reported from the records; only when the records agree are
// changes made behind Keyturn's back looked for, so each update gives one kind of reason.
func reasons(d *Desired, got *schedulepb.Schedule) []string {
	want := d.record()
	has, ok := recordOf(got)
	switch {
	case !ok:
		return []string{"has no Keyturn record (it was made outside keyturn apply); apply takes it over"}
	case has.Hash != want.Hash:
		return want.changes(has)
	}
	return d.drift(got)
}

// deleteReason says why a schedule is no longer wanted.
func deleteReason(src Source, scheduleID string, id secret.ID) string {
	s, ok := src.lookup(id)
	switch {
	case !ok:
		return fmt.Sprintf("%s is no longer in the inventory", id)
	case strings.HasPrefix(scheduleID, RenewalPrefix):
		return fmt.Sprintf("%s is no longer a certificate kind (kind %q)", id, s.Kind)
	default:
		return fmt.Sprintf("%s no longer has a schedule in the inventory", id)
	}
}

// describe reads a schedule through Temporal's API, which returns its conflict token.
func describe(ctx context.Context, c client.Client, namespace, id string) (*workflowservice.DescribeScheduleResponse, error) {
	resp, err := c.WorkflowService().DescribeSchedule(ctx, &workflowservice.DescribeScheduleRequest{Namespace: namespace, ScheduleId: id})
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("describe schedule %s: %w", id, err)
	}
	return resp, err
}

// listIDs lists the IDs of the schedules Keyturn manages, sorted.
func listIDs(ctx context.Context, c client.Client) ([]string, error) {
	it, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 1000})
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	var ids []string
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("list schedules: %w", err)
		}
		if _, ok := Managed(e.ID); ok {
			ids = append(ids, e.ID)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

func isNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}
