package workflows_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/worker"
	"github.com/keyturn/keyturn/workflows"
)

// These tests run the Rotate workflow with mocked activities: they check the
// orchestration (order, retries, rollback, signals, cancel), not the steps themselves.

type rotateSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment
	a   *activities.Activities
}

func TestRotate(t *testing.T) { suite.Run(t, new(rotateSuite)) }

const id = secret.ID("prod/orders-db/app")

var (
	v1 = secret.Version{SecretID: id, Token: "v1", Number: 1, Stages: []secret.Stage{secret.StageCurrent}, Metadata: map[string]string{"role": "app_a"}}
	v2 = secret.Version{SecretID: id, Token: "rotate/prod/orders-db/app/run", Number: 2, Stages: []secret.Stage{secret.StagePending}, Metadata: map[string]string{"role": "app_b"}}
)

func (s *rotateSuite) SetupTest() {
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	s.env = s.NewTestWorkflowEnvironment()
	s.a = activities.NewActivities(nil)
	worker.Register(s.env, s.a)
	s.env.SetStartWorkflowOptions(clientOptions())
}

func (s *rotateSuite) AfterTest(_, _ string) { s.env.AssertExpectations(s.T()) }

func (s *rotateSuite) plan(grace time.Duration) {
	s.env.OnActivity(s.a.Plan, mock.Anything, mock.MatchedBy(func(in activities.PlanInput) bool { return in.SecretID == id })).
		Return(activities.PlanResult{Kind: "postgres", Grace: grace, Current: &v1}, nil).Once()
}

func (s *rotateSuite) createOK() {
	s.env.OnActivity(s.a.Create, mock.Anything, mock.Anything).Return(rotation.CreateResult{Version: v2}, nil).Once()
}

func (s *rotateSuite) promoteOK() {
	cur := v2
	cur.Stages = []secret.Stage{secret.StageCurrent}
	prev := v1
	prev.Stages = []secret.Stage{secret.StagePrevious}
	s.env.OnActivity(s.a.Promote, mock.Anything, mock.Anything).Return(rotation.PromoteResult{Current: cur, Previous: &prev}, nil).Once()
}

func (s *rotateSuite) run(in workflows.RotateInput) (workflows.RotateResult, error) {
	s.env.ExecuteWorkflow(workflows.RotateWorkflowName, in)
	s.True(s.env.IsWorkflowCompleted())
	var res workflows.RotateResult
	err := s.env.GetWorkflowError()
	if err == nil {
		s.NoError(s.env.GetWorkflowResult(&res))
	}
	return res, err
}

func (s *rotateSuite) TestHappyPath() {
	s.plan(time.Hour)
	s.createOK()
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).Return(nil).Once()
	s.promoteOK()
	s.env.OnActivity(s.a.Revoke, mock.Anything, mock.MatchedBy(func(in activities.RevokeInput) bool {
		return in.Version.Token == v1.Token && in.Keep != nil && in.Keep.Token == v2.Token
	})).Return(activities.RevokeResult{}, nil).Once()

	res, err := s.run(workflows.RotateInput{SecretID: id})
	s.Require().NoError(err)
	s.Equal(workflows.OutcomeRotated, res.Outcome)
	s.Equal(v2.Token, res.NewVersion.Token)
	s.Equal(v1.Token, res.PreviousVersion.Token)
	var steps []string
	for _, st := range res.Steps {
		steps = append(steps, st.Step)
	}
	s.Equal([]string{"plan", "create", "test", "promote", "grace", "revoke"}, steps)
	s.Equal(time.Hour, res.Steps[4].Duration, "the grace timer runs its full length")
}

