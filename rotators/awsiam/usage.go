package awsiam

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/keyturn/keyturn/rotators"
)

// LastUsedDelay is how late, at worst, AWS may show a use of a key in its last-used
// data, as far as AWS documents it: IAM's last accessed information "usually appears
// within 4 hours". GetAccessKeyLastUsed's own reference gives no figure. A revoke gate
// that waits less than this after the promotion can see a key idle that was used.
const LastUsedDelay = 4 * time.Hour

var _ rotators.UsageReporter = (*Rotator)(nil)

// InUse asks IAM when the version's key was last used (iam:GetAccessKeyLastUsed). It is
// in use when that was after req.Since, the promotion: a consumer still signing with
// it has not moved. The Use names the key ID as the user and, in Detail, the service and
// region of the last request; AWS records nothing of the caller's address or program.
// IAM reports uses late (see LastUsedDelay), and only the last one, so an idle answer
// means "no use IAM has recorded yet": it sets Usage.NotBefore to req.Since plus
// LastUsedDelay, and the revoke gate does not take it for idle before then. Checked says
// so too.
//
// A key IAM no longer knows is idle. A key of another IAM user, or a version that is
// the one kept, is refused or idle as Revoke would treat it. It only reads.
func (r *Rotator) InUse(ctx context.Context, req rotators.UsageRequest) (rotators.Usage, error) {
	id, skip, err := r.revocable(rotators.RevokeRequest{Version: req.Version, Keep: req.Keep})
	if err != nil {
		return rotators.Usage{}, fmt.Errorf("in use: %w", err)
	}
	checked := fmt.Sprintf("last use of access key %s of IAM user %q (iam:GetAccessKeyLastUsed) after %s; "+
		"AWS may record a use up to about 4 hours late (LastUsedDelay)", id, r.cfg.UserName, req.Since.UTC().Format(time.RFC3339))
	if skip {
		return rotators.Usage{Checked: fmt.Sprintf("access key %s is the kept version's: not counted", id)}, nil
	}
	if req.Since.IsZero() {
		return rotators.Usage{}, invalidConfig("in use: no promotion time was given, so no use of key %s can be told to come after it", id)
	}

	out, err := r.iam.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(id)})
	if isNoSuchEntity(err) {
		return rotators.Usage{Checked: checked + ": the key no longer exists"}, nil
	}
	if err != nil {
		return rotators.Usage{}, fmt.Errorf("in use: %w", r.fail(fmt.Sprintf("iam:GetAccessKeyLastUsed (%s)", id), err))
	}
	if owner := aws.ToString(out.UserName); owner != "" && owner != r.cfg.UserName {
		return rotators.Usage{}, invalidConfig("in use: access key %s belongs to IAM user %q, but this secret rotates %q", id, owner, r.cfg.UserName)
	}
	last := out.AccessKeyLastUsed
	if last == nil || last.LastUsedDate == nil || !last.LastUsedDate.After(req.Since) {
		// A use since the promotion may not be recorded yet: idle only counts once IAM
		// has had LastUsedDelay to record it.
		notBefore := req.Since.Add(LastUsedDelay).UTC()
		return rotators.Usage{Checked: fmt.Sprintf("%s; no use recorded yet, so idle counts from %s", checked, notBefore.Format(time.RFC3339)), NotBefore: notBefore}, nil
	}
	return rotators.Usage{
		Uses: []rotators.Use{{
			User:   id,
			Since:  last.LastUsedDate.UTC(),
			Detail: lastUsedDetail(aws.ToString(last.ServiceName), aws.ToString(last.Region)),
		}},
		Checked: checked,
	}, nil
}

// lastUsedDetail says where the last request went; AWS answers "N/A" when it does not know.
func lastUsedDetail(service, region string) string {
	var parts []string
	if service != "" && service != "N/A" {
		parts = append(parts, "last request to service "+service)
	}
	if region != "" && region != "N/A" {
		parts = append(parts, "in region "+region)
	}
	if len(parts) == 0 {
		return "IAM names no service or region"
	}
	return strings.Join(parts, " ")
}
