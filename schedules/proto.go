package schedules

import (
	"bytes"
	"fmt"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	schedulepb "go.temporal.io/api/schedule/v1"
	sdkpb "go.temporal.io/api/sdk/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/keyturn/keyturn/internal/durtext"
	"github.com/keyturn/keyturn/workflows"
)

// Schedules are written with Temporal's API directly, not the SDK's schedule client,
// because the SDK's Update can send neither a conflict token (so a concurrent pause
// would be undone) nor new memo fields. Its payloads (the action's input, memo and
// summary) are plain JSON, deliberately not run through the payload codec: they hold
// the secret ID, which the schedule ID shows in the clear anyway, and the record of the
// spec, and anyone who can read the schedule must be able to read why it fires.
var plain = converter.GetDefaultDataConverter()

// schedule builds the schedule Temporal should hold for d, with the given state (a new
// schedule's, or the paused state and note an update keeps).
func (d Desired) schedule(state *schedulepb.ScheduleState) (*schedulepb.Schedule, error) {
	in := d.input()
	input, err := plain.ToPayloads(in)
	if err != nil {
		return nil, fmt.Errorf("encode input: %w", err)
	}
	rec, err := plain.ToPayload(d.record())
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	summary := "Scheduled rotation of " + string(d.SecretID)
	if d.RenewalCheck {
		summary = "Renewal check of " + string(d.SecretID)
	}
	summaryPayload, err := plain.ToPayload(summary)
	if err != nil {
		return nil, fmt.Errorf("encode summary: %w", err)
	}
	if state == nil {
		state = &schedulepb.ScheduleState{}
	}
	return &schedulepb.Schedule{
		Spec: d.spec,
		Action: &schedulepb.ScheduleAction{Action: &schedulepb.ScheduleAction_StartWorkflow{StartWorkflow: &workflowpb.NewWorkflowExecutionInfo{
			// Temporal appends the nominal time to the ID of each run.
			WorkflowId:   d.ScheduleID,
			WorkflowType: &commonpb.WorkflowType{Name: workflows.ScheduledWorkflowName},
			TaskQueue:    &taskqueuepb.TaskQueue{Name: workflows.TaskQueue, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
			Input:        input,
			Memo:         &commonpb.Memo{Fields: map[string]*commonpb.Payload{memoKey: rec}},
			// The run's own attributes from its start (in.StartAttributes), so the run
			// need not send them.
			SearchAttributes: &commonpb.SearchAttributes{IndexedFields: d.runAttributes()},
			UserMetadata:     &sdkpb.UserMetadata{Summary: summaryPayload},
		}}},
		Policies: &schedulepb.SchedulePolicies{
			// A run waits for its rotation, so SKIP means: while a rotation this schedule
			// started is still running, the next time passes without a second one.
			OverlapPolicy: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
			CatchupWindow: durationpb.New(d.CatchupWindow),
		},
		State: state,
	}, nil
}

// runAttributes are the search attributes the action sets on each run, the run's secret
// and first step: the run does not set them again (ScheduledInput.StartAttributes).
func (d Desired) runAttributes() map[string]*commonpb.Payload {
	return map[string]*commonpb.Payload{
		workflows.SearchAttrSecretID.GetName(): keyword(string(d.SecretID)),
		workflows.SearchAttrStep.GetName():     keyword(d.input().FirstStep()),
	}
}

// input is what the schedule's action passes to each run.
func (d Desired) input() workflows.ScheduledInput {
	return workflows.ScheduledInput{SecretID: d.SecretID, RenewalCheck: d.RenewalCheck, StartAttributes: true}
}

// searchAttributes are the schedule's own, so the Web UI's schedule list can be
// filtered by secret and kind.
func (d Desired) searchAttributes() *commonpb.SearchAttributes {
	fields := map[string]*commonpb.Payload{workflows.SearchAttrSecretID.GetName(): keyword(string(d.SecretID))}
	if d.Kind != "" {
		fields[workflows.SearchAttrKind.GetName()] = keyword(d.Kind)
	}
	return &commonpb.SearchAttributes{IndexedFields: fields}
}

// keyword encodes a Keyword search attribute value as the SDK does.
func keyword(v string) *commonpb.Payload {
	p, err := plain.ToPayload(v)
	if err != nil {
		// A string always encodes; this cannot happen.
		panic(fmt.Sprintf("encode search attribute: %v", err))
	}
	p.Metadata["type"] = []byte(enumspb.INDEXED_VALUE_TYPE_KEYWORD.String())
	return p
}

// recordOf reads the record from a schedule's action memo; ok is false when the
// schedule has none Keyturn can read (made by hand, or by another tool).
func recordOf(s *schedulepb.Schedule) (record, bool) {
	p := s.GetAction().GetStartWorkflow().GetMemo().GetFields()[memoKey]
	if p == nil {
		return record{}, false
	}
	var r record
	if err := plain.FromPayload(p, &r); err != nil || r.Hash == "" {
		return record{}, false
	}
	return r, true
}

// drift lists, in words, where the schedule Temporal holds no longer matches what
// Keyturn wrote for d: changes made by hand in the Web UI or with the temporal CLI.
// The schedule's state (paused, note) is not compared: it belongs to operators.
func (d Desired) drift(got *schedulepb.Schedule) []string {
	var out []string
	changed := func(what, has, want string) {
		out = append(out, fmt.Sprintf("%s was changed outside keyturn apply (Temporal has %s, the inventory wants %s)", what, has, want))
	}
	spec := got.GetSpec()
	if !sameSpec(spec, d.spec) {
		has := "another spec"
		if cals := spec.GetStructuredCalendar(); len(cals) == 1 && cals[0].GetComment() != "" {
			has = fmt.Sprintf("%q", cals[0].GetComment())
		}
		changed("the spec", has, fmt.Sprintf("%q", d.Spec))
	}
	if tz := spec.GetTimezoneName(); tz != d.spec.GetTimezoneName() {
		changed("the timezone", fmt.Sprintf("%q", tz), d.spec.GetTimezoneName())
	}
	if j := spec.GetJitter().AsDuration(); j != d.spec.GetJitter().AsDuration() {
		changed("the window (jitter)", durtext.Short(j), durtext.Short(d.spec.GetJitter().AsDuration()))
	}
	pol := got.GetPolicies()
	if o := pol.GetOverlapPolicy(); o != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP && o != enumspb.SCHEDULE_OVERLAP_POLICY_UNSPECIFIED {
		changed("the overlap policy", o.String(), "SKIP")
	}
	if cw := pol.GetCatchupWindow().AsDuration(); cw != d.CatchupWindow {
		changed("the catch-up window", durtext.Short(cw), durtext.Short(d.CatchupWindow))
	}
	if pol.GetPauseOnFailure() {
		changed("pause-on-failure", "on", "off")
	}
	sw := got.GetAction().GetStartWorkflow()
	if sw == nil {
		return append(out, "the action was changed outside keyturn apply (it no longer starts a workflow)")
	}
	if id := sw.GetWorkflowId(); id != d.ScheduleID {
		changed("the workflow ID", fmt.Sprintf("%q", id), fmt.Sprintf("%q", d.ScheduleID))
	}
	if t := sw.GetWorkflowType().GetName(); t != workflows.ScheduledWorkflowName {
		changed("the workflow type", t, workflows.ScheduledWorkflowName)
	}
	if q := sw.GetTaskQueue().GetName(); q != workflows.TaskQueue {
		changed("the task queue", q, workflows.TaskQueue)
	}
	var in workflows.ScheduledInput
	if err := plain.FromPayloads(sw.GetInput(), &in); err != nil || in != d.input() {
		out = append(out, "the action's input was changed outside keyturn apply")
	}
	// The runs rely on these: they do not set them themselves.
	attrs := sw.GetSearchAttributes().GetIndexedFields()
	for name, want := range d.runAttributes() {
		if p := attrs[name]; p == nil || !bytes.Equal(p.GetData(), want.GetData()) {
			out = append(out, fmt.Sprintf("the runs' search attribute %s was changed outside keyturn apply", name))
		}
	}
	return out
}
