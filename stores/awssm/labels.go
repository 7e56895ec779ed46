package awssm

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyturn/keyturn/secret"
)

// AWS's staging labels, one per Keyturn stage.
const (
	LabelPending  = "AWSPENDING"
	LabelCurrent  = "AWSCURRENT"
	LabelPrevious = "AWSPREVIOUS"
)

// NextNumberTag is the secret tag holding the number the next staged version gets. It is
// kept rather than derived from the versions because superseded and discarded versions
// lose their labels and drop out of sight, and numbers are never reused.
const NextNumberTag = "keyturn:next-number"

// stageOrder lists the stages in the order Version.Stages reports them.
var stageOrder = []secret.Stage{secret.StagePending, secret.StageCurrent, secret.StagePrevious}

// Label returns the AWS staging label of a Keyturn stage, or "" for an unknown stage.
func Label(stage secret.Stage) string {
	switch stage {
	case secret.StagePending:
		return LabelPending
	case secret.StageCurrent:
		return LabelCurrent
	case secret.StagePrevious:
		return LabelPrevious
	}
	return ""
}

// stagesOf maps AWS labels to Keyturn stages, ignoring labels of other tools.
func stagesOf(labels []string) []secret.Stage {
	var out []secret.Stage
	for _, st := range stageOrder {
		if slices.Contains(labels, Label(st)) {
			out = append(out, st)
		}
	}
	return out
}

// secretState is what DescribeSecret tells about one secret.
type secretState struct {
	exists bool
	// labels maps VersionId to its staging labels. AWS lists labelled versions only;
	// moto also lists versions without labels, with an empty list.
	labels map[string][]string
	// nextNumber is the NextNumberTag value, 0 when the tag is missing or malformed.
	nextNumber int
}

// holder returns the VersionId holding label, or "". AWS keeps each label on one version.
func (st secretState) holder(label string) string {
	for id, labels := range st.labels {
		if slices.Contains(labels, label) {
			return id
		}
	}
	return ""
}

// has reports whether the version holds label.
func (st secretState) has(versionID, label string) bool {
	return slices.Contains(st.labels[versionID], label)
}

// staged reports whether the version holds any of Keyturn's stages: a version that holds
// none is deprecated and, for Keyturn, gone.
func (st secretState) staged(versionID string) bool {
	return len(stagesOf(st.labels[versionID])) > 0
}

// describe reads the secret's labels and tags. A missing secret is not an error: exists
// is false.
func (s *Store) describe(ctx context.Context, name string) (secretState, error) {
	out, err := s.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if isNotFound(err) {
		return secretState{}, nil
	}
	if err != nil {
		return secretState{}, s.apiError("DescribeSecret", name, err)
	}
	if out.DeletedDate != nil {
		// Writing would fail and reading would mislead: say what to do instead.
		return secretState{}, fmt.Errorf("secret %s is scheduled for deletion: restore it (RestoreSecret) or remove it from Keyturn's inventory", name)
	}
	st := secretState{exists: true, labels: out.VersionIdsToStages}
	for _, tag := range out.Tags {
		if aws.ToString(tag.Key) == NextNumberTag {
			if n, err := strconv.Atoi(aws.ToString(tag.Value)); err == nil && n > 0 {
				st.nextNumber = n
			}
		}
	}
	return st, nil
}