func (s *rotateSuite) TestVersionTokenIsWorkflowAndRunID() {
	s.plan(0)
	var token secret.VersionToken
	s.env.OnActivity(s.a.Create, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.StepInput) (rotation.CreateResult, error) {
		token = in.Token
		return rotation.CreateResult{Version: v2}, nil
	}).Once()
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).Return(nil).Once()
	s.promoteOK()
	s.env.OnActivity(s.a.Revoke, mock.Anything, mock.Anything).Return(activities.RevokeResult{}, nil).Once()
	_, err := s.run(workflows.RotateInput{SecretID: id})
	s.Require().NoError(err)
	s.Regexp(`^rotate/prod/orders-db/app/.+`, string(token))
}

func (s *rotateSuite) TestCreateRetryableFailureIsRetriedThenSucceeds() {
	s.plan(0)
	s.env.OnActivity(s.a.Create, mock.Anything, mock.Anything).
		Return(rotation.CreateResult{}, temporal.NewApplicationError("connection refused", "KeyturnStepFailed")).Twice()
	s.createOK()
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).Return(nil).Once()
	s.promoteOK()
	s.env.OnActivity(s.a.Revoke, mock.Anything, mock.Anything).Return(activities.RevokeResult{}, nil).Once()
	res, err := s.run(workflows.RotateInput{SecretID: id})
	s.Require().NoError(err)
	s.Equal(workflows.OutcomeRotated, res.Outcome)
}

// Every step's failure, retryable (exhausting the bounded retries) and not, ends in a
// rollback with the previous version restored.
func (s *rotateSuite) TestStepFailuresRollBack() {
	for _, tc := range []struct {
		name      string
		step      string
		err       error
		wantCalls int
	}{
		{"create non-retryable", "create", temporal.NewNonRetryableApplicationError("no CREATEROLE", activities.ErrTypePermissionDenied, nil), 1},
		{"create retryable exhausts retries", "create", temporal.NewApplicationError("connection refused", "KeyturnStepFailed"), 5},
		{"test rejected exhausts retries", "test", temporal.NewApplicationError("credential rejected", activities.ErrTypeCredentialRejected), 6},
		{"test invalid config", "test", temporal.NewNonRetryableApplicationError("bad check query", activities.ErrTypeInvalidConfig, nil), 1},
		{"promote retryable exhausts retries", "promote", temporal.NewApplicationError("store down", "KeyturnStepFailed"), 6},
	} {
		s.Run(tc.name, func() {
			s.SetupTest()
			s.plan(0)
			switch tc.step {
			case "create":
				s.env.OnActivity(s.a.Create, mock.Anything, mock.Anything).Return(rotation.CreateResult{}, tc.err).Times(tc.wantCalls)
			case "test":
				s.createOK()
				s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).Return(tc.err).Times(tc.wantCalls)
			case "promote":
				s.createOK()
				s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).Return(nil).Once()
				s.env.OnActivity(s.a.Promote, mock.Anything, mock.Anything).Return(rotation.PromoteResult{}, tc.err).Times(tc.wantCalls)
			}
			s.env.OnActivity(s.a.Rollback, mock.Anything, mock.MatchedBy(func(in activities.RollbackInput) bool {
				return in.Restore != nil && in.Restore.Token == v1.Token
			})).Return(rotation.RollbackResult{Restored: &v1, RestoredVerified: true, Discarded: true}, nil).Once()

			_, err := s.run(workflows.RotateInput{SecretID: id})
			var appErr *temporal.ApplicationError
			s.Require().True(errors.As(err, &appErr), "workflow error %v", err)
			s.Equal(workflows.ErrTypeRolledBack, appErr.Type())
			s.Contains(appErr.Error(), "version 1 is current and was verified to work")
			var res workflows.RotateResult
			s.Require().NoError(appErr.Details(&res))
			s.Equal(workflows.OutcomeRolledBack, res.Outcome)
			s.True(res.Rollback.RestoredVerified)
			s.env.AssertExpectations(s.T())
		})
	}
}

