package workflows

import (
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/secret"
)

var incidentActs *activities.IncidentActivities

var (
	// incidentStepOptions: the incident's own activities only talk to Temporal and read
	// the inventory; short attempts, bounded retries. Stopping the rotations in flight
	// comes before containment, so it is retried as fast as containment is.
	incidentStepOptions = forContainment(workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         retryPolicy(5, 10*time.Second),
	})
	// containBatchOptions: a batch of revocations; a retry revokes again, harmlessly. A
	// worker that dies mid-batch is noticed within containHeartbeatTimeout and the batch
	// retried on another at once, instead of containment waiting out the usual ten seconds.
	containBatchOptions = forContainment(stepOptions(2*time.Minute, retryPolicy(3, 5*time.Second)))
	// scheduleStepOptions: pausing or resuming a scope's schedules describes each one
	// (two per secret), which takes minutes for a very large scope on a remote cluster.
	// A retry is harmless: a schedule paused with the incident's note counts as its own.
	// The activity heartbeats, so one on a worker that died is retried within seconds, not
	// after the ten minutes.
	scheduleStepOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		HeartbeatTimeout:    10 * time.Second,
		RetryPolicy:         retryPolicy(5, 10*time.Second),
	}
	// supersedeOptions clean up a stopped rotation on the target.
	supersedeOptions = stepOptions(time.Minute, retryPolicy(6, 15*time.Second))
)

// maxStartAttempts bounds how often the incident stops a rotation that keeps beating it to
// the secret's workflow ID (a manual `keyturn rotate` in a loop) before it reports failure.
const maxStartAttempts = 3

// Incident is the incident playbook: resolve the scope, stop the rotations in flight and
// pause its schedules (in contain mode, after the whole scope is contained), then for
// each secret either contain (revoke everything, then issue a new credential) or rotate
// with no grace. Each secret's rotation is a Rotate workflow with
// ID rotate/<secret-id>, so nothing else can rotate it meanwhile, carrying the search
// attribute KeyturnIncidentID. The inventory's webhooks are told when it has started,
// when its scope is contained and when it has finished (incident_notify.go).
func Incident(ctx workflow.Context, in IncidentInput) (IncidentReport, error) {
	r := &incidentRun{in: in}
	r.report = IncidentReport{
		IncidentID: in.IncidentID, Mode: in.Mode, Selector: in.Selector.String(),
		Reason: in.Reason, Operator: in.Operator, StartedAt: workflow.Now(ctx),
	}
	r.report.Phase = PhaseScope
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (IncidentProgress, error) { return r.progress(), nil }); err != nil {
		return r.report, err
	}
	if err := in.Validate(); err != nil {
		return r.report, temporal.NewNonRetryableApplicationError("invalid incident: "+err.Error(), ErrTypeInvalidInput, nil)
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, SearchAttrIncidentID.ValueSet(in.IncidentID))
	return r.run(ctx)
}

type incidentRun struct {
	in       IncidentInput
	report   IncidentReport
	carry    IncidentCarry
	notifier incidentNotifier
	// secretDone, when set, is called after each secret's work is counted (an
	// IncidentPage tells its parent its progress).
	secretDone func(ctx workflow.Context)
	// live is the progress of the page being rotated, as its IncidentPage last told.
	live livePage
	// paged says the run reads its scope in pages (runPaged).
	paged bool
}

