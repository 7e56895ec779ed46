package workflows_test

import (
	"context"
	"errors"
	"time"

	"github.com/stretchr/testify/mock"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// The revoke gate: after the grace period the rotation asks the target whether the
// previous version is still in use and waits, within the policy, before revoking it.

// session is an open session of the old role, as the Postgres rotator reports one.
var session = rotators.Use{User: "app_a", Application: "orders-api", Client: "10.0.0.5:41000", Since: time.Date(2026, 12, 3, 12, 1, 0, 0, time.UTC), Detail: "backend pid 4242"}

// planGate plans a rotation with a grace period and a revoke gate.
func (s *rotateSuite) planGate(grace time.Duration, gate activities.RevokeGate) {
	s.env.OnActivity(s.a.Plan, mock.Anything, mock.MatchedBy(func(in activities.PlanInput) bool { return in.SecretID == id })).
		Return(activities.PlanResult{Kind: "postgres", Grace: grace, Current: &v1, RevokeGate: &gate}, nil).Once()
}

// upToPromote mocks create, test and promote, all fine.
func (s *rotateSuite) upToPromote() {
	s.createOK()
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).Return(nil).Once()
	s.promoteOK()
}

// usage mocks CheckUsage: the old version is in use for the first busy checks, then idle.
// It counts the checks and when each happened (workflow time).
func (s *rotateSuite) usage(busy int) *[]time.Time {
	var checks []time.Time
	s.env.OnActivity(s.a.CheckUsage, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CheckUsageInput) (activities.CheckUsageResult, error) {
		s.Equal(v1.Token, in.Version.Token, "the gate asks about the previous version")
		s.Require().NotNil(in.Keep)
		s.Equal(v2.Token, in.Keep.Token, "and keeps the new one out of the count")
		s.False(in.Since.IsZero(), "from the promotion on")
		checks = append(checks, s.env.Now())
		if len(checks) <= busy {
			return activities.CheckUsageResult{Usage: rotators.Usage{Uses: []rotators.Use{session}, Checked: `sessions of role "app_a" in pg_stat_activity`}}, nil
		}
		return activities.CheckUsageResult{Usage: rotators.Usage{Checked: `sessions of role "app_a" in pg_stat_activity`}}, nil
	})
	return &checks
}

// notified records the types of the events the rotation sends.
func (s *rotateSuite) notified() *[]activities.NotifyInput {
	var sent []activities.NotifyInput
	s.env.OnActivity(s.a.Notify, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.NotifyInput) (activities.NotifyResult, error) {
		sent = append(sent, in)
		return activities.NotifyResult{}, nil
	}).Maybe() // the tests check what was sent
	return &sent
}

func (s *rotateSuite) revokeOK() {
	s.env.OnActivity(s.a.Revoke, mock.Anything, mock.MatchedBy(func(in activities.RevokeInput) bool { return in.Version.Token == v1.Token })).Return(activities.RevokeResult{}, nil).Once()
}

func stepsOf(res workflows.RotateResult) []string {
	var out []string
	for _, st := range res.Steps {
		out = append(out, st.Step)
	}
	return out
}

func typesOf(sent []activities.NotifyInput) []string {
	var out []string
	for _, in := range sent {
		out = append(out, in.Type)
	}
	return out
}

func (s *rotateSuite) TestGateIdleRevokesAtOnce() {
	s.planGate(time.Hour, activities.RevokeGate{MaxWait: time.Hour, Poll: 30 * time.Second})
	s.upToPromote()
	checks := s.usage(0)
	s.revokeOK()
	res, err := s.run(workflows.RotateInput{SecretID: id})
	s.Require().NoError(err)
	s.Equal(workflows.OutcomeRotated, res.Outcome)
	s.Equal([]string{"plan", "create", "test", "promote", "grace", "revoke_gate", "revoke"}, stepsOf(res))
	s.Len(*checks, 1)
	s.Require().NotNil(res.RevokeGate)
	s.Equal(workflows.GateIdle, res.RevokeGate.State)
	s.Equal(1, res.RevokeGate.Checks)
	s.Empty(res.RevokeGate.Uses)
}

