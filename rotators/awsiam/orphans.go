package awsiam

import (
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
		made := !req.Since.IsZero() && k.CreateDate != nil && !k.CreateDate.Before(since)
		if abandoned[id] || made {
			out = append(out, id)
		}
	}
	return out
}
