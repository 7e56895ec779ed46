package workflows_test

import (
	"context"
	"errors"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/workflows"
)

// started lists the rotation steps a run started, local and regular activities apart, in
// order (the audit and notification activities around them are left out).
type started struct{ local, regular []string }

func (s *rotateSuite) watchStarts() *started {
	st := &started{}
	isStep := func(name string) bool { return name != "Audit" && name != "Notify" }
	s.env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []any) {
		if isStep(info.ActivityType.Name) {
			st.local = append(st.local, info.ActivityType.Name)
		}
	})
	s.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if isStep(info.ActivityType.Name) {
			st.regular = append(st.regular, info.ActivityType.Name)
		}
	})
	return st
}

// quickPlan mocks the plan of a kind whose worker generates the material (QuickCreate).
func (s *rotateSuite) quickPlan(grace time.Duration) {
	s.env.OnActivity(s.a.Plan, mock.Anything, mock.Anything).
		Return(activities.PlanResult{Kind: "postgres", Grace: grace, Current: &v1, QuickCreate: true}, nil).Once()
}

func (s *rotateSuite) testAndRevokeOK() {
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).Return(nil).Once()
	s.env.OnActivity(s.a.Revoke, mock.Anything, mock.Anything).Return(activities.RevokeResult{EndRecorded: true}, nil).Once()
}

// TestQuickStepsRunLocally: in the current generation the plan, Create (for a kind whose
// material the worker generates), Promote and, after a grace period, Revoke run as local
// activities; Test is the run's one regular activity.
func (s *rotateSuite) TestQuickStepsRunLocally() {
	st := s.watchStarts()
	s.quickPlan(time.Hour)
	s.createOK()
	s.promoteOK()
	s.testAndRevokeOK()

	res, err := s.run(workflows.RotateInput{SecretID: id, Generation: workflows.RotateGeneration})
	s.Require().NoError(err)
	s.Equal(workflows.OutcomeRotated, res.Outcome)
	s.Equal([]string{"Plan", "Create", "Promote", "Revoke"}, st.local)
	s.Equal([]string{"Test"}, st.regular)
}

// TestRevokeWithoutGraceIsARegularActivity: with no grace period nothing durable stands
// between the promote's decision and the revoke, so the revoke is a regular activity: a
// workflow task run again (a signal arrived, a worker died) must not find an abort and
// roll back a rotation whose previous version a lost local revoke already revoked.
func (s *rotateSuite) TestRevokeWithoutGraceIsARegularActivity() {
	st := s.watchStarts()
	s.quickPlan(0)
	s.createOK()
	s.promoteOK()
	s.testAndRevokeOK()

	_, err := s.run(workflows.RotateInput{SecretID: id, Generation: workflows.RotateGeneration})
	s.Require().NoError(err)
	s.Equal([]string{"Plan", "Create", "Promote"}, st.local)
	s.Equal([]string{"Test", "Revoke"}, st.regular)
}

// TestContainModeRevokesLocally: in contain mode a rollback restores nothing and keeps
// the new version, so the revoke after the promote runs locally even without a grace
// period (incidents rotate with none).
func (s *rotateSuite) TestContainModeRevokesLocally() {
	st := s.watchStarts()
	s.quickPlan(0)
	s.createOK()
	s.promoteOK()
	s.testAndRevokeOK()

	_, err := s.run(workflows.RotateInput{SecretID: id, Contain: true, AlreadyContained: true, IncidentID: "inc-1", Generation: workflows.RotateGeneration})
	s.Require().NoError(err)
	s.Equal([]string{"Plan", "Create", "Promote", "Revoke"}, st.local)
	s.Equal([]string{"Test"}, st.regular)
}

// TestMintedCreateIsARegularActivity: a kind whose target mints the credential keeps a
// regular Create, whose heartbeat carries what was minted to its next attempt.
func (s *rotateSuite) TestMintedCreateIsARegularActivity() {
	st := s.watchStarts()
	s.plan(time.Hour) // QuickCreate unset: a minting kind
	s.createOK()
	s.promoteOK()
	s.testAndRevokeOK()

	_, err := s.run(workflows.RotateInput{SecretID: id, Generation: workflows.RotateGeneration})
	s.Require().NoError(err)
	s.Equal([]string{"Plan", "Promote", "Revoke"}, st.local)
	s.Equal([]string{"Create", "Test"}, st.regular)
}

// TestFailedQuickAttemptIsRetriedAsTheActivity: a local attempt that fails in a way a
// retry could fix is followed by the regular activity, and the rest of the run uses
// regular activities. The status shows both attempts.
func (s *rotateSuite) TestFailedQuickAttemptIsRetriedAsTheActivity() {
	st := s.watchStarts()
	s.quickPlan(0)
	s.env.OnActivity(s.a.Create, mock.Anything, mock.Anything).Return(rotation.CreateResult{}, errors.New("connection reset")).Once()
	s.createOK()
	s.promoteOK()
	s.testAndRevokeOK()

	res, err := s.run(workflows.RotateInput{SecretID: id, Generation: workflows.RotateGeneration})
	s.Require().NoError(err)
	s.Equal(workflows.OutcomeRotated, res.Outcome)
	s.Equal([]string{"Plan", "Create"}, st.local)
	s.Equal([]string{"Create", "Test", "Promote", "Revoke"}, st.regular)
	var creates []workflows.StepTiming
	for _, t := range res.Steps {
		if t.Step == workflows.StepCreate {
			creates = append(creates, t)
		}
	}
	s.Require().Len(creates, 2, "%+v", res.Steps)
	s.Contains(creates[0].Error, "connection reset")
	s.Empty(creates[1].Error)
}

// TestQuickFailureNoRetryFixesIsNotRetried: a local attempt refused for a reason no retry
// fixes (a denied permission) is not tried again as an activity: the rotation rolls back
// at once, with a regular Rollback activity.
func (s *rotateSuite) TestQuickFailureNoRetryFixesIsNotRetried() {
	st := s.watchStarts()
	s.quickPlan(0)
	s.env.OnActivity(s.a.Create, mock.Anything, mock.Anything).
		Return(rotation.CreateResult{}, temporal.NewNonRetryableApplicationError("permission denied to alter role", activities.ErrTypePermissionDenied, nil)).Once()
	s.env.OnActivity(s.a.Rollback, mock.Anything, mock.Anything).
		Return(rotation.RollbackResult{Restored: &v1, RestoredVerified: true}, nil).Once()

	_, err := s.run(workflows.RotateInput{SecretID: id, Generation: workflows.RotateGeneration})
	res, ok := activities.DetailsOf[workflows.RotateResult](err)
	s.Require().True(ok, "%v", err)
	s.Equal(workflows.OutcomeRolledBack, res.Outcome)
	s.Contains(res.Error, "permission denied")
	s.Equal([]string{"Plan", "Create"}, st.local)
	s.Equal([]string{"Rollback"}, st.regular)
}

// TestOlderGenerationRunsItsStepsAsActivities: a run whose starter named generation 3
// (an older CLI) keeps that generation's shape: only the plan is local.
func (s *rotateSuite) TestOlderGenerationRunsItsStepsAsActivities() {
	st := s.watchStarts()
	s.quickPlan(0)
	s.createOK()
	s.promoteOK()
	s.testAndRevokeOK()

	_, err := s.run(workflows.RotateInput{SecretID: id, Generation: 3})
	s.Require().NoError(err)
	s.Equal([]string{"Plan"}, st.local)
	s.Equal([]string{"Create", "Test", "Promote", "Revoke"}, st.regular)
}