func (s *rotateSuite) TestGateWaitsThenIdle() {
	s.planGate(0, activities.RevokeGate{MaxWait: time.Hour, Poll: 30 * time.Second})
	s.upToPromote()
	checks := s.usage(4)
	s.revokeOK()
	sent := s.notified()
	var seen workflows.RotateStatus
	s.env.RegisterDelayedCallback(func() {
		v, err := s.env.QueryWorkflow(workflows.QueryStatus)
		s.Require().NoError(err)
		s.Require().NoError(v.Get(&seen))
	}, 45*time.Second)
	res, err := s.run(workflows.RotateInput{SecretID: id})
	s.Require().NoError(err)
	s.Equal(workflows.OutcomeRotated, res.Outcome)
	s.Len(*checks, 5, "four busy checks, then the idle one")
	s.Equal(30*time.Second, (*checks)[1].Sub((*checks)[0]), "one check a poll interval")
	s.Equal(workflows.GateIdle, res.RevokeGate.State)
	s.Empty(*sent, "a gate that never held sends nothing")
	// While it waited, the status named the session.
	s.Equal(workflows.StepRevokeGate, seen.Step)
	s.Require().NotNil(seen.RevokeGate)
	s.Equal(workflows.GateWaiting, seen.RevokeGate.State)
	s.Equal([]rotators.Use{session}, seen.RevokeGate.Uses)
	s.Empty(seen.Outcome, "waiting is not an outcome")
}

func (s *rotateSuite) TestGateMaxWaitThenRevokesAnyway() {
	s.planGate(0, activities.RevokeGate{MaxWait: 10 * time.Minute, Poll: time.Minute})
	s.upToPromote()
	checks := s.usage(1000)
	s.revokeOK()
	res, err := s.run(workflows.RotateInput{SecretID: id})
	s.Require().NoError(err)
	s.Equal(workflows.OutcomeRotated, res.Outcome)
	s.Equal(workflows.GateRevokedAnyway, res.RevokeGate.State)
	s.Len(*checks, 11, "a check at 0, 1m, ..., 10m: the last one at max_wait decides")
	s.Equal([]rotators.Use{session}, res.RevokeGate.Uses, "the result says which uses were open when it revoked")
	s.Equal(10*time.Minute, res.RevokeGate.Ended.Sub(res.RevokeGate.Since))
}

func (s *rotateSuite) TestGateHoldsThenIdle() {
	s.planGate(0, activities.RevokeGate{MaxWait: 10 * time.Minute, Poll: time.Minute, Hold: true})
	s.upToPromote()
	checks := s.usage(30) // idle 30 minutes after the promotion: held for 20
	s.revokeOK()
	sent := s.notified()
	var held workflows.RotateStatus
	s.env.RegisterDelayedCallback(func() {
		v, err := s.env.QueryWorkflow(workflows.QueryStatus)
		s.Require().NoError(err)
		s.Require().NoError(v.Get(&held))
	}, 20*time.Minute)
	res, err := s.run(workflows.RotateInput{SecretID: id})
	s.Require().NoError(err)
	s.Equal(workflows.OutcomeRotated, res.Outcome)
	s.Len(*checks, 31)
	s.Equal(workflows.GateIdle, res.RevokeGate.State)
	s.False(res.RevokeGate.HeldSince.IsZero(), "the result keeps that it held")

	s.Equal(workflows.OutcomeRevokeHeld, held.Outcome)
	s.Equal(workflows.StepRevokeGate, held.Step)
	s.Equal(workflows.GateHeld, held.RevokeGate.State)
	s.Equal([]rotators.Use{session}, held.RevokeGate.Uses)

	s.Equal([]string{string(notify.RevokeHeld), string(notify.RevokeReleased)}, typesOf(*sent))
	h := (*sent)[0]
	s.Require().NotNil(h.Gate)
	s.Equal([]rotators.Use{session}, h.Gate.Uses, "revoke_held names the session")
	s.Equal(workflows.GateHeld, h.Gate.State)
	s.Equal(workflows.GateIdle, (*sent)[1].Gate.State)
}

