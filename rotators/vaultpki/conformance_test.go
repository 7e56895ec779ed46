package vaultpki

import (
	"testing"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/certs"
	"github.com/keyturn/keyturn/rotators/rotatortest"
	"github.com/keyturn/keyturn/secret"
)

// harness gives each subtest a role of its own on mount p. With limited set, the rotator
// uses a token holding only PolicyFor(mount, role), so the suite also proves the policy
// is enough.
func harness(name string, p *pki, limited bool) rotatortest.Harness {
	return rotatortest.Harness{
		Name:         name,
		PublicFields: []string{certs.FieldCertificate, certs.FieldCAChain},
		New: func(t *testing.T) rotators.Rotator {
			p := *p
			p.t = t
			role := p.role(nil)
			if limited {
				return p.rotator(role, request(), p.tokenClient(PolicyFor(p.mount, role)))
			}
			return p.rotator(role, request(), nil)
		},
		AfterRotation: func(t *testing.T, prev, next secret.Version) {
			q := *p
			q.t = t
			if !q.listed(prev.Metadata[certs.MetadataSerial]) {
				t.Errorf("the CRL does not list the revoked certificate %s", prev.Metadata[certs.MetadataSerial])
			}
			if q.listed(next.Metadata[certs.MetadataSerial]) {
				t.Errorf("the CRL lists the kept certificate %s", next.Metadata[certs.MetadataSerial])
			}
		},
	}
}

func TestConformance(t *testing.T) {
	rotatortest.Run(t, harness("root-token", newPKI(t, nil), false))
}

// A mount with auto_rebuild does not rebuild its CRL within the revoke request: Revoke
// then needs crl/rotate, and the token holds nothing but the package's policy.
func TestConformanceLeastPrivilegeLazyCRL(t *testing.T) {
	p := newPKI(t, map[string]any{"expiry": "72h", "auto_rebuild": true, "auto_rebuild_grace_period": "24h"})
	rotatortest.Run(t, harness("policy-token", p, true))
}
