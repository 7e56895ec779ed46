package workflows

import (
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/secret"
)

// IncidentPageWorkflowName is the registered name of the workflow that rotates one page
// of an incident's scope.
const IncidentPageWorkflowName = "IncidentPage"

// incidentPageID is the workflow ID of page k (from 0) of an incident.
func incidentPageID(incidentID string, k int) string {
	return fmt.Sprintf("%s/page/%d", IncidentWorkflowID(incidentID), k+1)
}

// IncidentPageInput is the work of one page of an incident: the incident's input (without
// its plan) and, for each secret, what the incident did to it before the page began.
type IncidentPageInput struct {
	Incident IncidentInput `json:"incident"`
	// Page is the page's index (from 0), which its progress signals name.
	Page      int          `json:"page"`
	StartedAt time.Time    `json:"startedAt"`
	Secrets   []PageSecret `json:"secrets"`
}

// PageSecret is one secret of a page and what the incident's first phase did to it.
type PageSecret struct {
	ID   secret.ID `json:"id"`
	Kind string    `json:"k"`
	// ContainedMs is when the batch containment contained it (0: it did not).
	ContainedMs int64 `json:"c,omitempty"`
	// Ended are the uses the batch containment ended (endedLines).
	Ended []string `json:"u,omitempty"`
	// Stopped says a rotation in flight was stopped for the incident.
	Stopped bool `json:"s,omitempty"`
}

// IncidentPage rotates one page of an incident's scope (contain mode: after the whole
// scope was contained) with the incident's parallelism, and returns a report per secret
// in page order. Its children are the secrets' Rotate workflows, as an incident's were
// before pages; its parent, the Incident, sends the notifications and counts.
func IncidentPage(ctx workflow.Context, in IncidentPageInput) ([]SecretReport, error) {
	r := &incidentRun{in: in.Incident}
	r.carry.StartedAt = in.StartedAt
	for _, s := range in.Secrets {
		r.carry.Scope = append(r.carry.Scope, s.ID)
		r.carry.Kinds = append(r.carry.Kinds, s.Kind)
		r.carry.Contained = append(r.carry.Contained, s.ContainedMs)
		r.carry.Ended = append(r.carry.Ended, s.Ended)
		if s.Stopped {
			r.carry.Stopped = append(r.carry.Stopped, s.ID)
		}
	}
	if parent := workflow.GetInfo(ctx).ParentWorkflowExecution; parent != nil {
		r.secretDone = func(ctx workflow.Context) {
			if r.report.Done%progressEvery == 0 && r.report.Done < len(in.Secrets) {
				// Not waited for: progress is a courtesy, and a parent that ended
				// meanwhile must not fail the page.
				workflow.SignalExternalWorkflow(ctx, parent.ID, parent.RunID, signalPageProgress,
					pageProgress{Page: in.Page, Progress: r.report.IncidentProgress})
			}
		}
	}
	r.work(ctx, 0, len(in.Secrets))
	// A cancelled page stops starting rotations: the secrets it never started say so.
	for i := range r.carry.Done {
		if r.carry.Done[i].ID == "" {
			r.carry.Done[i] = SecretReport{ID: in.Secrets[i].ID, Outcome: OutcomeAborted, Superseded: in.Secrets[i].Stopped,
				ContainedMs: in.Secrets[i].ContainedMs, Batch: in.Secrets[i].ContainedMs > 0, Ended: in.Secrets[i].Ended}
		}
	}
	return r.carry.Done, nil
}

// A page tells its incident how far it got every progressEvery secrets, so the
// incident's progress query moves while a page works instead of once per page.
const (
	signalPageProgress = "page-progress"
	progressEvery      = 50
)

// pageProgress is a page's progress so far: its own counts (Done, Rotated, ... of its
// secrets; Contained counts those its rotations contained, not the batch).
type pageProgress struct {
	Page     int              `json:"page"`
	Progress IncidentProgress `json:"progress"`
}

// livePage is the progress of the page being rotated; page -1 when none is.
type livePage struct {
	page     int
	progress IncidentProgress
}