func (s *rotateSuite) TestFirstRotationDoesNotWaitOutGrace() {
	s.env.OnActivity(s.a.Plan, mock.Anything, mock.Anything).Return(activities.PlanResult{Kind: "postgres", Grace: 24 * time.Hour}, nil).Once()
	s.createOK()
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).Return(nil).Once()
	s.env.OnActivity(s.a.Promote, mock.Anything, mock.Anything).Return(rotation.PromoteResult{Current: v2}, nil).Once()
	res, err := s.run(workflows.RotateInput{SecretID: id})
	s.Require().NoError(err)
	s.Equal(workflows.OutcomeRotated, res.Outcome)
	for _, st := range res.Steps {
		s.NotEqual(workflows.StepGrace, st.Step, "nothing to revoke, so no grace period")
	}
}

func (s *rotateSuite) TestPlanUnknownSecretFailsWithoutRollback() {
	s.env.OnActivity(s.a.Plan, mock.Anything, mock.Anything).
		Return(activities.PlanResult{}, temporal.NewNonRetryableApplicationError("unknown secret", activities.ErrTypeUnknownSecret, nil)).Once()
	_, err := s.run(workflows.RotateInput{SecretID: id})
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr))
	s.Equal(workflows.ErrTypeFailed, appErr.Type())
}

func (s *rotateSuite) TestInvalidInputRejected() {
	_, err := s.run(workflows.RotateInput{SecretID: "Not A Path"})
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr))
	s.Equal(workflows.ErrTypeInvalidInput, appErr.Type())
	s.True(appErr.NonRetryable())
}

func (s *rotateSuite) TestSkipGraceSignal() {
	s.plan(24 * time.Hour)
	s.createOK()
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).Return(nil).Once()
	s.promoteOK()
	s.env.OnActivity(s.a.Revoke, mock.Anything, mock.Anything).Return(activities.RevokeResult{}, nil).Once()
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(workflows.SignalSkipGrace, nil) }, time.Minute)
	res, err := s.run(workflows.RotateInput{SecretID: id})
	s.Require().NoError(err)
	s.Equal(workflows.OutcomeRotated, res.Outcome)
	s.Less(res.Steps[4].Duration, 2*time.Minute)
}

// TestSkipGraceWhateverThePayload: the operator's name in a signal is recorded, and a
// signal whose payload is not an OperatorSignal (a string typed in the Web UI) is still
// obeyed: a payload that does not decode must not be dropped.
func (s *rotateSuite) TestSkipGraceWhateverThePayload() {
	for _, payload := range []any{"now please", workflows.OperatorSignal{By: "alice"}, 42} {
		s.SetupTest()
		s.plan(24 * time.Hour)
		s.createOK()
		s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).Return(nil).Once()
		s.promoteOK()
		s.env.OnActivity(s.a.Revoke, mock.Anything, mock.Anything).Return(activities.RevokeResult{}, nil).Once()
		var operator *activities.Cause
		s.env.OnActivity(s.a.Audit, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AuditInput) error {
			if in.Event == audit.EventOperator {
				operator = in.Cause
			}
			return nil
		}).Maybe()
		s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(workflows.SignalSkipGrace, payload) }, time.Minute)
		res, err := s.run(workflows.RotateInput{SecretID: id})
		s.Require().NoError(err, "payload %v", payload)
		s.Equal(workflows.OutcomeRotated, res.Outcome)
		s.Less(res.Steps[4].Duration, 2*time.Minute, "payload %v: the skip-grace was not obeyed", payload)
		s.Require().NotNil(operator, "payload %v: the skip-grace was not recorded", payload)
		want := ""
		if p, ok := payload.(workflows.OperatorSignal); ok {
			want = p.By
		}
		s.Equal(audit.Actor{Type: audit.ActorOperator, Name: want}, operator.Actor)
	}
}

