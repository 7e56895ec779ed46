package awssm

import (
	"context"
	"fmt"
	"maps"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// secretDescription is set on secrets this store creates, for whoever finds them in the
// console.
const secretDescription = "Managed by Keyturn. Read AWSCURRENT; AWSPENDING is an untested credential."

// StagePending implements stores.Store with PutSecretValue under the token's VersionID
// and the AWSPENDING label, which AWS takes off any other version in the same call.
//
// Calls for one secret are serialized within this Store: the steps (read the labels,
// claim a number, put) are separate requests, and moto, unlike AWS, silently replaces a
// pending version put twice under one ClientRequestToken. Across processes AWS's own rule
// holds the line: a second, different value under one ClientRequestToken is refused, and
// the refused caller returns the version that was stored first.
func (s *Store) StagePending(ctx context.Context, req stores.StageRequest) (secret.Version, error) {
	name, err := s.SecretName(req.SecretID)
	if err != nil {
		return secret.Version{}, fmt.Errorf("stage pending: %w", err)
	}
	if err := checkStage(req.Token, req.Material, req.Metadata); err != nil {
		return secret.Version{}, fmt.Errorf("stage pending %s: %w", req.SecretID, err)
	}
	unlock, err := s.stageLocks.lock(ctx, name)
	if err != nil {
		return secret.Version{}, fmt.Errorf("stage pending %s: %w", req.SecretID, err)
	}
	defer unlock()
	v, err := s.stage(ctx, req, name)
	if err != nil {
		return secret.Version{}, fmt.Errorf("stage pending %s: version %q: %w", req.SecretID, req.Token, err)
	}
	return v, nil
}

func (s *Store) stage(ctx context.Context, req stores.StageRequest, name string) (secret.Version, error) {
	vid := VersionID(req.Token)
	st, err := s.ensureSecret(ctx, name)
	if err != nil {
		return secret.Version{}, err
	}
	if st.staged(vid) {
		// A retried create: hand back what the first attempt stored, untouched.
		return s.existing(ctx, req, name, vid)
	}
	if _, known := st.labels[vid]; known {
		// moto lists versions that lost every label; AWS does not, and the put below
		// finds them instead.
		return s.revive(ctx, req, name, vid, st)
	}
	number, err := s.claimNumber(ctx, req.SecretID, name, st)
	if err != nil {
		return secret.Version{}, err
	}
	bk := bookkeeping{
		Format:    formatVersion,
		Token:     req.Token,
		Number:    number,
		CreatedAt: s.now().UTC(),
	}
	if len(req.Metadata) > 0 {
		bk.Metadata = maps.Clone(req.Metadata)
	}
	value, err := encodeValue(bk, req.Material)
	if err != nil {
		return secret.Version{}, err
	}
	_, err = s.client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId:           aws.String(name),
		ClientRequestToken: aws.String(vid),
		SecretString:       aws.String(value),
		VersionStages:      []string{LabelPending},
	})
	if err != nil {
		// AWS refuses a second value under one ClientRequestToken: the version is there
		// already, put by a racer in another process or by an attempt that was later
		// superseded. Look before reporting the refusal.
		if v, ok := s.afterRefusedPut(ctx, req, name, vid); ok {
			return v, nil
		}
		return secret.Version{}, s.apiError("PutSecretValue", name, err)
	}
	return secret.Version{
		SecretID:  req.SecretID,
		Token:     req.Token,
		Number:    number,
		Stages:    []secret.Stage{secret.StagePending},
		CreatedAt: bk.CreatedAt,
		Metadata:  maps.Clone(bk.Metadata),
	}, nil
}

// ensureSecret creates the secret if it does not exist and makes sure some version holds
// AWSCURRENT, then returns its state.
//
// AWS gives the first version of a secret AWSCURRENT whatever labels the call asks for,
// so a secret's first pending version would reach consumers before it was tested. A
// placeholder version, holding only Keyturn's bookkeeping, takes AWSCURRENT first; the
// store reads it as "no current version".
func (s *Store) ensureSecret(ctx context.Context, name string) (secretState, error) {
	st, err := s.describe(ctx, name)
	if err != nil {
		return secretState{}, err
	}
	if !st.exists {
		_, err := s.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name:               aws.String(name),
			Description:        aws.String(secretDescription),
			ClientRequestToken: aws.String(placeholderVersionID),
			SecretString:       aws.String(placeholderValue),
			Tags:               []types.Tag{{Key: aws.String(NextNumberTag), Value: aws.String("1")}},
		})
		if err != nil && !isCode(err, "ResourceExistsException") {
			return secretState{}, s.apiError("CreateSecret", name, err)
		}
		// Read back rather than assume: another writer may have created it first.
		return s.describe(ctx, name)
	}
	if st.holder(LabelCurrent) == "" {
		// Created by hand without a value: give it the placeholder before a pending put
		// can become its first, and so current, version.
		_, err := s.client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId:           aws.String(name),
			ClientRequestToken: aws.String(placeholderVersionID),
			SecretString:       aws.String(placeholderValue),
			VersionStages:      []string{LabelCurrent},
		})
		if err != nil {
			return secretState{}, s.apiError("PutSecretValue", name, err)
		}
		return s.describe(ctx, name)
	}
	return st, nil
}