func (r *incidentRun) run(ctx workflow.Context) (IncidentReport, error) {
	actx := workflow.WithActivityOptions(ctx, incidentStepOptions)
	r.startNotifier(ctx)
	first := r.in.Carry == nil
	if first && workflow.GetVersion(ctx, changeScopePages, workflow.DefaultVersion, 1) == 1 {
		return r.runPaged(ctx, actx)
	}
	if first {
		var scope []activities.SecretInfo
		if err := workflow.ExecuteActivity(actx, incidentActs.Scope, r.in.Selector).Get(ctx, &scope); err != nil {
			return r.report, err
		}
		if len(scope) == 0 {
			return r.report, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("the scope %q matches no secret in the worker's inventory; nothing was changed", r.in.Selector), ErrTypeEmptyScope, nil)
		}
		r.carry = IncidentCarry{StartedAt: r.report.StartedAt}
		for _, s := range scope {
			r.carry.Scope = append(r.carry.Scope, s.ID)
			r.carry.Kinds = append(r.carry.Kinds, s.Kind)
		}
		r.report.Total = len(scope)
		// The worker's inventory decides; the CLI showed the operator its own plan, so
		// any difference is reported for it to say.
		r.carry.ScopeDiff = diffScope(r.carry.Scope, r.in.Planned)
		r.report.ScopeDiff = r.carry.ScopeDiff
		r.notify(ctx, notify.IncidentStarted, "")
		if r.in.Mode == ModeContain && workflow.GetVersion(ctx, changeContainWhilePausing, workflow.DefaultVersion, 1) == 1 {
			if what, err := r.containWhilePausing(ctx, actx); err != nil {
				return r.abort(ctx, what, err)
			}
		} else {
			r.report.Phase = PhasePause
			if err := r.pauseSchedulesOf(ctx, r.carry.Scope).Get(ctx, nil); err != nil {
				return r.abort(ctx, r.pauseFailed(), err)
			}
			// Rotations in flight stop first: a rollback still running could re-apply a
			// credential the containment revokes. Then, in contain mode, the whole scope is
			// contained before any secret is rotated, however many runs the rotations take.
			stopped, err := r.stopRotationsOf(ctx, actx, r.carry.Scope)
			if err != nil {
				return r.abort(ctx, "stop rotations in flight", err)
			}
			r.carry.Stopped = stopped
			if r.in.Mode == ModeContain {
				r.report.Phase = PhaseContain
				r.carry.Contained = r.containAll(ctx)
				r.settle(ctx, r.report.Contained)
			}
		}
	} else {
		r.carry = *r.in.Carry
		r.report.StartedAt = r.carry.StartedAt
		r.report.Schedules = r.carry.Schedules.listed()
		r.report.IncidentProgress = r.carry.Progress()
		r.notifier.settled = settledIn(&r.carry)
	}

	start := len(r.carry.Done)
	end := min(start+secretsPerRun, len(r.carry.Scope))
	r.report.Phase = PhaseWorking
	r.work(ctx, start, end)
	if end < len(r.carry.Scope) {
		next := r.in
		next.Carry = &r.carry
		next.Planned = nil // compared once, in the first run
		err := workflow.NewContinueAsNewError(ctx, IncidentWorkflowName, next)
		r.finishNotifying(ctx, err)
		return r.report, err
	}

	if err := r.resumeSchedules(ctx); err != nil {
		return r.abort(ctx, "resume schedules", err)
	}
	r.report.Phase = PhaseDone
	r.listSecrets()
	r.report.FinishedAt = workflow.Now(ctx)
	var err error
	if r.report.Failed > 0 {
		err = temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("incident %s: %d of %d secrets failed; see the report", r.in.IncidentID, r.report.Failed, r.report.Total), ErrTypeFailed, nil, r.report)
	}
	r.finishNotifying(ctx, err)
	return r.report, err
}

// resumeSchedules resumes, with --resume-schedules, the schedules the incident paused
// that still carry its note; otherwise it records the command that does so later.
func (r *incidentRun) resumeSchedules(ctx workflow.Context) error {
	sch := &r.carry.Schedules
	defer func() { r.report.Schedules = sch.listed() }()
	if len(sch.Paused) == 0 {
		return nil
	}
	if !r.in.ResumeSchedules {
		sch.ResumeCommand = ResumeCommand(r.in.IncidentID)
		return nil
	}
	r.report.Phase = PhaseResume
	// A paged incident resumes in chunks, so no input grows with the scope; an older one
	// sent the whole list at once, which its history records.
	chunk := len(sch.Paused)
	if r.paged {
		chunk = maxListedSchedules
	}
	sctx := workflow.WithActivityOptions(ctx, scheduleStepOptions)
	sch.Resumed, sch.LeftPaused = nil, nil
	for lo := 0; lo < len(sch.Paused); lo += chunk {
		in := activities.ResumeSchedulesInput{
			ScheduleIDs: sch.Paused[lo:min(lo+chunk, len(sch.Paused))], PausedNote: sch.Note,
			Note: fmt.Sprintf("incident %s finished", r.in.IncidentID),
		}
		var res activities.ResumedSchedules
		if err := workflow.ExecuteActivity(sctx, incidentActs.ResumeSchedules, in).Get(ctx, &res); err != nil {
			return err
		}
		sch.Resumed = append(sch.Resumed, res.Resumed...)
		sch.LeftPaused = append(sch.LeftPaused, res.Left...)
	}
	return nil
}

