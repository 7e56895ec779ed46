package secretstate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/keyturn/keyturn/internal/durtext"
	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/internal/priority"
	"github.com/keyturn/keyturn/rotators/certs"
	"github.com/keyturn/keyturn/schedules"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/workflows"
)

// Defaults of an Observer.
const (
	// DefaultParallel is how many secrets are read at once.
	DefaultParallel = 8
	// DefaultReadTimeout bounds each read of a secret (its store, its rotation, each
	// schedule) and the incident list, so a source that hangs leaves that fact unknown
	// instead of holding up the rest.
	DefaultReadTimeout = 30 * time.Second
)

// maxErrorRunes caps an error kept in an observation: enough to act on, short enough for
// a status table.
const maxErrorRunes = 300

// Stores opens the store of a secret by its ID; the worker's binding.Resolver is one.
type Stores interface {
	Store(ctx context.Context, id secret.ID) (stores.Store, error)
}

// Observer reads the state of an inventory's secrets. Set the fields, then call Observe
// as often as wanted; an Observer is safe for concurrent use.
type Observer struct {
	// Inventory lists the secrets and their policies.
	Inventory *inventory.Inventory
	// Stores opens each secret's store.
	Stores Stores
	// Temporal answers for rotations, schedules and incidents; nil leaves them unknown.
	Temporal client.Client
	// Now is the clock ages are counted on; time.Now when nil.
	Now func() time.Time
	// Parallel and ReadTimeout default to DefaultParallel and DefaultReadTimeout.
	Parallel    int
	ReadTimeout time.Duration
	// Gate, when set, holds each secret's read back while urgent work runs in this
	// process (an incident's containment in the worker's).
	Gate *priority.Gate
}

