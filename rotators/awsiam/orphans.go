package awsiam

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/keyturn/keyturn/rotators"
)

// orphanMargin widens MintRequest.Since when keys are compared with it. AWS reports a
// key's CreateDate to the second (a key made at 12:00:00.9 says 12:00:00; moto 5.2.1
// gives microseconds, so the tests on moto do not need the margin and TestOrphansMargin
// checks the truncated case by hand), and Since is
// taken from the Temporal server's clock while CreateDate comes from AWS's: a key this
// rotation made must not look older than the rotation because of either. Five seconds
// covers both on NTP-synchronised machines; the cost is that a key made by hand within
// five seconds before a rotation began, and unknown to the store, counts as this
// rotation's orphan too.
const orphanMargin = 5 * time.Second

// orphans returns the user's keys that an interrupted Mint of this version made and the
// store never got: of the keys no version in req.Known holds, those req.Abandoned names
// and those IAM says were created at or after req.Since (less orphanMargin). The current
// version's key is never among them. Without Since (a caller
// that cannot tell when the rotation began) only Abandoned counts.
func orphans(keys []types.AccessKeyMetadata, req rotators.MintRequest, current string) []string {
	known := map[string]bool{}
	for _, md := range req.Known {
		if id := md[MetadataAccessKeyID]; id != "" {
			known[id] = true
		}
	}
	abandoned := map[string]bool{}
	for _, md := range req.Abandoned {
		if id := md[MetadataAccessKeyID]; id != "" {
			abandoned[id] = true
		}
	}
	since := req.Since.Add(-orphanMargin)
	var out []string
	for _, k := range keys {
		id := aws.ToString(k.AccessKeyId)
		// A key the store holds is accounted for, whatever else says it is abandoned.
		if id == "" || id == current || known[id] || slices.Contains(out, id) {
			continue
		}
		made := !req.Since.IsZero() && k.CreateDate != nil && !k.CreateDate.Before(since) &&
			(req.Until.IsZero() || !k.CreateDate.After(req.Until.Add(orphanMargin)))
		if abandoned[id] || made {
			out = append(out, id)
		}
	}
	return out
}

// removeOrphans deletes the keys that orphans finds among keys, and returns the keys left
// and the handles (key ID and user) of those it deleted. Mint runs it before it mints,
// Sweep on its own, so both find the same keys.
func (r *Rotator) removeOrphans(ctx context.Context, keys []types.AccessKeyMetadata, req rotators.MintRequest, current string) ([]types.AccessKeyMetadata, []map[string]string, error) {
	var removed []map[string]string
	for _, id := range orphans(keys, req, current) {
		if err := r.deleteKey(ctx, id); err != nil {
			return keys, removed, fmt.Errorf("delete abandoned key: %w", err)
		}
		keys = slices.DeleteFunc(keys, hasID(id))
		removed = append(removed, map[string]string{MetadataAccessKeyID: id, MetadataUser: r.cfg.UserName})
	}
	return keys, removed, nil
}

// Sweep deletes the user's keys that a Mint for req.Token made and the store never got,
// found as Mint finds them (see orphans): keys no req.Known version holds, named in
// req.Abandoned or created at or after req.Since less orphanMargin. The rollback of a
// Create that gave up after IAM made its key calls it. A key already deleted is not
// listed, so a second Sweep removes and reports nothing.
func (r *Rotator) Sweep(ctx context.Context, req rotators.MintRequest) ([]map[string]string, error) {
	keys, err := r.listKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	_, removed, err := r.removeOrphans(ctx, keys, req, r.currentKey(req.Current))
	if err != nil {
		return removed, fmt.Errorf("sweep: %w", err)
	}
	return removed, nil
}
