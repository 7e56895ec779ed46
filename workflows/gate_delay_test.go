package workflows_test

import (
	"context"
	"time"

	"github.com/stretchr/testify/mock"
	sdkpb "go.temporal.io/api/sdk/v1"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/workflows"
)

// A target that records uses late (IAM's last-used data): an idle answer before
// Usage.NotBefore is not evidence, so the gate keeps waiting until then.

// iamDelay is the reporting delay the mocked target declares, like awsiam.LastUsedDelay.
const iamDelay = 4 * time.Hour

// idleLate mocks CheckUsage as an IAM key nobody uses answers: no use recorded, idle
// counting from the promotion plus iamDelay. It records when each check ran and the
// promotion time it was given.
func (s *rotateSuite) idleLate() (checks *[]time.Time, since *time.Time) {
	checks, since = new([]time.Time), new(time.Time)
	s.env.OnActivity(s.a.CheckUsage, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CheckUsageInput) (activities.CheckUsageResult, error) {
		*checks = append(*checks, s.env.Now())
		*since = in.Since
		return activities.CheckUsageResult{Usage: rotators.Usage{
			Checked:   "last use of access key AKIAOLD (iam:GetAccessKeyLastUsed); AWS may record a use up to about 4 hours late",
			NotBefore: in.Since.Add(iamDelay),
		}}, nil
	})
	return checks, since
}

// Idle answers inside the delay keep the gate waiting; it asks again exactly when the
// delay ends (not a poll interval later), and that idle answer revokes. The status says
// why it waits and from when idle counts.
func (s *rotateSuite) TestGateIdleInsideReportingDelayWaits() {
	s.planGate(0, activities.RevokeGate{MaxWait: 6 * time.Hour, Poll: 45 * time.Minute})
	s.upToPromote()
	checks, since := s.idleLate()
	s.revokeOK()
	sent := s.notified()
	var seen workflows.RotateStatus
	var details string
	s.env.RegisterDelayedCallback(func() {
		v, err := s.env.QueryWorkflow(workflows.QueryStatus)
		s.Require().NoError(err)
		s.Require().NoError(v.Get(&seen))
		d, err := s.env.QueryWorkflow("__temporal_workflow_metadata")
		s.Require().NoError(err)
		var md sdkpb.WorkflowMetadata
		s.Require().NoError(d.Get(&md))
		details = md.GetCurrentDetails()
	}, time.Hour)
	res, err := s.run(workflows.RotateInput{SecretID: id})
	s.Require().NoError(err)
	s.Equal(workflows.OutcomeRotated, res.Outcome)
	s.Equal(workflows.GateIdle, res.RevokeGate.State)
	// Checks at 0, 45m, ..., 3h45m, then at 4h when idle begins to count.
	s.Len(*checks, 7)
	last := (*checks)[len(*checks)-1]
	s.WithinDuration(since.Add(iamDelay), last, 0, "the last check runs when the delay ends")
	s.WithinDuration(since.Add(iamDelay), res.RevokeGate.Ended, 0)
	for _, at := range (*checks)[:len(*checks)-1] {
		s.True(at.Before(since.Add(iamDelay)), "every earlier check fell inside the delay")
	}
	s.True(res.RevokeGate.IdleFrom.IsZero(), "released: nothing pending")
	s.Empty(*sent, "a gate that never held sends nothing")

	s.Equal(workflows.GateWaiting, seen.RevokeGate.State)
	s.WithinDuration(since.Add(iamDelay), seen.RevokeGate.IdleFrom, 0)
	s.Empty(seen.RevokeGate.Uses)
	s.Contains(details, "no use seen yet; the target reports uses late, so idle counts from "+since.Add(iamDelay).UTC().Format("2006-01-02 15:04:05Z"))
	s.Contains(details, "4 hours late")
}

// max_wait ending inside the delay applies `then` as for a use: revoke anyway.
func (s *rotateSuite) TestGateMaxWaitInsideReportingDelayRevokesAnyway() {
	s.planGate(0, activities.RevokeGate{MaxWait: time.Hour, Poll: 10 * time.Minute})
	s.upToPromote()
	checks, since := s.idleLate()
	s.revokeOK()
	res, err := s.run(workflows.RotateInput{SecretID: id})
	s.Require().NoError(err)
	s.Equal(workflows.GateRevokedAnyway, res.RevokeGate.State, "no idle answer could count before max_wait")
	s.Len(*checks, 7, "0, 10m, ..., 1h")
	s.Equal(time.Hour, res.RevokeGate.Ended.Sub(res.RevokeGate.Since))
	s.WithinDuration(since.Add(iamDelay), res.RevokeGate.IdleFrom, 0, "the result says idle had not yet begun to count")
}

// With then: hold, max_wait inside the delay holds the revoke; the first idle answer
// after the delay releases it.
func (s *rotateSuite) TestGateHoldInsideReportingDelayThenIdle() {
	s.planGate(0, activities.RevokeGate{MaxWait: time.Hour, Poll: 10 * time.Minute, Hold: true})
	s.upToPromote()
	_, since := s.idleLate()
	s.revokeOK()
	sent := s.notified()
	res, err := s.run(workflows.RotateInput{SecretID: id})
	s.Require().NoError(err)
	s.Equal(workflows.OutcomeRotated, res.Outcome)
	s.Equal(workflows.GateIdle, res.RevokeGate.State)
	s.WithinDuration(res.RevokeGate.Since.Add(time.Hour), res.RevokeGate.HeldSince, 0)
	s.WithinDuration(since.Add(iamDelay), res.RevokeGate.Ended, 0)
	s.Equal([]string{string(notify.RevokeHeld), string(notify.RevokeReleased)}, typesOf(*sent))
}
