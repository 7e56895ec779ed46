package vaultpki

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/keyturn/keyturn/internal/vaulterr"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/certs"
)

// How long Revoke waits for the CRL to list a revoked serial: five looks, with a forced
// rebuild before each but the first and pauses of 0.1, 0.2 and 0.4 s between the later
// ones. Vault rebuilds the CRL within the revoke request unless auto_rebuild is on, and
// then crl/rotate forces it, so a serial still missing after that is a mount whose CRL is
// disabled or broken, which waiting longer does not fix.
const (
	crlAttempts   = 5
	crlFirstDelay = 100 * time.Millisecond
)

// errNotListed reports a revoked serial that the CRL still does not show. It carries no
// rotators sentinel: the workflow retries it, since an operator may fix the CRL meanwhile.
var errNotListed = errors.New("revoked certificate not on the CRL")

// Revoke revokes the version's certificate in Vault (POST <mount>/revoke) and then makes
// sure the mount's CRL lists it, forcing a rebuild (<mount>/crl/rotate) when it does not
// yet. A certificate already revoked is checked the same way; one already expired, or
// that Vault does not know, is success, since it can no longer be used or was never
// issued there. It never revokes Keep's certificate.
func (r *Rotator) Revoke(ctx context.Context, req rotators.RevokeRequest) error {
	serial, err := versionSerial(req.Version)
	if err != nil {
		return err
	}
	if req.Keep != nil && certs.SameSerial(serial, req.Keep.Metadata[certs.MetadataSerial]) {
		return nil
	}
	return r.revokeSerial(ctx, serial)
}

// revokeSerial revokes one serial and waits for the CRL to list it.
func (r *Rotator) revokeSerial(ctx context.Context, serial string) error {
	n, err := certs.ParseSerial(serial)
	if err != nil {
		return fmt.Errorf("revoke: %w: %w", rotators.ErrInvalidConfig, err)
	}
	serial = certs.FormatSerial(n)
	path := r.cfg.Mount + "/revoke"
	sec, err := r.client.Logical().WriteWithContext(ctx, path, map[string]any{"serial_number": serial})
	if err != nil {
		if re := responseError(err, 400); re != nil && strings.Contains(vaulterr.Message(re), "not found") {
			// Vault never issued it, or tidy removed it after it expired.
			return nil
		}
		return r.explain(err, fmt.Sprintf("revoke certificate %s", serial), path, capUpdate, "")
	}
	if sec == nil || intField(sec.Data["revocation_time"]) == 0 {
		// Vault answers an expired certificate with a warning and no revocation: an
		// expired certificate is refused everywhere already, and a CRL does not list it.
		return nil
	}
	return r.waitListed(ctx, n)
}

// waitListed reads the CRL until it lists serial, forcing a rebuild between looks.
func (r *Rotator) waitListed(ctx context.Context, serial *big.Int) error {
	delay := crlFirstDelay
	for attempt := 1; ; attempt++ {
		listed, err := r.crlLists(ctx, serial)
		if err != nil {
			return err
		}
		if listed {
			return nil
		}
		if attempt == crlAttempts {
			return fmt.Errorf("revoke certificate %s: %w: Vault at %s revoked it, but %s/crl still does not list it after %d looks and forced rebuilds; check that the mount's CRL is enabled (vault read %s/config/crl: disable must be false)",
				certs.FormatSerial(serial), errNotListed, r.addr, r.cfg.Mount, crlAttempts, r.cfg.Mount)
		}
		if attempt > 1 {
			// A rebuild already ran and the serial is still missing: give a busy or
			// replicated Vault a moment before asking again.
			select {
			case <-ctx.Done():
				return fmt.Errorf("revoke certificate %s: wait for the CRL: %w", certs.FormatSerial(serial), ctx.Err())
			case <-time.After(delay):
			}
			delay *= 2
		}
		// With auto_rebuild Vault revokes into storage and rebuilds the CRL later: ask
		// now. The rebuild is done when crl/rotate answers.
		path := r.cfg.Mount + "/crl/rotate"
		if _, err := r.client.Logical().ReadWithContext(ctx, path); err != nil {
			return r.explain(err, "rebuild the CRL", path, capRead, "")
		}
	}
}

// crlLists reads the mount's CRL (DER) and reports whether it lists serial. An empty
// answer is a CRL not built yet.
func (r *Rotator) crlLists(ctx context.Context, serial *big.Int) (bool, error) {
	path := r.cfg.Mount + "/crl"
	der, err := r.readRaw(ctx, path)
	if err != nil {
		return false, r.explain(err, "read the CRL", path, capRead, "")
	}
	if len(der) == 0 {
		return false, nil
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return false, fmt.Errorf("read the CRL (%s at %s): %w", path, r.addr, err)
	}
	for _, entry := range crl.RevokedCertificateEntries {
		if entry.SerialNumber != nil && entry.SerialNumber.Cmp(serial) == 0 {
			return true, nil
		}
	}
	return false, nil
}