func (s *rotateSuite) TestAbortDuringGraceRepromotesPrevious() {
	s.plan(time.Hour)
	s.createOK()
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).Return(nil).Once()
	s.promoteOK()
	s.env.OnActivity(s.a.Rollback, mock.Anything, mock.MatchedBy(func(in activities.RollbackInput) bool {
		return in.Restore != nil && in.Restore.Token == v1.Token && in.Token != ""
	})).Return(rotation.RollbackResult{Restored: &v1, RestoredVerified: true, Repromoted: true}, nil).Once()
	s.env.RegisterDelayedCallback(func() {
		var st workflows.RotateStatus
		v, err := s.env.QueryWorkflow(workflows.QueryStatus)
		s.Require().NoError(err)
		s.Require().NoError(v.Get(&st))
		s.Equal(workflows.StepGrace, st.Step)
		s.env.SignalWorkflow(workflows.SignalAbort, nil)
	}, 10*time.Minute)
	res := s.runCanceled(workflows.RotateInput{SecretID: id})
	s.Equal(workflows.OutcomeAborted, res.Outcome)
	s.True(res.Rollback.Repromoted)
}

func (s *rotateSuite) TestCancelDuringGraceRunsCompensation() {
	s.plan(time.Hour)
	s.createOK()
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).Return(nil).Once()
	s.promoteOK()
	s.env.OnActivity(s.a.Rollback, mock.Anything, mock.Anything).
		Return(rotation.RollbackResult{Restored: &v1, RestoredVerified: true, Repromoted: true}, nil).Once()
	s.env.RegisterDelayedCallback(func() { s.env.CancelWorkflow() }, 10*time.Minute)
	_, err := s.run(workflows.RotateInput{SecretID: id})
	s.Require().Error(err)
	var canceled *temporal.CanceledError
	s.True(errors.As(err, &canceled), "want a cancelled workflow, got %v", err)
}

func (s *rotateSuite) TestStatusQueryCarriesReferencesOnly() {
	s.plan(time.Hour)
	s.createOK()
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).Return(nil).Once()
	s.promoteOK()
	s.env.OnActivity(s.a.Revoke, mock.Anything, mock.Anything).Return(activities.RevokeResult{}, nil).Once()
	s.env.RegisterDelayedCallback(func() {
		v, err := s.env.QueryWorkflow(workflows.QueryStatus)
		s.Require().NoError(err)
		var st workflows.RotateStatus
		s.Require().NoError(v.Get(&st))
		s.Equal(workflows.StepGrace, st.Step)
		s.Equal(v2.Token, st.NewVersion.Token)
		s.Equal(v1.Token, st.PreviousVersion.Token)
		s.False(st.GraceUntil.IsZero())
	}, 30*time.Minute)
	_, err := s.run(workflows.RotateInput{SecretID: id})
	s.Require().NoError(err)
}

// runCanceled runs a rotation that must end Canceled (an abort), and returns the result
// it carries.
func (s *rotateSuite) runCanceled(in workflows.RotateInput) workflows.RotateResult {
	_, err := s.run(in)
	var canceled *temporal.CanceledError
	s.Require().True(errors.As(err, &canceled), "an aborted rotation must end Canceled, never Completed: %v", err)
	var res workflows.RotateResult
	s.Require().NoError(canceled.Details(&res))
	return res
}

func TestRotateWorkflowID(t *testing.T) {
	require.Equal(t, "rotate/prod/orders-db/app", workflows.RotateWorkflowID(id))
}

func (s *rotateSuite) TestAbortBeforePromoteNeverPromotes() {
	s.plan(time.Hour)
	s.createOK()
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).After(5 * time.Minute).Return(nil).Once()
	s.env.OnActivity(s.a.Rollback, mock.Anything, mock.MatchedBy(func(in activities.RollbackInput) bool {
		return in.Failed != nil && in.Failed.Token == v2.Token && in.Restore != nil && in.Restore.Token == v1.Token
	})).Return(rotation.RollbackResult{Restored: &v1, RestoredVerified: true, Discarded: true, Revoked: true}, nil).Once()
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(workflows.SignalAbort, nil) }, time.Minute)
	res := s.runCanceled(workflows.RotateInput{SecretID: id})
	s.Equal(workflows.OutcomeAborted, res.Outcome)
	// No Promote expectation is registered: a call would fail the test.
}