// abort ends the incident on a failed step of its own, with the report as the failure's
// details, so the CLI and `schedules resume --incident` still learn which schedules it
// paused.
func (r *incidentRun) abort(ctx workflow.Context, what string, err error) (IncidentReport, error) {
	sch := &r.carry.Schedules
	if (len(sch.Paused) > 0 || sch.PauseFailed) && len(sch.Resumed) == 0 {
		sch.ResumeCommand = ResumeCommand(r.in.IncidentID)
	}
	r.report.Schedules = sch.listed()
	r.listSecrets()
	r.report.FinishedAt = workflow.Now(ctx)
	failed := temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("incident %s: %s: %s", r.in.IncidentID, what, activities.ErrorMessage(err)), ErrTypeFailed, err, r.report)
	r.finishNotifying(ctx, failed)
	return r.report, failed
}

// changeContainWhilePausing: in contain mode the scope's schedules are paused while it is
// contained, not before (pausing describes every schedule one by one, seconds for a
// thousand secrets, and a leaked credential should not wait for that). Incidents that
// began before this change pause first, so their histories replay.
const changeContainWhilePausing = "contain-while-pausing"

// containWhilePausing is the first run's start in contain mode: stop the rotations in
// flight (a rollback still running could re-apply a credential the containment revokes),
// contain the scope while its schedules are paused, then stop the rotations again. A
// schedule may have started one between the first stop and its pause: it is stopped too,
// and that secret counts as not contained by the batch, so its own rotation contains it
// again. Only then is the containment settled (incident_contained). On a failure it
// returns what failed, for abort.
func (r *incidentRun) containWhilePausing(ctx, actx workflow.Context) (string, error) {
	stopped, err := r.stopRotationsOf(ctx, actx, r.carry.Scope)
	if err != nil {
		return "stop rotations in flight", err
	}
	r.carry.Stopped = stopped
	r.report.Phase = PhaseContain
	pausing := r.pauseSchedulesOf(ctx, r.carry.Scope)
	r.carry.Contained = r.containAll(ctx)
	if err := pausing.Get(ctx, nil); err != nil {
		return r.pauseFailed() + "; " + r.containedSoFar(), err
	}
	again, err := r.stopRotationsOf(ctx, actx, r.carry.Scope)
	if err != nil {
		return "stop rotations started while the schedules were being paused; " + r.containedSoFar(), err
	}
	for _, id := range again {
		if !slices.Contains(r.carry.Stopped, id) {
			r.carry.Stopped = append(r.carry.Stopped, id)
		}
	}
	r.uncount(again)
	r.settle(ctx, r.report.Contained)
	return "", nil
}

// uncount takes the secrets ids out of the batch containment's count: their own
// rotations contain them again.
func (r *incidentRun) uncount(ids []secret.ID) {
	if len(ids) == 0 {
		return
	}
	r.report.Contained, r.report.AllContainedMs = 0, 0
	for i, id := range r.carry.Scope {
		if slices.Contains(ids, id) {
			r.carry.Contained[i] = 0
		}
		r.report.addContained(r.carry.Contained[i])
	}
}

// containedSoFar says, for an incident that ends after its batch containment, how much of
// the scope is contained and what issues new credentials.
func (r *incidentRun) containedSoFar() string {
	if r.report.Contained == r.report.Total {
		return fmt.Sprintf("all %d secrets of the scope are contained: an incident in rotate mode issues new credentials", r.report.Total)
	}
	return fmt.Sprintf("%d of the %d secrets of the scope are contained, the others are not: run the incident again", r.report.Contained, r.report.Total)
}

// maxPauseNoteBytes is Temporal's default limit on a schedule's notes
// (ScheduleNotesSizeLimit). The server refuses a longer note, and a pause that always
// fails would abort the incident, in contain mode after its scope is already revoked.
const maxPauseNoteBytes = 1000

// pauseNote is the note the incident pauses schedules with, and later resumes only
// those still carrying it. A reason too long for it is cut (the whole reason stays in
// the incident's input and report).
func (r *incidentRun) pauseNote() string {
	return cutBytes(fmt.Sprintf("incident %s (%s): %s", r.in.IncidentID, r.in.Operator, r.in.Reason), maxPauseNoteBytes)
}

