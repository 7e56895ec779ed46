package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/secret"
)

// SecretInfo describes a managed secret without any material: what an incident's scope
// and dry run show.
type SecretInfo struct {
	ID    secret.ID `json:"id"`
	Kind  string    `json:"kind"`
	Tags  []string  `json:"tags,omitempty"`
	Store string    `json:"store"`
	// Target says where the credential is used, e.g. "postgres 10.0.0.5:5432 role app".
	Target string `json:"target"`
}

// Catalog lists the secrets this worker manages, typically its inventory.
type Catalog interface {
	Secrets() []SecretInfo
}

// Selector picks an incident's scope. A secret is in scope when it matches every
// criterion given: one of IDs, all of Tags, Kind, and Prefix. An empty selector matches
// nothing, so a typo never turns into "everything".
type Selector struct {
	IDs    []secret.ID `json:"ids,omitempty"`
	Tags   []string    `json:"tags,omitempty"`
	Kind   string      `json:"kind,omitempty"`
	Prefix string      `json:"prefix,omitempty"`
}

// Empty reports whether the selector has no criterion.
func (s Selector) Empty() bool {
	return len(s.IDs) == 0 && len(s.Tags) == 0 && s.Kind == "" && s.Prefix == ""
}

// String renders the selector as the CLI's --select syntax.
func (s Selector) String() string {
	var parts []string
	for _, id := range s.IDs {
		parts = append(parts, "id="+string(id))
	}
	for _, t := range s.Tags {
		parts = append(parts, "tag="+t)
	}
	if s.Kind != "" {
		parts = append(parts, "kind="+s.Kind)
	}
	if s.Prefix != "" {
		parts = append(parts, "prefix="+s.Prefix)
	}
	return strings.Join(parts, ",")
}

// Matches reports whether the secret is in scope.
func (s Selector) Matches(info SecretInfo) bool {
	if s.Empty() {
		return false
	}
	if len(s.IDs) > 0 && !slices.Contains(s.IDs, info.ID) {
		return false
	}
	for _, t := range s.Tags {
		if !slices.Contains(info.Tags, t) {
			return false
		}
	}
	return (s.Kind == "" || info.Kind == s.Kind) && strings.HasPrefix(string(info.ID), s.Prefix)
}