func (s *rotateSuite) TestGateHoldThenOperatorRevokesNow() {
	s.planGate(0, activities.RevokeGate{MaxWait: 10 * time.Minute, Poll: time.Minute, Hold: true})
	s.upToPromote()
	checks := s.usage(1_000_000)
	s.revokeOK()
	sent := s.notified()
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(workflows.SignalRevokeNow, nil) }, 3*time.Hour)
	res, err := s.run(workflows.RotateInput{SecretID: id})
	s.Require().NoError(err)
	s.Equal(workflows.OutcomeRotated, res.Outcome)
	s.Equal(workflows.GateRevokedByOperator, res.RevokeGate.State)
	s.Equal(3*time.Hour, res.RevokeGate.Ended.Sub(res.RevokeGate.Since))
	s.Greater(len(*checks), 100, "held for hours, still checking")
	s.Equal([]string{string(notify.RevokeHeld), string(notify.RevokeReleased)}, typesOf(*sent))
}

// A hold of days backs its checks off, so the history stays bounded.
func (s *rotateSuite) TestGateHoldBacksOff() {
	s.planGate(0, activities.RevokeGate{MaxWait: time.Minute, Poll: 5 * time.Second, Hold: true})
	s.upToPromote()
	checks := s.usage(1_000_000)
	s.revokeOK()
	s.notified()
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(workflows.SignalRevokeNow, nil) }, 7*24*time.Hour)
	res, err := s.run(workflows.RotateInput{SecretID: id})
	s.Require().NoError(err)
	s.Equal(workflows.GateRevokedByOperator, res.RevokeGate.State)
	s.Less(len(*checks), 1000, "a week held at a 5s poll")
	last := *checks
	s.Equal(15*time.Minute, last[len(last)-1].Sub(last[len(last)-2]), "backed off to 15 minutes")
}

// An abort in the gate stops it without revoking and without rolling back: the new
// version has been current since the promotion.
func (s *rotateSuite) TestGateAbortStopsWithoutRollback() {
	s.planGate(0, activities.RevokeGate{MaxWait: 10 * time.Minute, Poll: time.Minute, Hold: true})
	s.upToPromote()
	s.usage(1_000_000)
	sent := s.notified()
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(workflows.SignalAbort, nil) }, 30*time.Minute)
	_, err := s.run(workflows.RotateInput{SecretID: id})
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr), "got %v", err)
	s.Equal(workflows.ErrTypeRevokeFailed, appErr.Type())
	var res workflows.RotateResult
	s.Require().NoError(appErr.Details(&res))
	s.Equal(workflows.OutcomeRevokeFailed, res.Outcome)
	s.Equal(workflows.GateStopped, res.RevokeGate.State)
	s.Nil(res.Rollback, "nothing rolled back")
	s.Equal(v2.Token, res.NewVersion.Token)
	s.Contains(res.Error, "an operator aborted at the revoke gate with 1 use(s) open (app_a as orders-api from 10.0.0.5:41000 since 12:01:00Z)")
	s.Contains(res.Error, "previous version 1 was not revoked")
	s.Equal([]string{string(notify.RevokeHeld), string(notify.RotationFailed)}, typesOf(*sent))
	// No Revoke and no Rollback were mocked: the test fails if either ran.
}

// Cancelling the workflow in the gate is like an abort: nothing is revoked or rolled back.
func (s *rotateSuite) TestGateCancelStopsWithoutRollback() {
	s.planGate(0, activities.RevokeGate{MaxWait: 10 * time.Minute, Poll: time.Minute})
	s.upToPromote()
	s.usage(1_000_000)
	s.notified()
	s.env.RegisterDelayedCallback(func() { s.env.CancelWorkflow() }, 5*time.Minute)
	_, err := s.run(workflows.RotateInput{SecretID: id})
	s.Require().True(temporal.IsCanceledError(err), "got %v", err)
	res, ok := activities.DetailsOf[workflows.RotateResult](err)
	s.Require().True(ok)
	s.Equal(workflows.OutcomeRevokeFailed, res.Outcome)
	s.Equal(workflows.GateStopped, res.RevokeGate.State)
}