func (s *rotateSuite) TestCancelDuringCreateRollsBack() {
	s.plan(0)
	s.env.OnActivity(s.a.Create, mock.Anything, mock.Anything).After(time.Hour).Return(rotation.CreateResult{Version: v2}, nil).Once()
	s.env.OnActivity(s.a.Rollback, mock.Anything, mock.Anything).
		Return(rotation.RollbackResult{Restored: &v1, RestoredVerified: true, Discarded: true, Revoked: true}, nil).Once()
	s.env.RegisterDelayedCallback(func() { s.env.CancelWorkflow() }, time.Minute)
	_, err := s.run(workflows.RotateInput{SecretID: id})
	var canceled *temporal.CanceledError
	s.True(errors.As(err, &canceled), "want a cancelled workflow, got %v", err)
}

func (s *rotateSuite) TestFirstRotationFailureHasNothingToRestore() {
	s.env.OnActivity(s.a.Plan, mock.Anything, mock.Anything).Return(activities.PlanResult{Kind: "postgres"}, nil).Once()
	s.createOK()
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).
		Return(temporal.NewNonRetryableApplicationError("check failed", activities.ErrTypeCheckFailed, nil)).Once()
	s.env.OnActivity(s.a.Rollback, mock.Anything, mock.MatchedBy(func(in activities.RollbackInput) bool {
		return in.Restore == nil && in.Failed != nil && in.Failed.Token == v2.Token
	})).Return(rotation.RollbackResult{Discarded: true, Revoked: true}, nil).Once()
	_, err := s.run(workflows.RotateInput{SecretID: id})
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr))
	s.Equal(workflows.ErrTypeRolledBack, appErr.Type())
	s.Contains(appErr.Message(), "no current version")
}

// TestContainModeRevokesAgain: a contain-mode rotation revokes its previous version
// after promoting, even though its own Contain step revoked it: a rotation the incident
// stopped may still have had a rollback running that re-applied it.
func (s *rotateSuite) TestContainModeRevokesAgain() {
	s.plan(0)
	s.env.OnActivity(s.a.Contain, mock.Anything, mock.Anything).Return(activities.ContainResult{}, nil).Once()
	s.createOK()
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).Return(nil).Once()
	s.promoteOK()
	s.env.OnActivity(s.a.Revoke, mock.Anything, mock.MatchedBy(func(in activities.RevokeInput) bool {
		return in.Version.Token == v1.Token
	})).Return(activities.RevokeResult{}, nil).Once()
	res, err := s.run(workflows.RotateInput{SecretID: id, Contain: true, IncidentID: "inc-1"})
	s.Require().NoError(err)
	s.Equal(workflows.OutcomeRotated, res.Outcome)
	var steps []string
	for _, st := range res.Steps {
		steps = append(steps, st.Step)
	}
	s.Equal([]string{"plan", "contain", "create", "test", "promote", "revoke"}, steps)
}

// TestContainModeAfterBatchRevokesAgain: the same after an incident's batch containment,
// where the rotation runs no Contain step of its own.
func (s *rotateSuite) TestContainModeAfterBatchRevokesAgain() {
	s.plan(0)
	s.createOK()
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).Return(nil).Once()
	s.promoteOK()
	s.env.OnActivity(s.a.Revoke, mock.Anything, mock.MatchedBy(func(in activities.RevokeInput) bool {
		return in.Version.Token == v1.Token
	})).Return(activities.RevokeResult{}, nil).Once()
	res, err := s.run(workflows.RotateInput{SecretID: id, Contain: true, AlreadyContained: true, IncidentID: "inc-1"})
	s.Require().NoError(err)
	s.Equal(workflows.OutcomeRotated, res.Outcome)
}
