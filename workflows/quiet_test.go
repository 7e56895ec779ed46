package workflows_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/workflows"
)

// upserts records every search attribute update of the run, one "Name=value" list each.
func (s *rotateSuite) upserts() *[]string {
	var got []string
	s.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		sa := args.Get(0).(temporal.SearchAttributes)
		var kv []string
		for k, v := range sa.GetUntypedValues() {
			kv = append(kv, fmt.Sprintf("%s=%v", k.GetName(), v))
		}
		sort.Strings(kv)
		got = append(got, strings.Join(kv, " "))
	}).Return(nil)
	return &got
}

// throughPromote mocks a rotation's plan (with the given grace), create, test and promote.
func (s *rotateSuite) throughPromote(grace time.Duration) {
	s.plan(grace)
	s.createOK()
	s.env.OnActivity(s.a.Test, mock.Anything, mock.Anything).Return(nil).Once()
	s.promoteOK()
}

// recordedEnds collects the outcomes of the rotation.finished records the workflow asks
// the Audit activity for.
func (s *rotateSuite) recordedEnds() *[]string {
	ends := &[]string{}
	s.env.OnActivity(s.a.Audit, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AuditInput) error {
		if in.Key == "rotation|finished" {
			*ends = append(*ends, in.Outcome)
		}
		return nil
	}).Maybe()
	return ends
}

// quietRotation mocks a rotation with a grace period that ends with its revoke, and
// returns the Revoke activity's input and the events the Audit activity was asked for.
func (s *rotateSuite) quietRotation() (revoked *activities.RevokeInput, audited *[]string) {
	s.throughPromote(time.Hour)
	revoked = &activities.RevokeInput{}
	s.env.OnActivity(s.a.Revoke, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RevokeInput) (activities.RevokeResult, error) {
		*revoked = in
		return activities.RevokeResult{EndRecorded: in.Finished != nil}, nil
	}).Once()
	audited = &[]string{}
	s.env.OnActivity(s.a.Audit, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AuditInput) error {
		*audited = append(*audited, in.Key)
		return nil
	}).Maybe()
	return revoked, audited
}

// TestQuietRunShowsItsWaitsAndItsEnd: a rotation whose starter names the current
// generation updates its search attributes only on entering and leaving its grace period
// and at its end, and its Revoke records the rotation's end.
func (s *rotateSuite) TestQuietRunShowsItsWaitsAndItsEnd() {
	s.Require().NoError(s.env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(
		workflows.SearchAttrStep.ValueSet(workflows.StepRunning))))
	got := s.upserts()
	revoked, audited := s.quietRotation()

	res, err := s.run(workflows.RotateInput{SecretID: id, Generation: workflows.RotateGeneration})
	s.Require().NoError(err)
	s.Equal(workflows.OutcomeRotated, res.Outcome)
	s.Equal([]string{
		"KeyturnKind=postgres KeyturnStep=grace", // the kind goes with the first update
		"KeyturnStep=running",
		"KeyturnOutcome=rotated KeyturnStep=done",
	}, *got)
	s.Require().NotNil(revoked.Finished, "the last revoke carries the rotation's end")
	s.Equal(audit.EventRotationFinished, revoked.Finished.Event)
	s.Equal(workflows.OutcomeRotated, revoked.Finished.Outcome)
	s.Equal("rotation|finished", revoked.Finished.Key)
	s.Equal(v2.Token, revoked.Finished.Version.Token)
	s.NotContains(*audited, "rotation|finished", "the end was recorded twice")
	s.Contains(*audited, "grace|ended", "the grace period is still recorded by the workflow")
}

// TestRunFromAnOlderStarterShowsRunning: a starter that set KeyturnStep=plan (an older
// CLI) and named no generation still gets the quiet run, with the step corrected once.
func (s *rotateSuite) TestRunFromAnOlderStarterShowsRunning() {
	s.Require().NoError(s.env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(
		workflows.SearchAttrStep.ValueSet(workflows.StepPlan))))
	got := s.upserts()
	revoked, _ := s.quietRotation()

	_, err := s.run(workflows.RotateInput{SecretID: id})
	s.Require().NoError(err)
	s.Equal([]string{
		"KeyturnKind=postgres KeyturnStep=running",
		"KeyturnStep=grace",
		"KeyturnStep=running",
		"KeyturnOutcome=rotated KeyturnStep=done",
	}, *got)
	s.NotNil(revoked.Finished)
}

// TestFailedRevokeLeavesTheEndToTheWorkflow: a revoke that fails recorded no end; the
// workflow records the end it reaches.
func (s *rotateSuite) TestFailedRevokeLeavesTheEndToTheWorkflow() {
	s.throughPromote(0)
	s.env.OnActivity(s.a.Revoke, mock.Anything, mock.Anything).Return(activities.RevokeResult{}, temporal.NewNonRetryableApplicationError("refused", "x", nil))
	ends := s.recordedEnds()
	// Give up on the outstanding revoke at once.
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(workflows.SignalGiveUp, nil) }, time.Second)
	_, err := s.run(workflows.RotateInput{SecretID: id, Generation: workflows.RotateGeneration})
	res, ok := activities.DetailsOf[workflows.RotateResult](err)
	s.Require().True(ok, "%v", err)
	s.Equal(workflows.OutcomeRevokeFailed, res.Outcome)
	s.Equal([]string{workflows.OutcomeRevokeFailed}, *ends)
}

// TestUnknownGenerationFailsTheTaskNotTheRun: a generation newer than this worker's is
// left to a newer worker: the workflow task fails (a panic), the run does not end with
// an outcome of this worker's making.
func (s *rotateSuite) TestUnknownGenerationFailsTheTaskNotTheRun() {
	_, err := s.run(workflows.RotateInput{SecretID: id, Generation: workflows.RotateGeneration + 1})
	var panicErr *temporal.PanicError
	s.Require().ErrorAs(err, &panicErr)
	s.Contains(panicErr.Error(), "upgrade the worker")
}

// TestEndNotRecordedByTheRevokeIsRecordedByTheWorkflow: a Revoke that did not record the
// end it was given (a worker older than RevokeInput.Finished, or a trail that failed after
// the revoke) says so, and the workflow records the end itself.
func (s *rotateSuite) TestEndNotRecordedByTheRevokeIsRecordedByTheWorkflow() {
	s.throughPromote(0)
	var given *activities.AuditInput
	s.env.OnActivity(s.a.Revoke, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RevokeInput) (activities.RevokeResult, error) {
		given = in.Finished
		return activities.RevokeResult{}, nil
	}).Once()
	ends := s.recordedEnds()
	res, err := s.run(workflows.RotateInput{SecretID: id, Generation: workflows.RotateGeneration})
	s.Require().NoError(err)
	s.Equal(workflows.OutcomeRotated, res.Outcome)
	s.NotNil(given, "the revoke was given the end to record")
	s.Equal([]string{workflows.OutcomeRotated}, *ends)
}