// cutBytes returns s if it fits in max bytes, else its longest prefix of whole
// characters that fits with "…" after it.
func cutBytes(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const ellipsis = "…"
	cut := max - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

func (r *incidentRun) pauseFailed() string {
	return fmt.Sprintf("pause schedules (some may be paused with the note %q: `keyturn schedules list` shows them)", r.pauseNote())
}

// stopRotationsOf terminates the rotations in flight of ids and returns their secrets.
func (r *incidentRun) stopRotationsOf(ctx, actx workflow.Context, ids []secret.ID) ([]secret.ID, error) {
	return r.stopRotationsSince(ctx, actx, ids, time.Time{})
}

// stopRotationsSince is stopRotationsOf that, with a non-zero since, also returns the
// secrets whose rotation ended since then.
func (r *incidentRun) stopRotationsSince(ctx, actx workflow.Context, ids []secret.ID, since time.Time) ([]secret.ID, error) {
	var stopped []secret.ID
	stop := activities.StopRotationsInput{IDs: ids, Reason: "superseded by incident " + r.in.IncidentID, EndedSince: since}
	err := workflow.ExecuteActivity(actx, incidentActs.StopRotations, stop).Get(ctx, &stopped)
	return stopped, err
}

// pauseSchedulesOf starts pausing the schedules of ids, with a note that names the
// incident: resuming checks it, so a schedule someone paused for another reason is never
// resumed on the incident's behalf. The returned future's Get adds what was paused to the
// incident's record.
func (r *incidentRun) pauseSchedulesOf(ctx workflow.Context, ids []secret.ID) workflow.Future {
	note := r.pauseNote()
	sctx := workflow.WithActivityOptions(ctx, scheduleStepOptions)
	f := workflow.ExecuteActivity(sctx, incidentActs.PauseSchedules, activities.SchedulesInput{IDs: ids, Note: note})
	done, settle := workflow.NewFuture(ctx)
	workflow.Go(ctx, func(ctx workflow.Context) {
		var paused activities.PausedSchedules
		err := f.Get(ctx, &paused)
		sch := &r.carry.Schedules
		sch.Note = note
		if err == nil {
			sch.Paused = append(sch.Paused, paused.Paused...)
			sch.KeptPaused = append(sch.KeptPaused, paused.KeptPaused...)
		} else {
			// Some schedules may be paused with the note before the failure; the report
			// says so, for `keyturn schedules resume --incident` to look for them.
			sch.PauseFailed = true
		}
		r.report.Schedules = sch.listed()
		settle.Set(nil, err)
	})
	return done
}

// work handles scope[start:end] with bounded parallelism and appends the reports in scope
// order.
func (r *incidentRun) work(ctx workflow.Context, start, end int) {
	parallel := r.in.Parallelism
	if parallel == 0 {
		parallel = DefaultIncidentParallelism
	}
	sem := workflow.NewSemaphore(ctx, int64(parallel))
	reports := make([]SecretReport, end-start)
	wg := workflow.NewWaitGroup(ctx)
	for i := start; i < end; i++ {
		if err := sem.Acquire(ctx, 1); err != nil {
			break
		}
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			defer sem.Release(1)
			var ms int64
			if i < len(r.carry.Contained) {
				ms = r.carry.Contained[i]
			}
			rep := r.one(ctx, r.carry.Scope[i], r.carry.Kinds[i], ms > 0, slices.Contains(r.carry.Stopped, r.carry.Scope[i]))
			if ms > 0 && rep.ContainedMs == 0 {
				rep.ContainedMs, rep.Batch = ms, true
			}
			if ms > 0 && i < len(r.carry.Ended) {
				rep.Ended = slices.Concat(r.carry.Ended[i], rep.Ended)
			}
			reports[i-start] = rep
			r.report.add(rep, ms > 0)
			if ms == 0 {
				r.settle(ctx, 1) // the batch had not contained it: its rotation did, or it failed
			}
			if r.secretDone != nil {
				r.secretDone(ctx)
			}
		})
	}
	wg.Wait(ctx)
	r.carry.Done = append(r.carry.Done, reports...)
}

