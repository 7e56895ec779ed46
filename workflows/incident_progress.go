package workflows

import (
	"errors"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Outcomes of an incident: the outcome of its incident_finished event and the outcome
// label of keyturn_incidents_total. They reuse the rotation outcomes' words where the
// meaning carries over.
const (
	// IncidentRotated: every secret in scope has a new credential, tested and promoted
	// (in contain mode after every earlier one was refused), and none needs a human. The
	// workflow completed.
	IncidentRotated = OutcomeRotated
	// IncidentFailed: at least one secret failed or needs a human, or a step of the
	// incident itself failed (pausing or resuming schedules, stopping the rotations in
	// flight) and it stopped there. The workflow failed; its report says what and where.
	IncidentFailed = OutcomeFailed
	// IncidentAborted: the incident was cancelled before it finished.
	IncidentAborted = OutcomeAborted
	// IncidentRejected: the incident changed nothing: its input was invalid or its scope
	// matched no secret in the worker's inventory.
	IncidentRejected = "rejected"
)

// IncidentOutcome names how an incident ended from its report and the error it ended
// with; cancelled says the incident's context was cancelled. It returns "" for a run that
// continued as new: the incident goes on. The workflow (for its incident_finished event)
// and the worker's metrics (keyturn_incidents_total) both ask it, so they agree.
func IncidentOutcome(rep IncidentReport, err error, cancelled bool) string {
	var appErr *temporal.ApplicationError
	switch {
	case workflow.IsContinueAsNewError(err):
		return ""
	case cancelled || temporal.IsCanceledError(err):
		return IncidentAborted
	case errors.As(err, &appErr) && (appErr.Type() == ErrTypeInvalidInput || appErr.Type() == ErrTypeEmptyScope):
		return IncidentRejected
	case err != nil || len(rep.NeedingHuman()) > 0:
		return IncidentFailed
	}
	return IncidentRotated
}

// NeedingHuman lists the secrets whose rotation ended in a state the incident cannot
// finish by itself: anything but a tested, promoted new credential with the old one
// refused.
func (rep IncidentReport) NeedingHuman() []SecretReport {
	var out []SecretReport
	for _, s := range rep.Secrets {
		if s.needsHuman() {
			out = append(out, s)
		}
	}
	return out
}

func (s SecretReport) needsHuman() bool { return s.Outcome != OutcomeRotated || s.Error != "" }

// Progress is what the runs before this one did: the counts a run that continues an
// incident starts from (zero for the first run, whose carry is nil). The worker's
// metrics subtract it from the run's report to count each secret once.
func (c *IncidentCarry) Progress() IncidentProgress {
	var p IncidentProgress
	if c == nil {
		return p
	}
	p.Total = len(c.Scope)
	p.ScopeDiff = c.ScopeDiff
	for _, ms := range c.Contained {
		p.addContained(ms)
	}
	for i, s := range c.Done {
		p.add(s, c.batchContained(i))
	}
	return p
}

// batchContained reports whether the first run's batch containment contained the
// secret at scope index i (and counted it then).
func (c *IncidentCarry) batchContained(i int) bool {
	return i < len(c.Contained) && c.Contained[i] > 0
}

// addContained counts a secret the batch containment contained, ms after the start;
// 0 means it did not.
func (p *IncidentProgress) addContained(ms int64) {
	if ms > 0 {
		p.Contained++
		p.AllContainedMs = max(p.AllContainedMs, ms)
	}
}

// add counts one secret's finished work. batch says the batch containment contained it
// and counted it already: contained again by its own rotation (a rotation in flight made
// a credential after the batch), it moves the containment time but is one secret still.
func (p *IncidentProgress) add(rep SecretReport, batch bool) {
	p.Done++
	if rep.ContainedMs > 0 {
		if !batch {
			p.Contained++
		}
		p.AllContainedMs = max(p.AllContainedMs, rep.ContainedMs)
	}
	if rep.RotatedMs > 0 && rep.Error == "" {
		p.Rotated++
		p.AllRotatedMs = max(p.AllRotatedMs, rep.RotatedMs)
	}
	if rep.Error != "" {
		p.Failed++
	}
	if rep.needsHuman() {
		p.NeedsHuman++
	}
}
