package workflows_test

import (
	"context"
	"errors"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/workflows"
)

// A Create that gives up may have left a minted credential the store never got; the
// rollback sweeps it from the target, looking back to when the Create step began. The
// workflow passes that instant (its own clock, so replays agree), not the rollback's.
func (s *rotateSuite) TestRollbackOfAFailedCreateGetsWhenCreateBegan() {
	s.plan(0)
	// Five attempts with backoffs of 1, 2, 4 and 8 seconds between them: the rollback
	// begins at least 15 seconds after the Create did.
	s.env.OnActivity(s.a.Create, mock.Anything, mock.Anything).
		Return(rotation.CreateResult{}, temporal.NewApplicationError("store refused the write", "KeyturnStepFailed")).Times(5)
	var got activities.RollbackInput
	s.env.OnActivity(s.a.Rollback, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RollbackInput) (rotation.RollbackResult, error) {
		got = in
		return rotation.RollbackResult{Restored: &v1, RestoredVerified: true}, nil
	}).Once()

	_, err := s.run(workflows.RotateInput{SecretID: id})
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr), "workflow error %v", err)
	var res workflows.RotateResult
	s.Require().NoError(appErr.Details(&res))
	var created, rolledBack time.Time
	for _, st := range res.Steps {
		switch st.Step {
		case workflows.StepCreate:
			created = st.Started
		case workflows.StepRollback:
			rolledBack = st.Started
		}
	}
	s.Require().False(created.IsZero(), "no create step in %+v", res.Steps)
	s.True(got.Since.Equal(created), "RollbackInput.Since %v, want the create step's start %v", got.Since, created)
	s.True(rolledBack.Sub(got.Since) >= 15*time.Second, "Since %v is not when Create began (rollback began %v)", got.Since, rolledBack)
}