// one runs the incident's Rotate workflow for one secret, stopping a rotation that holds
// the secret's workflow ID first.
func (r *incidentRun) one(ctx workflow.Context, id secret.ID, kind string, contained, stopped bool) SecretReport {
	rep := SecretReport{ID: id, Superseded: stopped}
	zero := time.Duration(0)
	input := RotateInput{
		SecretID: id, Grace: &zero, Reason: "incident " + r.in.IncidentID + ": " + r.in.Reason,
		RequestedBy: r.in.Operator, Contain: r.in.Mode == ModeContain, IncidentID: r.in.IncidentID,
		AlreadyContained: contained, Generation: RotateGeneration,
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            RotateWorkflowID(id),
		TaskQueue:             TaskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		// The rotation finishes its own compensation even if the incident is terminated.
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			SearchAttrSecretID.ValueSet(string(id)), SearchAttrKind.ValueSet(kind),
			SearchAttrStep.ValueSet(StepRunning), SearchAttrIncidentID.ValueSet(r.in.IncidentID),
		),
		StaticSummary: fmt.Sprintf("Incident %s: %s %s (%s)", r.in.IncidentID, r.in.Mode, id, kind),
	})
	actx := workflow.WithActivityOptions(ctx, incidentStepOptions)
	if stopped && r.in.Mode == ModeRotate {
		sctx := workflow.WithActivityOptions(ctx, supersedeOptions)
		if err := workflow.ExecuteActivity(sctx, acts.Supersede, activities.ContainInput{SecretID: id, Cause: r.cause()}).Get(ctx, nil); err != nil {
			rep.Outcome, rep.Error = OutcomeFailed, "clean up the rotation in flight: "+activities.ErrorMessage(err)
			return rep
		}
	}
	for attempt := 1; ; attempt++ {
		child := workflow.ExecuteChildWorkflow(cctx, RotateWorkflowName, input)
		err := child.GetChildWorkflowExecution().Get(ctx, nil)
		if err == nil {
			var res RotateResult
			err = child.Get(ctx, &res)
			if err != nil {
				res, _ = activities.DetailsOf[RotateResult](err)
				rep.Error = activities.ErrorMessage(err)
			}
			rep.Outcome = res.Outcome
			rep.ContainedMs = r.since(res.ContainedAt)
			rep.Ended = endedLines(res.EndedSessions)
			rep.RotatedMs = r.since(res.PromotedAt)
			return rep
		}
		if !temporal.IsWorkflowExecutionAlreadyStartedError(err) || attempt == maxStartAttempts {
			rep.Outcome = OutcomeFailed
			rep.Error = "start the rotation: " + activities.ErrorMessage(err)
			return rep
		}
		// A rotation holds the ID: stop it without its compensation, then clean up.
		stop := activities.StopInput{WorkflowID: RotateWorkflowID(id), Reason: "superseded by incident " + r.in.IncidentID}
		if err := workflow.ExecuteActivity(actx, incidentActs.StopRotation, stop).Get(ctx, nil); err != nil {
			rep.Outcome, rep.Error = OutcomeFailed, "stop the rotation in flight: "+activities.ErrorMessage(err)
			return rep
		}
		rep.Superseded = true
		// The stopped rotation may have made a credential after the batch containment.
		input.AlreadyContained = false
		if r.in.Mode == ModeRotate {
			// Contain mode revokes the stopped rotation's versions anyway.
			sctx := workflow.WithActivityOptions(ctx, supersedeOptions)
			if err := workflow.ExecuteActivity(sctx, acts.Supersede, activities.ContainInput{SecretID: id, Cause: r.cause()}).Get(ctx, nil); err != nil {
				rep.Outcome, rep.Error = OutcomeFailed, "clean up the rotation in flight: "+activities.ErrorMessage(err)
				return rep
			}
		}
	}
}

// since converts a time to milliseconds after the incident started; 0 for the zero time.
// cause names the incident as the actor of every change it makes, for the audit trail.
func (r *incidentRun) cause() *activities.Cause {
	return &activities.Cause{Actor: audit.Actor{Type: audit.ActorIncident, Name: r.in.IncidentID}, Reason: r.in.Reason, IncidentID: r.in.IncidentID}
}

func (r *incidentRun) since(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(1, t.Sub(r.carry.StartedAt).Milliseconds())
}
