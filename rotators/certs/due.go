package certs

import (
	"time"

	"github.com/keyturn/keyturn/secret"
)

// Due reports whether version v should be replaced at now, and when that point is (or
// was): share of the way from its not_before to its not_after metadata. A share outside
// (0,1) counts as DefaultRenewAt. A version whose metadata is missing or does not parse
// (or whose window is empty) is due at now: renewing too early costs a certificate,
// renewing too late costs an outage.
func Due(v secret.Version, now time.Time, share float64) (bool, time.Time) {
	if !(share > 0 && share < 1) {
		share = DefaultRenewAt
	}
	notBefore, err1 := time.Parse(time.RFC3339, v.Metadata[MetadataNotBefore])
	notAfter, err2 := time.Parse(time.RFC3339, v.Metadata[MetadataNotAfter])
	if err1 != nil || err2 != nil || !notAfter.After(notBefore) {
		return true, now
	}
	life := notAfter.Sub(notBefore)
	at := notBefore.Add(time.Duration(float64(life) * share))
	return !now.Before(at), at
}