// claimNumber returns the number for a new version and advances the NextNumberTag past
// it before the version exists, so a crash in between leaves a gap, never a reuse.
func (s *Store) claimNumber(ctx context.Context, id secret.ID, name string, st secretState) (int, error) {
	n := st.nextNumber
	if n == 0 {
		// No tag: a secret Keyturn did not create. Continue after its staged versions.
		var err error
		if n, err = s.nextNumberFromVersions(ctx, id, name, st); err != nil {
			return 0, err
		}
	}
	_, err := s.client.TagResource(ctx, &secretsmanager.TagResourceInput{
		SecretId: aws.String(name),
		Tags:     []types.Tag{{Key: aws.String(NextNumberTag), Value: aws.String(strconv.Itoa(n + 1))}},
	})
	if err != nil {
		return 0, s.apiError("TagResource", name, err)
	}
	return n, nil
}

// nextNumberFromVersions returns one more than the highest number among the staged
// versions, at least 1.
func (s *Store) nextNumberFromVersions(ctx context.Context, id secret.ID, name string, st secretState) (int, error) {
	next := 1
	for vid := range st.labels {
		if vid == placeholderVersionID || !st.staged(vid) {
			continue
		}
		out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
			SecretId: aws.String(name), VersionId: aws.String(vid),
		})
		if err != nil {
			return 0, s.apiError("GetSecretValue", name, err)
		}
		v, _, err := open(id, out)
		if err != nil {
			return 0, err
		}
		next = max(next, v.Number+1)
	}
	return next, nil
}

// existing returns the version stored under vid as it is.
func (s *Store) existing(ctx context.Context, req stores.StageRequest, name, vid string) (secret.Version, error) {
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(name), VersionId: aws.String(vid),
	})
	if err != nil {
		return secret.Version{}, s.apiError("GetSecretValue", name, err)
	}
	v, _, err := open(req.SecretID, out)
	if err != nil {
		return secret.Version{}, err
	}
	if v.Token != req.Token {
		return secret.Version{}, fmt.Errorf("VersionId %s holds token %q", vid, v.Token)
	}
	return v, nil
}

// revive gives AWSPENDING back to a version that lost its labels (superseded or
// discarded) and is staged again under its token. AWS will not store a new value under
// the old ClientRequestToken, and the Store contract says a retried stage keeps the first
// material, so the first attempt's version, number and material come back as pending.
func (s *Store) revive(ctx context.Context, req stores.StageRequest, name, vid string, st secretState) (secret.Version, error) {
	in := &secretsmanager.UpdateSecretVersionStageInput{
		SecretId:        aws.String(name),
		VersionStage:    aws.String(LabelPending),
		MoveToVersionId: aws.String(vid),
	}
	if holder := st.holder(LabelPending); holder != "" {
		in.RemoveFromVersionId = aws.String(holder)
	}
	if _, err := s.client.UpdateSecretVersionStage(ctx, in); err != nil {
		return secret.Version{}, s.apiError("UpdateSecretVersionStage", name, err)
	}
	return s.existing(ctx, req, name, vid)
}

// afterRefusedPut checks whether a refused put found its version already stored, and if
// so returns that version (reviving it if it holds no stage). ok is false when the
// version is not there, or cannot be read: the put's own error then stands.
func (s *Store) afterRefusedPut(ctx context.Context, req stores.StageRequest, name, vid string) (secret.Version, bool) {
	if _, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(name), VersionId: aws.String(vid),
	}); err != nil {
		return secret.Version{}, false
	}
	st, err := s.describe(ctx, name)
	if err != nil {
		return secret.Version{}, false
	}
	var v secret.Version
	if st.staged(vid) {
		v, err = s.existing(ctx, req, name, vid)
	} else {
		v, err = s.revive(ctx, req, name, vid, st)
	}
	return v, err == nil
}
