package workflows_test

import (
	"errors"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/workflows"
)

// Outstanding revokes and rollbacks: what fails after its bounded retries is retried
// durably until done or given up, and says so meanwhile.

func (s *rotateSuite) TestRollbackThatCannotFinishKeepsTryingThenGivesUp() {
	s.plan(0)
	s.createOK()
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).
		Return(temporal.NewNonRetryableApplicationError("bad", activities.ErrTypeInvalidConfig, nil)).Once()
	s.env.OnActivity(s.a.Rollback, mock.Anything, mock.Anything).
		Return(rotation.RollbackResult{}, temporal.NewNonRetryableApplicationError("store unreachable", "KeyturnStepFailed", nil))
	var seen workflows.RotateStatus
	s.env.RegisterDelayedCallback(func() {
		v, err := s.env.QueryWorkflow(workflows.QueryStatus)
		s.Require().NoError(err)
		s.Require().NoError(v.Get(&seen))
		s.env.SignalWorkflow(workflows.SignalGiveUp, nil)
	}, 3*time.Hour)
	_, err := s.run(workflows.RotateInput{SecretID: id})
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr))
	s.Equal(workflows.ErrTypeFailed, appErr.Type())
	s.Contains(appErr.Error(), "rollback could not be finished")
	s.Contains(appErr.Error(), "operator gave up")
	// While it kept trying, the status said so.
	s.Equal(workflows.OutcomeRollbackOutstanding, seen.Outcome)
	s.Require().NotNil(seen.Outstanding)
	s.Greater(seen.Outstanding.Attempts, 3, "attempts with backoff over three hours")
	s.Less(seen.Outstanding.Attempts, 12, "backoff must space the attempts out")
}

func (s *rotateSuite) TestRollbackFinishesOnceTheStoreAnswers() {
	s.plan(0)
	s.createOK()
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).
		Return(temporal.NewNonRetryableApplicationError("bad", activities.ErrTypeInvalidConfig, nil)).Once()
	s.env.OnActivity(s.a.Rollback, mock.Anything, mock.Anything).
		Return(rotation.RollbackResult{}, temporal.NewNonRetryableApplicationError("store unreachable", "KeyturnStepFailed", nil)).Times(3)
	s.env.OnActivity(s.a.Rollback, mock.Anything, mock.Anything).
		Return(rotation.RollbackResult{Restored: &v1, RestoredVerified: true, Discarded: true, Revoked: true}, nil).Once()
	_, err := s.run(workflows.RotateInput{SecretID: id})
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr))
	s.Equal(workflows.ErrTypeRolledBack, appErr.Type())
	var res workflows.RotateResult
	s.Require().NoError(appErr.Details(&res))
	s.Equal(workflows.OutcomeRolledBack, res.Outcome)
	last := res.Steps[len(res.Steps)-1]
	s.Equal(workflows.StepRollback, last.Step)
	s.Equal(4, last.Attempts)
}

// A rollback whose revoke of the new credential fails (a wrong admin password) says the
// kept version works, and keeps revoking the new one until it is done.
func (s *rotateSuite) TestRollbackRevokeOutstandingUntilDone() {
	s.plan(0)
	s.createOK()
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).
		Return(temporal.NewNonRetryableApplicationError("bad", activities.ErrTypeCheckFailed, nil)).Once()
	s.env.OnActivity(s.a.Rollback, mock.Anything, mock.Anything).
		Return(rotation.RollbackResult{Restored: &v1, RestoredVerified: true, Discarded: true, RevokeError: "password authentication failed for the admin"}, nil).Times(2)
	s.env.OnActivity(s.a.Rollback, mock.Anything, mock.Anything).
		Return(rotation.RollbackResult{Restored: &v1, RestoredVerified: true, Revoked: true}, nil).Once()
	var seen workflows.RotateStatus
	s.env.RegisterDelayedCallback(func() {
		v, err := s.env.QueryWorkflow(workflows.QueryStatus)
		s.Require().NoError(err)
		s.Require().NoError(v.Get(&seen))
		s.env.SignalWorkflow(workflows.SignalRetryNow, nil)
	}, 10*time.Second)
	_, err := s.run(workflows.RotateInput{SecretID: id})
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr))
	s.Equal(workflows.ErrTypeRolledBack, appErr.Type())
	s.Contains(appErr.Error(), "version 1 is current and was verified to work")
	s.Equal(workflows.OutcomeRevokeOutstanding, seen.Outcome)
	s.Require().NotNil(seen.Outstanding)
	s.Contains(seen.Outstanding.What, "revoke new version 2")
}

func (s *rotateSuite) TestRevokeOutstandingKeepsTryingUntilItWorks() {
	s.plan(0)
	s.createOK()
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).Return(nil).Once()
	s.promoteOK()
	s.env.OnActivity(s.a.Revoke, mock.Anything, mock.Anything).
		Return(activities.RevokeResult{}, temporal.NewNonRetryableApplicationError("connection refused", "KeyturnStepFailed", nil)).Times(5)
	s.env.OnActivity(s.a.Revoke, mock.Anything, mock.Anything).Return(activities.RevokeResult{}, nil).Once()
	// No Rollback: the new version is current and works; undoing it would not help.
	res, err := s.run(workflows.RotateInput{SecretID: id})
	s.Require().NoError(err)
	s.Equal(workflows.OutcomeRotated, res.Outcome)
	last := res.Steps[len(res.Steps)-1]
	s.Equal(workflows.StepRevoke, last.Step)
	s.Equal(6, last.Attempts)
}