// progress is the incident's progress: what its finished pages did, and what the page
// being rotated said last.
func (r *incidentRun) progress() IncidentProgress {
	p := r.report.IncidentProgress
	l := r.live.progress
	p.Done += l.Done
	p.Contained += l.Contained
	p.Rotated += l.Rotated
	p.Failed += l.Failed
	p.NeedsHuman += l.NeedsHuman
	p.AllContainedMs = max(p.AllContainedMs, l.AllContainedMs)
	p.AllRotatedMs = max(p.AllRotatedMs, l.AllRotatedMs)
	return p
}

// followPages keeps r.live up to date with the progress signals of the page being
// rotated; a late signal from a page that has finished is dropped.
func (r *incidentRun) followPages(ctx workflow.Context) {
	r.live.page = -1
	ch := workflow.GetSignalChannel(ctx, signalPageProgress)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var p pageProgress
			if !ch.Receive(ctx, &p) {
				return
			}
			if p.Page == r.live.page && p.Progress.Done > r.live.progress.Done {
				r.live.progress = p.Progress
			}
		}
	})
}

// workPage rotates page k in an IncidentPage child and counts its secrets. A page that
// could not run reports each of its secrets failed, with the reason.
func (r *incidentRun) workPage(ctx workflow.Context, k int, p *scopePage) {
	if len(p.secrets) == 0 {
		return
	}
	first := len(r.carry.Done)
	in := IncidentPageInput{Incident: r.in, Page: k, StartedAt: r.carry.StartedAt, Secrets: p.secrets}
	in.Incident.Planned = nil
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: incidentPageID(r.in.IncidentID, k),
		TaskQueue:  TaskQueue,
		// Cancelling the incident cancels the page through its context; terminating the
		// incident leaves the page to finish, as it leaves the rotations it started, so a
		// rotation is never cut off between its containment and its new credential.
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
		StaticSummary: fmt.Sprintf("Incident %s: secrets %d to %d of %d (%s to %s)", r.in.IncidentID,
			first+1, first+len(p.secrets), r.report.Total, p.secrets[0].ID, p.secrets[len(p.secrets)-1].ID),
	})
	var reports []SecretReport
	err := workflow.ExecuteChildWorkflow(cctx, IncidentPageWorkflowName, in).Get(ctx, &reports)
	if err == nil && len(reports) != len(p.secrets) {
		err = fmt.Errorf("the page reported %d secrets of %d", len(reports), len(p.secrets))
	}
	cancelled := ctx.Err() != nil
	if err != nil {
		reports = make([]SecretReport, len(p.secrets))
		for i, s := range p.secrets {
			reports[i] = SecretReport{ID: s.ID, Outcome: OutcomeFailed, Superseded: s.Stopped,
				ContainedMs: s.ContainedMs, Batch: s.ContainedMs > 0, Ended: s.Ended,
				Error: "rotate its page of the scope (each rotation's own workflow, rotate/<secret-id>, says how it ended): " + activities.ErrorMessage(err)}
			if cancelled {
				reports[i].Outcome = OutcomeAborted
			}
		}
	}
	for i, rep := range reports {
		batch := p.secrets[i].ContainedMs > 0
		r.report.add(rep, batch)
		if !batch && !cancelled {
			r.settle(ctx, 1)
		}
	}
	r.carry.Done = append(r.carry.Done, reports...)
}

// maxListedSecrets bounds the secrets an incident's report lists one by one, since the
// report travels as one payload: a scope up to that size is listed whole; a larger one
// lists the secrets that need a human (as many of them), and Unlisted counts the others,
// which were rotated as planned (each one's records are in the audit trail).
const maxListedSecrets = secretsPerRun

// listSecrets sets the report's Secrets from what the incident did.
func (r *incidentRun) listSecrets() {
	r.report.Secrets, r.report.Unlisted = listed(r.carry.Done)
}

// listed is every report if they are few; otherwise those that need a human, at most
// maxListedSecrets, and how many were left out.
func listed(done []SecretReport) ([]SecretReport, int) {
	if len(done) <= maxListedSecrets {
		return done, 0
	}
	var out []SecretReport
	for _, s := range done {
		if s.needsHuman() && len(out) < maxListedSecrets {
			out = append(out, s)
		}
	}
	return out, len(done) - len(out)
}