// Select returns the secrets of the catalog in scope, sorted by ID. Naming an ID the
// catalog does not hold is an error, since the operator meant a secret Keyturn cannot
// contain. It is the one scope resolution: the worker runs it over its inventory, the
// CLI over the operator's, to plan before it starts anything.
func Select(all []SecretInfo, s Selector) ([]SecretInfo, error) {
	var unknown []string
	for _, id := range s.IDs {
		if !slices.ContainsFunc(all, func(i SecretInfo) bool { return i.ID == id }) {
			unknown = append(unknown, string(id))
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%w: %s not in the inventory; check the ID (keyturn status lists the managed secrets)", ErrUnknownSecret, strings.Join(quoted(unknown), ", "))
	}
	var out []SecretInfo
	for _, info := range all {
		if s.Matches(info) {
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// quoted quotes each value from the operator's input for an error message.
func quoted(values []string) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}

// SchedulePauser pauses and resumes the schedules of secrets for an incident. Pause
// leaves alone a schedule paused for another reason (another note) and reports it;
// Resume resumes only the given schedules, and only those still paused with pausedNote,
// so what an operator paused for their own reason stays paused.
type SchedulePauser interface {
	Pause(ctx context.Context, ids []secret.ID, note string) (PausedSchedules, error)
	Resume(ctx context.Context, scheduleIDs []string, pausedNote, note string) (ResumedSchedules, error)
}

// PausedSchedules is what pausing a scope's schedules did.
type PausedSchedules struct {
	// Paused are the schedule IDs paused with the note (now, or by an earlier attempt).
	Paused []string `json:"paused,omitempty"`
	// KeptPaused were paused already with another note, and were left as they were.
	KeptPaused []string `json:"keptPaused,omitempty"`
}

// ResumedSchedules is what resuming an incident's schedules did.
type ResumedSchedules struct {
	Resumed []string `json:"resumed,omitempty"`
	// Left are still paused: someone paused them again with their own note, or they
	// were resumed and paused again meanwhile.
	Left []string `json:"left,omitempty"`
}

// IncidentActivities are the incident playbook's activities: they read the catalog and
// act on other workflows and schedules through the Temporal client.
type IncidentActivities struct {
	client    client.Client
	catalog   Catalog
	schedules SchedulePauser
	auditor   Auditor
}

// NewIncidentActivities builds them; schedules may be nil when this worker manages none,
// auditor nil when it records nothing.
func NewIncidentActivities(c client.Client, catalog Catalog, schedules SchedulePauser, auditor Auditor) *IncidentActivities {
	return &IncidentActivities{client: c, catalog: catalog, schedules: schedules, auditor: auditor}
}

// recordSchedules writes one record per schedule an incident paused or resumed, in the
// incident's chain (the workflow ID is incident/<id>). Like containment, it does not wait
// for the audit trail: a record that cannot be written is logged.
func (a *IncidentActivities) recordSchedules(ctx context.Context, event string, ids []string) {
	if a.auditor == nil || !activity.IsActivity(ctx) {
		return
	}
	incident := strings.TrimPrefix(activity.GetInfo(ctx).WorkflowExecution.ID, "incident/")
	cause := &Cause{Actor: audit.Actor{Type: audit.ActorIncident, Name: incident}, IncidentID: incident}
	for _, id := range ids {
		r := audit.Record{ID: stepEventID(ctx, id, event), Event: event, Handles: map[string]string{"schedule": id}}
		if err := appendRecord(ctx, a.auditor, Binding{}, stepRef{cause: cause}, r); err != nil {
			logUnrecorded(ctx, r, err)
		}
	}
}

// Scope resolves a selector against the worker's inventory.
func (a *IncidentActivities) Scope(ctx context.Context, s Selector) ([]SecretInfo, error) {
	defer alive(ctx).stop()
	return a.selectScope(s)
}

// selectScope is the scope of s in the worker's inventory, sorted by ID.
func (a *IncidentActivities) selectScope(s Selector) ([]SecretInfo, error) {
	if a.catalog == nil {
		return nil, temporal.NewNonRetryableApplicationError("this process has no inventory to select from", ErrTypeInvalidConfig, nil)
	}
	out, err := Select(a.catalog.Secrets(), s)
	if err != nil {
		return nil, classify(err)
	}
	return out, nil
}

// ScopePageInput asks for one page of an incident's scope: at most Limit secrets of the
// selector's, those whose IDs sort after After ("" for the first page).
type ScopePageInput struct {
	Selector Selector  `json:"selector"`
	After    secret.ID `json:"after,omitempty"`
	Limit    int       `json:"limit"`
}

// ScopedSecret is a secret of an incident's scope as the incident carries it: its ID and
// kind, nothing more, since a page of them travels as one payload.
type ScopedSecret struct {
	ID   secret.ID `json:"id"`
	Kind string    `json:"k"`
}

// ScopePage is one page of an incident's scope, in ID order.
type ScopePage struct {
	Secrets []ScopedSecret `json:"secrets"`
	// Total is the size of the whole scope when the page was read.
	Total int `json:"total"`
	// More says secrets follow this page.
	More bool `json:"more,omitempty"`
}

// ScopePage resolves a selector against the worker's inventory, one page at a time. The
// pages follow each other by ID (keyset paging), so a scope of any size is read in
// payloads of bounded size, and an inventory that changes between two pages neither
// repeats nor skips a secret that is in both.
func (a *IncidentActivities) ScopePage(ctx context.Context, in ScopePageInput) (ScopePage, error) {
	defer alive(ctx).stop()
	if in.Limit <= 0 {
		return ScopePage{}, temporal.NewNonRetryableApplicationError("a scope page needs a positive limit", ErrTypeInvalidConfig, nil)
	}
	all, err := a.selectScope(in.Selector)
	if err != nil {
		return ScopePage{}, err
	}
	first := sort.Search(len(all), func(i int) bool { return all[i].ID > in.After })
	page := ScopePage{Total: len(all)}
	for _, s := range all[first:min(first+in.Limit, len(all))] {
		page.Secrets = append(page.Secrets, ScopedSecret{ID: s.ID, Kind: s.Kind})
	}
	page.More = first+in.Limit < len(all)
	return page, nil
}

// SchedulesInput names secrets whose schedules change, and the note recorded with it.
type SchedulesInput struct {
	IDs  []secret.ID `json:"ids"`
	Note string      `json:"note"`
}

// PauseSchedules pauses the schedules of the secrets, so no scheduled rotation starts
// while an incident works on them, and says which it paused.
func (a *IncidentActivities) PauseSchedules(ctx context.Context, in SchedulesInput) (PausedSchedules, error) {
	defer alive(ctx).stop()
	if a.schedules == nil {
		return PausedSchedules{}, nil
	}
	res, err := a.schedules.Pause(ctx, in.IDs, in.Note)
	if err != nil {
		return res, err
	}
	a.recordSchedules(ctx, audit.EventSchedulePaused, res.Paused)
	return res, nil
}

// ResumeSchedulesInput names the schedules an incident paused and the note it paused
// them with.
type ResumeSchedulesInput struct {
	ScheduleIDs []string `json:"scheduleIds"`
	PausedNote  string   `json:"pausedNote"`
	Note        string   `json:"note"`
}

// ResumeSchedules resumes the schedules the incident paused that still carry its note.
func (a *IncidentActivities) ResumeSchedules(ctx context.Context, in ResumeSchedulesInput) (ResumedSchedules, error) {
	defer alive(ctx).stop()
	if a.schedules == nil {
		return ResumedSchedules{}, nil
	}
	res, err := a.schedules.Resume(ctx, in.ScheduleIDs, in.PausedNote, in.Note)
	if err != nil {
		return res, err
	}
	a.recordSchedules(ctx, audit.EventScheduleResumed, res.Resumed)
	return res, nil
}

// StopInput names the rotation workflow an incident stops.
type StopInput struct {
	WorkflowID string `json:"workflowId"`
	Reason     string `json:"reason"`
}

// StopRotation terminates the running workflow, if any, and reports whether one ran.
// Terminating, not cancelling: a cancelled rotation would run its compensation, which may
// promote the previous version again, one an incident is revoking. The incident cleans up
// after it instead (Supersede), without promoting anything.
func (a *IncidentActivities) StopRotation(ctx context.Context, in StopInput) (bool, error) {
	defer alive(ctx).stop()
	return a.terminate(ctx, in)
}

// terminate terminates one rotation; false when it had already ended.
func (a *IncidentActivities) terminate(ctx context.Context, in StopInput) (bool, error) {
	err := a.client.TerminateWorkflow(ctx, in.WorkflowID, "", in.Reason)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("terminate %s: %w", in.WorkflowID, err)
	}
	return true, nil
}

// alive heartbeats one of the incident's own activities while it runs: they have a
// heartbeat timeout, so one on a worker that died is retried on another within seconds
// instead of the incident waiting out its start-to-close timeout (ten minutes for
// pausing a large scope's schedules).
func alive(ctx context.Context) *beat { return startBeat(ctx, defaultHeartbeatEvery) }

// logUnrecorded says, at error level, that an incident's event could not be recorded:
// incidents go on without the audit trail, and this line is what is left of the record.
func logUnrecorded(ctx context.Context, r audit.Record, err error) {
	if activity.IsActivity(ctx) {
		activity.GetLogger(ctx).Error("audit record not written; the incident goes on without it", "event", r.Event, "step", r.Step, "secret", string(r.SecretID), "error", err)
	}
}

// StopRotationsInput names the secrets whose running rotations an incident stops.
type StopRotationsInput struct {
	IDs    []secret.ID `json:"ids"`
	Reason string      `json:"reason"`
	// EndedSince, when set, also finds the secrets whose rotation ended at or after it,
	// other than by termination: one that ran while the incident revoked may have
	// re-applied a revoked credential (a failed rotation's rollback does). They are
	// returned with the stopped ones.
	EndedSince time.Time `json:"endedSince,omitzero"`
}

// StopRotations terminates every running rotation of the secrets, found with one
// visibility query, and returns the secrets whose rotation it stopped (and, with
// EndedSince, those whose rotation ended since then). It runs before an
// incident's batch containment, so no rotation in flight can re-apply a credential the
// containment just revoked (its rollback would). A rotation the query misses is stopped
// when the incident's own rotation of that secret finds the workflow ID taken.
func (a *IncidentActivities) StopRotations(ctx context.Context, in StopRotationsInput) ([]secret.ID, error) {
	defer alive(ctx).stop()
	wanted := make(map[string]secret.ID, len(in.IDs))
	for _, id := range in.IDs {
		wanted[RotationWorkflowID(id)] = id
	}
	query := "WorkflowType = '" + RotateWorkflowType + "' AND ExecutionStatus = 'Running'"
	if !in.EndedSince.IsZero() {
		// Not a terminated one: it ran no rollback (the first stop terminated those in
		// flight before anything was revoked).
		query = "WorkflowType = '" + RotateWorkflowType + "' AND (ExecutionStatus = 'Running' OR (CloseTime >= '" +
			in.EndedSince.UTC().Format(time.RFC3339Nano) + "' AND ExecutionStatus != 'Terminated'))"
	}
	var stopped []secret.ID
	seen := map[secret.ID]bool{} // a secret's earlier runs are listed too
	var token []byte
	for {
		resp, err := a.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token, PageSize: 1000})
		if err != nil {
			return nil, fmt.Errorf("list running rotations: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			id, ok := wanted[e.GetExecution().GetWorkflowId()]
			if !ok {
				continue
			}
			ran := true // an ended one found through EndedSince
			if e.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				// Always stopped, whatever of the secret was listed before.
				if ran, err = a.terminate(ctx, StopInput{WorkflowID: e.GetExecution().GetWorkflowId(), Reason: in.Reason}); err != nil {
					return nil, err
				}
				// Ended between the list and the stop: after EndedSince, so it counts.
				ran = ran || !in.EndedSince.IsZero()
			}
			if ran && !seen[id] {
				seen[id] = true
				stopped = append(stopped, id)
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return stopped, nil
		}
	}
}
