package localca

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/certs"
	"github.com/keyturn/keyturn/secret"
)

func TestCRLAfterRevoke(t *testing.T) {
	e := newEnv(t, 24*time.Hour)
	r := e.rotator(t, request())
	v1, m1, _ := mint(t, r, "t/1", nil)
	v2, m2, _ := mint(t, r, "t/2", nil)

	revoke(t, r, v1, &v2)
	crl := e.readCRL(t)
	if crl.Number.Cmp(big.NewInt(1)) != 0 || len(crl.RevokedCertificateEntries) != 1 {
		t.Fatalf("first CRL: number %v, %d entries", crl.Number, len(crl.RevokedCertificateEntries))
	}
	entry := crl.RevokedCertificateEntries[0]
	if certs.FormatSerial(entry.SerialNumber) != v1.Metadata[certs.MetadataSerial] || time.Since(entry.RevocationTime) > time.Minute {
		t.Errorf("entry %s at %s", certs.FormatSerial(entry.SerialNumber), entry.RevocationTime)
	}
	if !bytes.Equal(crl.RawIssuer, e.ca.RawSubject) || !bytes.Equal(crl.AuthorityKeyId, e.ca.SubjectKeyId) {
		t.Error("CRL issuer is not the CA")
	}
	if !crl.NextUpdate.Equal(e.ca.NotAfter.Truncate(time.Second)) {
		t.Errorf("next update %s, want the CA's expiry %s", crl.NextUpdate, e.ca.NotAfter)
	}
	if info, err := os.Stat(e.crl); err != nil || info.Mode().Perm() != 0o644 {
		t.Errorf("CRL file mode: %v %v", info, err)
	}

	// Idempotent: the same serial again leaves the file as it is.
	before, _ := os.ReadFile(e.crl)
	revoke(t, r, v1, nil)
	if after, _ := os.ReadFile(e.crl); !bytes.Equal(before, after) {
		t.Error("revoking again rewrote the CRL")
	}

	if err := testVersion(t, r, v1, m1); !errors.Is(err, rotators.ErrCredentialRejected) || !strings.Contains(err.Error(), "on the CRL") {
		t.Fatalf("Test of the revoked version = %v", err)
	}
	if err := testVersion(t, r, v2, m2); err != nil {
		t.Fatalf("Test of the kept version: %v", err)
	}

	revoke(t, r, v2, nil)
	crl = e.readCRL(t)
	if crl.Number.Cmp(big.NewInt(2)) != 0 || len(crl.RevokedCertificateEntries) != 2 {
		t.Fatalf("second CRL: number %v, %d entries", crl.Number, len(crl.RevokedCertificateEntries))
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(e.crl), ".*tmp*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestConcurrentRevokes(t *testing.T) {
	e := newEnv(t, 24*time.Hour)
	const goroutines, processes, perProcess = 16, 3, 5

	var serials []string
	for i := 0; i < goroutines+processes*perProcess; i++ {
		n, err := newSerial()
		if err != nil {
			t.Fatal(err)
		}
		serials = append(serials, certs.FormatSerial(n))
	}

	// The CA for the helper processes, as files (test data only).
	certFile, keyFile := filepath.Join(e.dir, "ca.pem"), filepath.Join(e.dir, "ca.key")
	if err := os.WriteFile(certFile, e.cfg.CACertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte(e.keyPEM.Reveal()), 0o600); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, goroutines+processes)
	for p := 0; p < processes; p++ {
		batch := serials[goroutines+p*perProcess : goroutines+(p+1)*perProcess]
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.CommandContext(t.Context(), self, "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"=1", "KEYTURN_LOCALCA_CERT="+certFile, "KEYTURN_LOCALCA_KEY="+keyFile,
				"KEYTURN_LOCALCA_CRL="+e.crl, "KEYTURN_LOCALCA_SERIALS="+strings.Join(batch, ","))
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("helper process: %v: %s", err, out)
			}
		}()
	}
	for i := 0; i < goroutines; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := New(e.cfg)
			if err != nil {
				errs <- err
				return
			}
			v := secret.Version{Token: "t/c", Metadata: map[string]string{certs.MetadataSerial: serials[i]}}
			if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: v}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	crl := e.readCRL(t)
	for _, s := range serials {
		n, _ := certs.ParseSerial(s)
		if !listed(crl.RevokedCertificateEntries, n) {
			t.Errorf("serial %s missing from the CRL", s)
		}
	}
	if len(crl.RevokedCertificateEntries) != len(serials) || crl.Number.Int64() != int64(len(serials)) {
		t.Errorf("CRL has %d entries and number %v, want %d and %d", len(crl.RevokedCertificateEntries), crl.Number, len(serials), len(serials))
	}
}

func TestRevokeWaitsForTheLockWithinContext(t *testing.T) {
	e := newEnv(t, time.Hour)
	r := e.rotator(t, request())
	if err := os.MkdirAll(filepath.Dir(e.crl), 0o755); err != nil {
		t.Fatal(err)
	}
	unlock, err := lockFile(t.Context(), e.crl+".lock")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	v := secret.Version{Token: "t/1", Metadata: map[string]string{certs.MetadataSerial: "0a:0b"}}
	err = r.Revoke(ctx, rotators.RevokeRequest{Version: v})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Revoke while another writer holds the lock = %v, want the deadline", err)
	}
	unlock()
	revoke(t, r, v, nil)
	if !e.lists(t, "0a:0b") {
		t.Error("serial not listed once the lock was free")
	}
}

func TestCRLOfAnotherCA(t *testing.T) {
	a, b := newEnv(t, time.Hour), newEnv(t, time.Hour)
	ra := a.rotator(t, request())
	va, _, _ := mint(t, ra, "t/a", nil)
	revoke(t, ra, va, nil)

	b.cfg.CRLFile = a.crl
	rb := b.rotator(t, request())
	vb, mb, _ := mint(t, rb, "t/b", nil)
	if err := testVersion(t, rb, vb, mb); !errors.Is(err, rotators.ErrInvalidConfig) || !strings.Contains(err.Error(), "not signed by CA") {
		t.Fatalf("Test with another CA's CRL = %v", err)
	}
	if err := rb.Revoke(t.Context(), rotators.RevokeRequest{Version: vb}); !errors.Is(err, rotators.ErrInvalidConfig) {
		t.Fatalf("Revoke into another CA's CRL = %v", err)
	}
	if !a.lists(t, va.Metadata[certs.MetadataSerial]) {
		t.Error("the other CA's CRL was damaged")
	}
}