// Observe reads the state of the secrets with the given IDs, or of every secret of the
// inventory when none is given (an ID the inventory does not know is left out). It never
// fails as a whole: what could not be read is reported in the secret or field it
// concerns.
func (o *Observer) Observe(ctx context.Context, ids ...secret.ID) Observation {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	obs := Observation{At: now().UTC()}
	var chosen []inventory.Secret
	for _, s := range o.Inventory.Secrets {
		if len(ids) == 0 || slices.Contains(ids, s.ID) {
			chosen = append(chosen, s)
		}
	}
	obs.Secrets = make([]Secret, len(chosen))
	parallel := o.Parallel
	if parallel <= 0 {
		parallel = DefaultParallel
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	at := obs.At
	for i := range chosen {
		waited, _ := o.Gate.Wait(ctx) // a cancelled ctx fails the reads that follow, which say so
		if waited > 0 {
			obs.Yielded += waited
			at = now().UTC() // ages of the secrets read from here count to when reading resumed
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			obs.Secrets[i] = o.observe(ctx, &chosen[i], at)
		}()
	}
	if len(ids) == 0 {
		ictx, cancel := context.WithTimeout(ctx, o.readTimeout())
		obs.Incidents, obs.IncidentsError = o.incidents(ictx)
		cancel()
	}
	wg.Wait()
	return obs
}

func (o *Observer) readTimeout() time.Duration {
	if o.ReadTimeout <= 0 {
		return DefaultReadTimeout
	}
	return o.ReadTimeout
}

// observe reads one secret. Each read has its own timeout, so a store that hangs leaves
// the secret's age unknown, not its rotation and schedules too (with an error that would
// blame Temporal).
func (o *Observer) observe(ctx context.Context, s *inventory.Secret, at time.Time) Secret {
	st := Secret{ID: s.ID, Kind: s.Kind, Owner: s.Owner, Sensitivity: s.Sensitivity}
	for _, c := range s.Consumers {
		st.Consumers = append(st.Consumers, Consumer{Name: c.Name, Refresh: Seconds(c.Refresh)})
	}
	policy := s.AgePolicy()
	if policy.MaxAge > 0 {
		st.MaxAge, st.MaxAgeFrom = secondsPtr(policy.MaxAge), policy.Source
	}
	o.bounded(ctx, func(ctx context.Context) { o.readStore(ctx, s, &st, at) })
	if o.Temporal == nil {
		st.RotationError = "no Temporal client"
		return st
	}
	o.bounded(ctx, func(ctx context.Context) { o.readRotation(ctx, &st) })
	o.readSchedules(ctx, s, &st, at)
	return st
}

// bounded runs one read under its own ReadTimeout.
func (o *Observer) bounded(ctx context.Context, read func(context.Context)) {
	ctx, cancel := context.WithTimeout(ctx, o.readTimeout())
	defer cancel()
	read(ctx)
}

// readStore finds the current version and judges the age.
func (o *Observer) readStore(ctx context.Context, s *inventory.Secret, st *Secret, at time.Time) {
	store, err := o.Stores.Store(ctx, s.ID)
	if err != nil {
		st.StoreError = errorText(fmt.Errorf("open the %s store: %w", s.Store.Type, err))
		return
	}
	versions, err := store.ListVersions(ctx, s.ID)
	if err != nil && !errors.Is(err, stores.ErrNotFound) {
		st.StoreError = errorText(fmt.Errorf("read versions from the %s store: %w", s.Store.Type, err))
		return
	}
	st.Versions = len(versions)
	for i := range versions {
		if slices.Contains(versions[i].Stages, secret.StageCurrent) {
			st.Current = &versions[i]
		}
	}
	overdue := false
	switch {
	case st.Current == nil && len(versions) == 0:
		overdue = true
		st.OverdueReason = "no current version: never rotated"
	case st.Current == nil:
		overdue = true
		st.OverdueReason = fmt.Sprintf("no current version (the store holds %d earlier version(s))", len(versions))
	case st.Current.CreatedAt.IsZero():
		// A store that records no creation time: the age is unknown, not 292 years.
		if st.MaxAge != nil {
			st.OverdueReason = fmt.Sprintf("age unknown: the store records no creation time for version %d", st.Current.Number)
			return
		}
	default:
		age := max(at.Sub(st.Current.CreatedAt), 0) // a store clock ahead of ours is not a negative age
		st.Age = secondsPtr(age)
		if st.MaxAge != nil && age > st.MaxAge.Duration() {
			overdue = true
			st.OverdueReason = fmt.Sprintf("age %s is over the maximum %s (%s)", durtext.Rough(age), durtext.Day(st.MaxAge.Duration()), st.MaxAgeFrom)
		}
	}
	st.Overdue = &overdue
}

// readRotation describes the secret's latest rotation run.
func (o *Observer) readRotation(ctx context.Context, st *Secret) {
	desc, err := o.Temporal.DescribeWorkflowExecution(ctx, workflows.RotateWorkflowID(st.ID), "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		none := 0
		st.RevokesOutstanding = &none
		return
	}
	if err != nil {
		st.RotationError = errorText(fmt.Errorf("describe %s: %w", workflows.RotateWorkflowID(st.ID), err))
		return
	}
	info := desc.GetWorkflowExecutionInfo()
	run := RunOf(info.GetExecution().GetRunId(), info.GetStatus(), info.GetStartTime().AsTime(), info.GetCloseTime().AsTime(), info.GetSearchAttributes())
	st.LastRotation = &run
	n := 0
	if st.RevokeState = run.RevokeState(); st.RevokeState != "" {
		n = 1
	}
	st.RevokesOutstanding = &n
	if st.RevokeState == RevokeWaiting || st.RevokeState == RevokeHeld {
		st.RevokeGate = o.readGate(ctx, st.ID, run.RunID)
	}
}

// readGate asks a rotation in its revoke gate what the gate saw, under its own
// ReadTimeout; nil when the query fails (the state is known from the search attributes
// all the same).
func (o *Observer) readGate(ctx context.Context, id secret.ID, runID string) *workflows.RevokeGateStatus {
	ctx, cancel := context.WithTimeout(ctx, o.readTimeout())
	defer cancel()
	v, err := o.Temporal.QueryWorkflow(ctx, workflows.RotateWorkflowID(id), runID, workflows.QueryStatus)
	var status workflows.RotateStatus
	if err != nil || v.Get(&status) != nil {
		return nil
	}
	return status.RevokeGate
}

// readSchedules reads the secret's schedules and works out when one rotates it next: the
// cron schedule's next run, or for a certificate its renewal point (the hourly renewal
// check rotates it at its first run from then on).
func (o *Observer) readSchedules(ctx context.Context, s *inventory.Secret, st *Secret, at time.Time) {
	var next []time.Time
	if s.Schedule != "" {
		sch, err := o.schedule(ctx, schedules.CronScheduleID(s.ID), false)
		if err != nil {
			st.ScheduleError = errorText(err)
			return
		}
		st.Schedules = append(st.Schedules, sch)
		if sch.NextRun != nil {
			next = append(next, *sch.NextRun)
		}
	}
	if inventory.CertificateKind(s.Kind) {
		sch, err := o.schedule(ctx, schedules.RenewalScheduleID(s.ID), true)
		if err != nil {
			st.ScheduleError = errorText(err)
			return
		}
		st.Schedules = append(st.Schedules, sch)
		if sch.NextRun != nil {
			if st.StoreError != "" {
				return // when the certificate is due is unknown, so is the earliest run
			}
			due := at // no certificate yet: the next check issues one
			if st.Current != nil {
				_, due = certs.Due(*st.Current, at, renewAt(s))
			}
			next = append(next, laterOf(due, *sch.NextRun))
		}
	}
	if len(next) > 0 {
		earliest := slices.MinFunc(next, func(a, b time.Time) int { return a.Compare(b) })
		st.NextRun = &earliest
	}
}

// schedule reads one schedule, under its own ReadTimeout; a schedule Temporal does not
// have is Missing, not an error.
func (o *Observer) schedule(ctx context.Context, id string, renewal bool) (Schedule, error) {
	ctx, cancel := context.WithTimeout(ctx, o.readTimeout())
	defer cancel()
	sch := Schedule{ID: id, RenewalCheck: renewal}
	next, paused, err := schedules.NextRun(ctx, o.Temporal, id)
	switch {
	case errors.Is(err, schedules.ErrNotFound):
		sch.Missing = true
	case err != nil:
		return sch, err
	default:
		sch.Paused = paused
		if !next.IsZero() {
			sch.NextRun = &next
		}
	}
	return sch, nil
}

// renewAt is the share of a certificate's lifetime after which it is due.
func renewAt(s *inventory.Secret) float64 {
	switch {
	case s.VaultPKI != nil:
		return s.VaultPKI.RenewAt
	case s.LocalCA != nil:
		return s.LocalCA.RenewAt
	}
	return 0
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// incidents lists the incident playbooks running now.
func (o *Observer) incidents(ctx context.Context) ([]Incident, string) {
	if o.Temporal == nil {
		return nil, "no Temporal client"
	}
	req := &workflowservice.ListWorkflowExecutionsRequest{
		Query:    fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running'", workflows.IncidentWorkflowName),
		PageSize: 1000,
	}
	out := []Incident{}
	for {
		resp, err := o.Temporal.ListWorkflow(ctx, req)
		if err != nil {
			return nil, errorText(fmt.Errorf("list running incidents: %w", err))
		}
		for _, e := range resp.GetExecutions() {
			id := Keyword(e.GetSearchAttributes(), workflows.SearchAttrIncidentID.GetName())
			if id == "" {
				id = strings.TrimPrefix(e.GetExecution().GetWorkflowId(), workflows.IncidentWorkflowID(""))
			}
			out = append(out, Incident{ID: id, RunID: e.GetExecution().GetRunId(), Started: e.GetStartTime().AsTime()})
		}
		if len(resp.GetNextPageToken()) == 0 {
			break
		}
		req.NextPageToken = resp.GetNextPageToken()
	}
	slices.SortFunc(out, func(a, b Incident) int { return strings.Compare(a.ID, b.ID) })
	return out, ""
}

// RunOf reads a rotation run from what Temporal's describe and list calls return.
func RunOf(runID string, status enumspb.WorkflowExecutionStatus, started, closed time.Time, sa *commonpb.SearchAttributes) Run {
	r := Run{RunID: runID, Status: StatusName(status), Started: started}
	if status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && closed.Unix() > 0 {
		r.Closed = &closed
	}
	r.Outcome = Keyword(sa, workflows.SearchAttrOutcome.GetName())
	r.Step = Keyword(sa, workflows.SearchAttrStep.GetName())
	return r
}

// Keyword reads a keyword search attribute of a workflow; "" when it is absent or not a
// string.
func Keyword(sa *commonpb.SearchAttributes, name string) string {
	p, ok := sa.GetIndexedFields()[name]
	if !ok {
		return ""
	}
	var s string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &s); err != nil {
		return ""
	}
	return s
}

// StatusRunning is StatusName of a running workflow.
const StatusRunning = "running"

// StatusName is a workflow status in the words Keyturn prints.
func StatusName(s enumspb.WorkflowExecutionStatus) string {
	switch s {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return StatusRunning
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return "completed"
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		return "failed"
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return "cancelled"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return "terminated"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return "timed out"
	case enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		return "continued"
	}
	return "unknown"
}

// errorText is an error as an observation keeps it: cleaned like the inventory's problem
// messages (no escape sequences or control characters) and capped. Store and Temporal
// errors are material-free by design; this keeps a hostile value from reaching a
// terminal or a log.
func errorText(err error) string { return inventory.Displayable(err.Error(), maxErrorRunes) }
