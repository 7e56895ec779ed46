package localca

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/keyturn/keyturn/rotators"
)

// pemCRL is the PEM block type of the published CRL.
const pemCRL = "X509 CRL"

// revokeSerials adds serials to the CRL file: under the file lock, it reads the CRL,
// appends the serials it does not list yet, raises the CRL number, signs it again and
// replaces the file atomically. Serials already listed change nothing, not even the
// file, so revoking twice is harmless.
func (r *Rotator) revokeSerials(ctx context.Context, serials []*big.Int) error {
	if len(serials) == 0 {
		return nil
	}
	unlock, err := r.lock(ctx)
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	defer unlock()
	_, err = r.revokeLocked(serials)
	return err
}

// lock takes the CA's lock (CRLFile+".lock"), which guards the CRL and the issuance log,
// creating their directory first: it may not exist before the first use (a fresh
// .keyturn).
func (r *Rotator) lock(ctx context.Context) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(r.crlPath), 0o755); err != nil {
		return nil, fmt.Errorf("create the CRL directory: %w", err)
	}
	return lockFile(ctx, r.crlPath+".lock")
}

// revokeLocked is revokeSerials for a caller that holds the lock. It returns the serials
// this call added to the CRL, leaving out those it listed already.
func (r *Rotator) revokeLocked(serials []*big.Int) ([]*big.Int, error) {
	if len(serials) == 0 {
		return nil, nil
	}
	current, err := r.readCRL()
	if err != nil {
		return nil, fmt.Errorf("revoke: %w", err)
	}
	var entries []x509.RevocationListEntry
	number := big.NewInt(0)
	if current != nil {
		entries = current.RevokedCertificateEntries
		if current.Number != nil {
			number = current.Number
		}
	}
	now := r.now().UTC()
	var added []*big.Int
	for _, s := range serials {
		if listed(entries, s) {
			continue
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: now})
		added = append(added, s)
	}
	if len(added) == 0 {
		return nil, nil
	}

	// RFC 5280 5.2.3: the CRL number only ever increases, so a consumer can tell the
	// newer of two CRLs.
	next := new(big.Int).Add(number, big.NewInt(1))
	// The CRL is signed again only when something is revoked, so it stays valid as long
	// as the CA does; a consumer that wants a fresher one has nothing newer to get.
	nextUpdate := r.ca.cert.NotAfter
	if !nextUpdate.After(now) {
		nextUpdate = now.Add(24 * time.Hour)
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    next,
		ThisUpdate:                now,
		NextUpdate:                nextUpdate,
		RevokedCertificateEntries: entries,
	}, r.ca.cert, r.ca.key)
	if err != nil {
		return nil, fmt.Errorf("revoke: sign the CRL: %w", err)
	}
	r.point("before CRL write")
	if err := writeAtomic(r.crlPath, pem.EncodeToMemory(&pem.Block{Type: pemCRL, Bytes: der})); err != nil {
		return nil, fmt.Errorf("revoke: publish the CRL: %w", err)
	}
	r.point("after CRL write")
	return added, nil
}

// readCRL reads and verifies the published CRL, or returns nil when there is none yet.
// Readers need no lock: writers replace the file by rename, so a reader sees the old CRL
// or the new one, never half of one.
func (r *Rotator) readCRL() (*x509.RevocationList, error) {
	data, err := os.ReadFile(r.crlPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the CRL: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != pemCRL {
		return nil, fmt.Errorf("%w: crl_file %s holds no PEM %q block: point crl_file at a file only Keyturn writes",
			rotators.ErrInvalidConfig, r.crlPath, pemCRL)
	}
	crl, err := x509.ParseRevocationList(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: crl_file %s: %w", rotators.ErrInvalidConfig, r.crlPath, err)
	}
	// A CRL another CA signed is not this CA's list: adding to it would drop its
	// signature, and trusting it would let a stranger decide what is revoked.
	if err := crl.CheckSignatureFrom(r.ca.cert); err != nil {
		return nil, fmt.Errorf("%w: crl_file %s is not signed by CA %q (%v): give each CA a CRL file of its own",
			rotators.ErrInvalidConfig, r.crlPath, r.ca.cert.Subject.CommonName, err)
	}
	return crl, nil
}

// listed reports whether entries hold serial.
func listed(entries []x509.RevocationListEntry, serial *big.Int) bool {
	for _, e := range entries {
		if e.SerialNumber != nil && e.SerialNumber.Cmp(serial) == 0 {
			return true
		}
	}
	return false
}

// writeAtomic replaces path with data: a temporary file in the same directory, synced,
// then renamed over path, then the directory synced so the rename survives a crash. The
// CRL is public, hence mode 0644.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync() // best effort: not every file system syncs directories
		_ = d.Close()
	}
	return nil
}
