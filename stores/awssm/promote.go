package awssm

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// Promote implements stores.Store with one UpdateSecretVersionStage that moves
// AWSCURRENT to the token's version and names the former holder in RemoveFromVersionId;
// AWS moves AWSPREVIOUS to that former holder in the same change. AWS refuses the call if
// the former holder no longer holds AWSCURRENT, which makes it a compare-and-swap: of two
// racing promotes, the loser gets stores.ErrConflict.
//
// Then AWSPENDING is taken off the new current version. Until that second call succeeds
// the version holds both labels; a retried Promote finishes the job.
func (s *Store) Promote(ctx context.Context, id secret.ID, token secret.VersionToken) error {
	name, err := s.SecretName(id)
	if err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	if err := s.promote(ctx, name, VersionID(token)); err != nil {
		return fmt.Errorf("promote %s: version %q: %w", id, token, err)
	}
	return nil
}

func (s *Store) promote(ctx context.Context, name, vid string) error {
	st, err := s.describe(ctx, name)
	if err != nil {
		return err
	}
	return s.promoteFrom(ctx, name, vid, st)
}

// promoteFrom promotes vid given the labels st, read earlier; if they changed since, AWS
// refuses the move and the result is ErrConflict.
func (s *Store) promoteFrom(ctx context.Context, name, vid string, st secretState) error {
	if !st.exists || !st.staged(vid) {
		// Unknown, or superseded or discarded: neither may become current.
		return fmt.Errorf("no such version with a stage: %w", stores.ErrNotFound)
	}
	hadPending := st.has(vid, LabelPending)
	if st.has(vid, LabelCurrent) {
		// Promoted already, perhaps by an attempt that stopped before tidying up.
		return s.tidyAfterPromote(ctx, name, vid, hadPending, st.holder(LabelPrevious))
	}
	former := st.holder(LabelCurrent)
	in := &secretsmanager.UpdateSecretVersionStageInput{
		SecretId:        aws.String(name),
		VersionStage:    aws.String(LabelCurrent),
		MoveToVersionId: aws.String(vid),
	}
	if former != "" {
		in.RemoveFromVersionId = aws.String(former)
	}
	if _, err := s.client.UpdateSecretVersionStage(ctx, in); err != nil {
		if isCode(err, "InvalidParameterException") {
			if now, derr := s.describe(ctx, name); derr == nil && now.holder(LabelCurrent) != former {
				return fmt.Errorf("AWSCURRENT moved from version %s to %s while promoting: %w",
					former, now.holder(LabelCurrent), stores.ErrConflict)
			}
		}
		return s.apiError("UpdateSecretVersionStage", name, err)
	}
	return s.tidyAfterPromote(ctx, name, vid, hadPending, former)
}

// tidyAfterPromote takes AWSPENDING off the new current version, so that Read(pending)
// does not return it, and AWSPREVIOUS off the placeholder, so that a consumer falling
// back to AWSPREVIOUS never gets a value without a credential.
func (s *Store) tidyAfterPromote(ctx context.Context, name, vid string, hadPending bool, previous string) error {
	if hadPending {
		if err := s.removeLabel(ctx, name, LabelPending, vid); err != nil {
			return err
		}
	}
	if previous == placeholderVersionID {
		return s.removeLabel(ctx, name, LabelPrevious, placeholderVersionID)
	}
	return nil
}

// DiscardPending implements stores.Store by taking AWSPENDING off the version. The
// version itself stays in AWS, deprecated, until AWS deletes it; for Keyturn it is gone.
func (s *Store) DiscardPending(ctx context.Context, id secret.ID, token secret.VersionToken) error {
	name, err := s.SecretName(id)
	if err != nil {
		return fmt.Errorf("discard pending: %w", err)
	}
	vid := VersionID(token)
	st, err := s.describe(ctx, name)
	if err != nil {
		return fmt.Errorf("discard pending %s: %w", id, err)
	}
	if st.has(vid, LabelCurrent) || st.has(vid, LabelPrevious) {
		return fmt.Errorf("discard pending %s: version %q holds %v: %w", id, token, stagesOf(st.labels[vid]), stores.ErrNotPending)
	}
	if !st.has(vid, LabelPending) {
		return nil // unknown, or discarded already
	}
	if err := s.removeLabel(ctx, name, LabelPending, vid); err != nil {
		return fmt.Errorf("discard pending %s: version %q: %w", id, token, err)
	}
	return nil
}

// removeLabel takes label off the version. AWS refuses if the version no longer holds
// it; when a fresh look confirms that, another writer did the work and that is success.
func (s *Store) removeLabel(ctx context.Context, name, label, vid string) error {
	_, err := s.client.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId:            aws.String(name),
		VersionStage:        aws.String(label),
		RemoveFromVersionId: aws.String(vid),
	})
	if err == nil {
		return nil
	}
	if isCode(err, "InvalidParameterException") {
		if st, derr := s.describe(ctx, name); derr == nil && !st.has(vid, label) {
			return nil
		}
	}
	return s.apiError("UpdateSecretVersionStage", name, err)
}
