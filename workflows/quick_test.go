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
	"github.com/keyturn/keyturn/secret"
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

func (s *rotateSuite) testAndRevokeOK() {
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).Return(nil).Once()
	s.env.OnActivity(s.a.Revoke, mock.Anything, mock.Anything).Return(activities.RevokeResult{EndRecorded: true}, nil).Once()
}

// TestPromoteRunsLocally: in the current generation the plan and Promote run as local
// activities; Create, Test and Revoke are regular activities, whatever the grace period
// and in contain mode too. A local step's result is kept only when its workflow task
// completes, and a rerun of a lost task may decide to roll back: Promote is undone by
// the rollback and depends only on what is already in the history; a revoke cannot be
// undone, and a Create in the plan's task would run before the plan is kept.
func (s *rotateSuite) TestPromoteRunsLocally() {
	for name, in := range map[string]workflows.RotateInput{
		"no grace":     {SecretID: id, Grace: new(time.Duration), Generation: workflows.RotateGeneration},
		"grace":        {SecretID: id, Generation: workflows.RotateGeneration},
		"contain mode": {SecretID: id, Contain: true, AlreadyContained: true, IncidentID: "inc-1", Generation: workflows.RotateGeneration},
	} {
		s.Run(name, func() {
			s.SetupTest()
			st := s.watchStarts()
			s.plan(time.Hour)
			s.createOK()
			s.promoteOK()
			s.testAndRevokeOK()

			res, err := s.run(in)
			s.Require().NoError(err)
			s.Equal(workflows.OutcomeRotated, res.Outcome)
			s.Equal([]string{"Plan", "Promote"}, st.local)
			s.Equal([]string{"Create", "Test", "Revoke"}, st.regular)
			s.env.AssertExpectations(s.T())
		})
	}
}

// TestFirstRotationPromotesWithTheActivity: a first rotation has nothing to revoke, so
// its promote's workflow task also ends the run and records its end; a rerun of that
// task (a signal arrived, a worker died) that saw an abort would end otherwise than
// recorded, so its Promote is a regular activity.
func (s *rotateSuite) TestFirstRotationPromotesWithTheActivity() {
	st := s.watchStarts()
	s.env.OnActivity(s.a.Plan, mock.Anything, mock.Anything).Return(activities.PlanResult{Kind: "postgres"}, nil).Once()
	s.createOK()
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).Return(nil).Once()
	cur := v2
	cur.Stages = []secret.Stage{secret.StageCurrent}
	s.env.OnActivity(s.a.Promote, mock.Anything, mock.Anything).Return(rotation.PromoteResult{Current: cur}, nil).Once()

	res, err := s.run(workflows.RotateInput{SecretID: id, Generation: workflows.RotateGeneration})
	s.Require().NoError(err)
	s.Equal(workflows.OutcomeRotated, res.Outcome)
	s.Equal([]string{"Plan"}, st.local)
	s.Equal([]string{"Create", "Test", "Promote"}, st.regular)
}

// TestFailedQuickAttemptIsRetriedAsTheActivity: a local attempt that fails in a way a
// retry could fix is followed by the regular activity. The status shows both attempts.
func (s *rotateSuite) TestFailedQuickAttemptIsRetriedAsTheActivity() {
	st := s.watchStarts()
	s.plan(0)
	s.createOK()
	s.env.OnActivity(s.a.Promote, mock.Anything, mock.Anything).Return(rotation.PromoteResult{}, errors.New("store unreachable")).Once()
	s.promoteOK()
	s.testAndRevokeOK()

	res, err := s.run(workflows.RotateInput{SecretID: id, Generation: workflows.RotateGeneration})
	s.Require().NoError(err)
	s.Equal(workflows.OutcomeRotated, res.Outcome)
	s.Equal([]string{"Plan", "Promote"}, st.local)
	s.Equal([]string{"Create", "Test", "Promote", "Revoke"}, st.regular)
	var promotes []workflows.StepTiming
	for _, t := range res.Steps {
		if t.Step == workflows.StepPromote {
			promotes = append(promotes, t)
		}
	}
	s.Require().Len(promotes, 2, "%+v", res.Steps)
	s.Contains(promotes[0].Error, "store unreachable")
	s.Empty(promotes[1].Error)
}

// TestQuickFailureNoRetryFixesIsNotRetried: a local attempt refused for a reason no retry
// fixes (a denied permission) is not tried again as an activity: the rotation rolls back
// at once, with a regular Rollback activity.
func (s *rotateSuite) TestQuickFailureNoRetryFixesIsNotRetried() {
	st := s.watchStarts()
	s.plan(0)
	s.createOK()
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).Return(nil).Once()
	s.env.OnActivity(s.a.Promote, mock.Anything, mock.Anything).
		Return(rotation.PromoteResult{}, temporal.NewNonRetryableApplicationError("permission denied to write the secret", activities.ErrTypePermissionDenied, nil)).Once()
	s.env.OnActivity(s.a.Rollback, mock.Anything, mock.Anything).
		Return(rotation.RollbackResult{Restored: &v1, RestoredVerified: true}, nil).Once()

	_, err := s.run(workflows.RotateInput{SecretID: id, Generation: workflows.RotateGeneration})
	res, ok := activities.DetailsOf[workflows.RotateResult](err)
	s.Require().True(ok, "%v", err)
	s.Equal(workflows.OutcomeRolledBack, res.Outcome)
	s.Contains(res.Error, "permission denied")
	s.Equal([]string{"Plan", "Promote"}, st.local)
	s.Equal([]string{"Create", "Test", "Rollback"}, st.regular)
}

// TestOlderGenerationRunsItsStepsAsActivities: a run whose starter named generation 3
// (an older CLI) keeps that generation's shape: only the plan is local.
func (s *rotateSuite) TestOlderGenerationRunsItsStepsAsActivities() {
	st := s.watchStarts()
	s.plan(0)
	s.createOK()
	s.promoteOK()
	s.testAndRevokeOK()

	_, err := s.run(workflows.RotateInput{SecretID: id, Generation: 3})
	s.Require().NoError(err)
	s.Equal([]string{"Plan"}, st.local)
	s.Equal([]string{"Create", "Test", "Promote", "Revoke"}, st.regular)
}
