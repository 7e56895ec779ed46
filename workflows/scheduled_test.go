package workflows_test

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/worker"
	"github.com/keyturn/keyturn/workflows"
)

// These tests run the Scheduled workflow with a mocked renewal check and a mocked Rotate
// child: they check what a scheduled run decides and what it hands the rotation. Skipping
// a run whose rotation is already running needs a real server and is covered in
// schedules/.
type scheduledSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment
	a   *activities.Activities
}

func TestScheduled(t *testing.T) { suite.Run(t, new(scheduledSuite)) }

func (s *scheduledSuite) SetupTest() {
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	s.env = s.NewTestWorkflowEnvironment()
	s.a = activities.NewActivities(nil)
	worker.Register(s.env, s.a)
	s.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "keyturn/" + string(id)})
}

func (s *scheduledSuite) AfterTest(_, _ string) { s.env.AssertExpectations(s.T()) }

func (s *scheduledSuite) run(in workflows.ScheduledInput) (workflows.ScheduledResult, error) {
	s.env.ExecuteWorkflow(workflows.ScheduledWorkflowName, in)
	s.True(s.env.IsWorkflowCompleted())
	var res workflows.ScheduledResult
	err := s.env.GetWorkflowError()
	if err == nil {
		s.NoError(s.env.GetWorkflowResult(&res))
	}
	return res, err
}

// rotateReturns mocks the Rotate child and records the input it was started with.
func (s *scheduledSuite) rotateReturns(res workflows.RotateResult, err error, got *workflows.RotateInput) {
	s.env.OnWorkflow(workflows.RotateWorkflowName, mock.Anything, mock.Anything).
		Return(func(_ workflow.Context, in workflows.RotateInput) (workflows.RotateResult, error) {
			*got = in
			return res, err
		}).Once()
}

func (s *scheduledSuite) TestCronRunRotatesThroughTheRotateWorkflow() {
	s.Require().NoError(s.env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(
		temporal.NewSearchAttributeKeyKeyword("TemporalScheduledById").ValueSet("keyturn/" + string(id)))))
	var got workflows.RotateInput
	s.rotateReturns(workflows.RotateResult{SecretID: id, Outcome: workflows.OutcomeRotated, NewVersion: &v2}, nil, &got)

	res, err := s.run(workflows.ScheduledInput{SecretID: id})
	s.Require().NoError(err)
	s.Equal(workflows.OutcomeRotated, res.Outcome)
	s.Equal("rotate/"+string(id), res.RotateWorkflowID)
	s.NotEmpty(res.RotateRunID)
	s.Require().NotNil(res.Rotation)
	s.Equal(v2.Token, res.Rotation.NewVersion.Token)
	s.Equal(workflows.RotateInput{SecretID: id, Reason: workflows.ReasonScheduled, RequestedBy: "schedule keyturn/" + string(id), Generation: workflows.RotateGeneration}, got)
}

func (s *scheduledSuite) TestRenewalCheckNotDueStartsNothing() {
	at := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	s.env.OnActivity(s.a.Due, mock.Anything, activities.DueInput{SecretID: id}).
		Return(activities.DueResult{At: at, Reason: "version 3 is due for renewal at 2027-01-02T03:04:05Z"}, nil).Once()
	// No OnWorkflow mock: a child start would fail the test with an unexpected call.

	res, err := s.run(workflows.ScheduledInput{SecretID: id, RenewalCheck: true})
	s.Require().NoError(err)
	s.Equal(workflows.ScheduledNotDue, res.Outcome)
	s.True(at.Equal(res.DueAt), "due at %v", res.DueAt)
	s.Contains(res.Reason, "due for renewal at 2027-01-02")
	s.Empty(res.RotateRunID)
}

func (s *scheduledSuite) TestRenewalCheckDueRotates() {
	s.env.OnActivity(s.a.Due, mock.Anything, mock.Anything).
		Return(activities.DueResult{Due: true, Reason: "no current version yet"}, nil).Once()
	var got workflows.RotateInput
	s.rotateReturns(workflows.RotateResult{SecretID: id, Outcome: workflows.OutcomeRotated}, nil, &got)

	res, err := s.run(workflows.ScheduledInput{SecretID: id, RenewalCheck: true})
	s.Require().NoError(err)
	s.Equal(workflows.OutcomeRotated, res.Outcome)
	s.Equal(workflows.ReasonRenewal+": no current version yet", got.Reason)
	s.Equal("schedule", got.RequestedBy, "without TemporalScheduledById the run names no schedule")
}

// A renewal check that keeps failing ends the run after its bounded retries; the next
// hourly check tries again.
func (s *scheduledSuite) TestRenewalCheckFailureIsBounded() {
	s.env.OnActivity(s.a.Due, mock.Anything, mock.Anything).
		Return(activities.DueResult{}, temporal.NewApplicationError("store unreachable", "KeyturnStepFailed")).Times(5)

	_, err := s.run(workflows.ScheduledInput{SecretID: id, RenewalCheck: true})
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr), "workflow error %v", err)
	s.Equal(workflows.ErrTypeScheduledRotationFailed, appErr.Type())
	s.Contains(appErr.Error(), "store unreachable")
	var res workflows.ScheduledResult
	s.Require().NoError(appErr.Details(&res))
	s.Equal(workflows.OutcomeFailed, res.Outcome)
}

// A rotation that rolled back fails the scheduled run too, so the schedule's recent
// actions show it, and the run carries the rotation's result.
func (s *scheduledSuite) TestRolledBackRotationFailsTheRun() {
	rotated := workflows.RotateResult{SecretID: id, Outcome: workflows.OutcomeRolledBack, Error: "check query denied"}
	var got workflows.RotateInput
	s.rotateReturns(workflows.RotateResult{}, temporal.NewNonRetryableApplicationError(
		"rotation of "+string(id)+" rolled back: check query denied", workflows.ErrTypeRolledBack, nil, rotated), &got)

	_, err := s.run(workflows.ScheduledInput{SecretID: id})
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr), "workflow error %v", err)
	s.Equal(workflows.ErrTypeScheduledRotationFailed, appErr.Type())
	var res workflows.ScheduledResult
	s.Require().NoError(appErr.Details(&res))
	s.Equal(workflows.OutcomeRolledBack, res.Outcome)
	s.Require().NotNil(res.Rotation)
	s.Equal("check query denied", res.Rotation.Error)
}

func (s *scheduledSuite) TestInvalidSecretIDIsRejected() {
	_, err := s.run(workflows.ScheduledInput{SecretID: "Not Valid"})
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr), "workflow error %v", err)
	s.Equal(workflows.ErrTypeInvalidInput, appErr.Type())
}