func (s *rotateSuite) TestRevokeOutstandingGivenUpEndsRevokeFailed() {
	s.plan(0)
	s.createOK()
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).Return(nil).Once()
	s.promoteOK()
	s.env.OnActivity(s.a.Revoke, mock.Anything, mock.Anything).
		Return(activities.RevokeResult{}, temporal.NewNonRetryableApplicationError("no privilege", activities.ErrTypePermissionDenied, nil))
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(workflows.SignalGiveUp, nil) }, 24*time.Hour)
	_, err := s.run(workflows.RotateInput{SecretID: id})
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr))
	s.Equal(workflows.ErrTypeRevokeFailed, appErr.Type())
	s.Contains(appErr.Error(), "may still work on the target")
	var res workflows.RotateResult
	s.Require().NoError(appErr.Details(&res))
	s.Equal(workflows.OutcomeRevokeFailed, res.Outcome)
}

// An incident's rotation does not keep retrying a revoke: the incident must finish and
// report it.
func (s *rotateSuite) TestIncidentRotationReportsAFailedRevokeAtOnce() {
	s.plan(0)
	s.createOK()
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).Return(nil).Once()
	s.promoteOK()
	s.env.OnActivity(s.a.Revoke, mock.Anything, mock.Anything).
		Return(activities.RevokeResult{}, temporal.NewNonRetryableApplicationError("connection refused", "KeyturnStepFailed", nil)).Once()
	_, err := s.run(workflows.RotateInput{SecretID: id, IncidentID: "inc-1"})
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr))
	s.Equal(workflows.ErrTypeRevokeFailed, appErr.Type())
	s.Contains(appErr.Error(), "incident inc-1 reports it")
}

// A Create that failed after staging: the first rollback finds the version, discards it
// and cannot revoke it; the retried rollback must still be told which version to revoke,
// since the store no longer names it.
func (s *rotateSuite) TestRetriedRollbackStillKnowsTheFailedVersion() {
	s.plan(0)
	s.env.OnActivity(s.a.Create, mock.Anything, mock.Anything).
		Return(rotation.CreateResult{}, temporal.NewNonRetryableApplicationError("apply failed", activities.ErrTypePermissionDenied, nil)).Once()
	s.env.OnActivity(s.a.Rollback, mock.Anything, mock.MatchedBy(func(in activities.RollbackInput) bool { return in.Failed == nil })).
		Return(rotation.RollbackResult{Failed: &v2, Restored: &v1, RestoredVerified: true, Discarded: true, RevokeError: "admin refused"}, nil).Once()
	s.env.OnActivity(s.a.Rollback, mock.Anything, mock.MatchedBy(func(in activities.RollbackInput) bool { return in.Failed != nil && in.Failed.Token == v2.Token })).
		Return(rotation.RollbackResult{Failed: &v2, Restored: &v1, RestoredVerified: true, Revoked: true}, nil).Once()
	_, err := s.run(workflows.RotateInput{SecretID: id})
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr))
	s.Equal(workflows.ErrTypeRolledBack, appErr.Type())
}

// A give-up sent before anything was outstanding (the CLI refuses it, but a signal can be
// sent by other means) does not end a revoke that fails later: the operator gave up on
// nothing they saw.
func (s *rotateSuite) TestStaleGiveUpDoesNotEndALaterRevoke() {
	s.plan(0)
	s.env.OnActivity(s.a.Create, mock.Anything, mock.Anything).After(time.Minute).Return(rotation.CreateResult{Version: v2}, nil).Once()
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).Return(nil).Once()
	s.promoteOK()
	s.env.OnActivity(s.a.Revoke, mock.Anything, mock.Anything).
		Return(activities.RevokeResult{}, temporal.NewNonRetryableApplicationError("connection refused", "KeyturnStepFailed", nil)).Times(2)
	s.env.OnActivity(s.a.Revoke, mock.Anything, mock.Anything).Return(activities.RevokeResult{}, nil).Once()
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(workflows.SignalGiveUp, nil) }, 10*time.Second)
	res, err := s.run(workflows.RotateInput{SecretID: id})
	s.Require().NoError(err)
	s.Equal(workflows.OutcomeRotated, res.Outcome)
}

// A rollback attempt that fails outright after it discarded the pending version still
// tells the workflow which version it was undoing, so the next attempt revokes it.
func (s *rotateSuite) TestFailedRollbackAttemptPassesTheFailedVersionOn() {
	s.plan(0)
	s.env.OnActivity(s.a.Create, mock.Anything, mock.Anything).
		Return(rotation.CreateResult{}, temporal.NewNonRetryableApplicationError("apply failed", activities.ErrTypePermissionDenied, nil)).Once()
	s.env.OnActivity(s.a.Rollback, mock.Anything, mock.MatchedBy(func(in activities.RollbackInput) bool { return in.Failed == nil })).
		Return(rotation.RollbackResult{}, temporal.NewApplicationErrorWithOptions("target down", "KeyturnStepFailed",
			temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{v2}})).Once()
	s.env.OnActivity(s.a.Rollback, mock.Anything, mock.MatchedBy(func(in activities.RollbackInput) bool { return in.Failed != nil && in.Failed.Token == v2.Token })).
		Return(rotation.RollbackResult{Failed: &v2, Restored: &v1, RestoredVerified: true, Revoked: true}, nil).Once()
	_, err := s.run(workflows.RotateInput{SecretID: id})
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr))
	s.Equal(workflows.ErrTypeRolledBack, appErr.Type())
}