// A check that fails is no evidence of idleness: the gate keeps waiting, says why, and
// max_wait still bounds it.
func (s *rotateSuite) TestGateFailingCheckIsNotIdle() {
	s.planGate(0, activities.RevokeGate{MaxWait: 3 * time.Minute, Poll: time.Minute})
	s.upToPromote()
	s.env.OnActivity(s.a.CheckUsage, mock.Anything, mock.Anything).
		Return(activities.CheckUsageResult{}, temporal.NewNonRetryableApplicationError("admin lacks pg_read_all_stats", activities.ErrTypePermissionDenied, nil))
	s.revokeOK()
	res, err := s.run(workflows.RotateInput{SecretID: id})
	s.Require().NoError(err)
	s.Equal(workflows.GateRevokedAnyway, res.RevokeGate.State)
	s.Equal(4, res.RevokeGate.Checks)
	s.Contains(res.RevokeGate.LastError, "pg_read_all_stats")
}

// A first rotation has nothing to revoke, an incident revokes now: neither waits.
func (s *rotateSuite) TestGateSkippedWithoutPreviousOrInIncident() {
	gate := activities.RevokeGate{MaxWait: time.Hour, Poll: time.Minute}
	s.env.OnActivity(s.a.Plan, mock.Anything, mock.Anything).Return(activities.PlanResult{Kind: "postgres", Grace: time.Hour, Current: &v1, RevokeGate: &gate}, nil).Once()
	s.upToPromote()
	s.revokeOK()
	res, err := s.run(workflows.RotateInput{SecretID: id, IncidentID: "inc-1", Grace: new(time.Duration)})
	s.Require().NoError(err)
	s.Nil(res.RevokeGate)
	s.NotContains(stepsOf(res), workflows.StepRevokeGate)
}

// A contain-mode rotation skips the gate and records the sessions its containment ended.
func (s *rotateSuite) TestContainSkipsTheGateAndRecordsEndedSessions() {
	gate := activities.RevokeGate{MaxWait: time.Hour, Poll: time.Minute, Hold: true}
	s.env.OnActivity(s.a.Plan, mock.Anything, mock.Anything).Return(activities.PlanResult{Kind: "postgres", Grace: time.Hour, Current: &v1, RevokeGate: &gate}, nil).Once()
	s.env.OnActivity(s.a.Contain, mock.Anything, mock.Anything).Return(activities.ContainResult{
		ContainResult: rotation.ContainResult{Revoked: []int{1}, Ended: []rotators.Use{session}}, ContainedAt: time.Now()}, nil).Once()
	s.createOK()
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).Return(nil).Once()
	cur := v2
	cur.Stages = []secret.Stage{secret.StageCurrent}
	s.env.OnActivity(s.a.Promote, mock.Anything, mock.Anything).Return(rotation.PromoteResult{Current: cur}, nil).Once()
	s.env.OnActivity(s.a.Revoke, mock.Anything, mock.Anything).Return(activities.RevokeResult{}, nil).Maybe() // already contained: idempotent
	res, err := s.run(workflows.RotateInput{SecretID: id, Contain: true, IncidentID: "inc-1"})
	s.Require().NoError(err)
	s.Nil(res.RevokeGate)
	s.Equal([]rotators.Use{session}, res.EndedSessions)
}

// The Web UI's details line names the gate and the session while it holds.
func (s *rotateSuite) TestGateDetailsNameTheUses() {
	s.planGate(0, activities.RevokeGate{MaxWait: time.Minute, Poll: 30 * time.Second, Hold: true})
	s.upToPromote()
	s.usage(1_000_000)
	s.revokeOK()
	s.notified()
	var details string
	s.env.RegisterDelayedCallback(func() {
		d, err := s.env.QueryWorkflow("__temporal_workflow_metadata")
		s.Require().NoError(err)
		var md sdkpb.WorkflowMetadata
		s.Require().NoError(d.Get(&md))
		details = md.GetCurrentDetails()
		s.env.SignalWorkflow(workflows.SignalRevokeNow, nil)
	}, 10*time.Minute)
	_, err := s.run(workflows.RotateInput{SecretID: id})
	s.Require().NoError(err)
	s.Contains(details, "revoke held since")
	s.Contains(details, "1 use(s) open (app_a as orders-api from 10.0.0.5:41000 since 12:01:00Z)")
	s.Contains(details, "keyturn revoke-now prod/orders-db/app")
}
