package localca

import (
	"bufio"
	"context"
	"encoding/json"
	"math/big"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/certs"
	"github.com/keyturn/keyturn/rotators/rotatortest"
	"github.com/keyturn/keyturn/secret"
)

// A Create killed after the CA signed and before the store (or a heartbeat) got the
// certificate leaves a valid certificate outside the CRL. The retry finds its serial in
// the CA's issuance log under the same token and revokes it.
func TestMintRevokesWhatAKilledMintSignedWithoutAnyHint(t *testing.T) {
	e := newEnv(t, 24*time.Hour)
	r := e.rotator(t, request())
	lost, lm, _ := mint(t, r, "rotate/x/run-1", nil)
	// The step dies here.
	again, am, _ := mint(t, r, "rotate/x/run-1", nil)
	if !e.lists(t, lost.Metadata[certs.MetadataSerial]) {
		t.Fatal("the certificate of the killed attempt is not on the CRL")
	}
	if err := testVersion(t, r, lost, lm); err == nil {
		t.Fatal("the certificate of the killed attempt still passes Test")
	}
	if e.lists(t, again.Metadata[certs.MetadataSerial]) {
		t.Fatal("the retry's own certificate is on the CRL")
	}
	if err := testVersion(t, r, again, am); err != nil {
		t.Fatalf("Test of the retry's certificate: %v", err)
	}
}

// Serials the store holds are never revoked as orphans, nor are those of other tokens.
func TestMintKeepsWhatTheStoreKnowsAndOtherTokens(t *testing.T) {
	e := newEnv(t, 24*time.Hour)
	r := e.rotator(t, request())
	other, _, _ := mint(t, r, "rotate/x/run-0", nil)
	staged, _, _ := mint(t, r, "rotate/x/run-1", nil)
	g, err := r.Mint(t.Context(), rotators.MintRequest{SecretID: "test/cert", Token: "rotate/x/run-1", Known: []map[string]string{staged.Metadata}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{other.Metadata[certs.MetadataSerial], staged.Metadata[certs.MetadataSerial], g.Metadata[certs.MetadataSerial]} {
		if e.lists(t, s) {
			t.Errorf("serial %s is on the CRL", s)
		}
	}
}

// A write cut short by a crash leaves a torn last line; the next record starts on a line
// of its own, and the torn one is skipped.
func TestIssuanceLogSurvivesATornLine(t *testing.T) {
	e := newEnv(t, 24*time.Hour)
	r := e.rotator(t, request())
	first, _, _ := mint(t, r, "rotate/x/run-1", nil)
	f, err := os.OpenFile(r.issuedPath(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"serial":"0a:0b","tok`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	second, _, _ := mint(t, r, "rotate/x/run-2", nil)
	logged := issuedSerials(t, r)
	for _, v := range []secret.Version{first, second} {
		if !slices.Contains(logged, v.Metadata[certs.MetadataSerial]) {
			t.Errorf("the log lacks serial %s: %v", v.Metadata[certs.MetadataSerial], logged)
		}
	}
}

// issuedSerials reads every whole line of the issuance log.
func issuedSerials(t *testing.T, r *Rotator) []string {
	t.Helper()
	f, err := os.Open(r.issuedPath())
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e issued
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			out = append(out, certs.FormatSerial(mustSerial(t, e.Serial)))
		}
	}
	return out
}

func mustSerial(t *testing.T, s string) *big.Int {
	t.Helper()
	n, err := certs.ParseSerial(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestKillsLeaveNoValidOrphan kills Create at random points (see rotatortest.RunKills):
// around the issuance log's write, the signature, the CRL's writes and the store's. After
// every retried rotation the CA must have exactly one valid certificate: every serial in
// its log but the current version's is on the CRL. The log is the CA's own record,
// written before any signature, and every certificate Mint returned is checked to be in
// it, so a certificate outside it would show.
func TestKillsLeaveNoValidOrphan(t *testing.T) {
	e := newEnv(t, 24*time.Hour)
	var r *Rotator
	var minted []string
	rotatortest.RunKills(t, rotatortest.KillHarness{
		New: func(t *testing.T, point func(string)) rotators.Rotator {
			r = e.rotator(t, request())
			r.killPoint = point
			return recordingMint{r, &minted}
		},
		Live: func(t *testing.T) []string {
			logged := issuedSerials(t, r)
			for _, s := range minted {
				if !slices.Contains(logged, s) {
					t.Errorf("certificate %s was signed but is not in the issuance log", s)
				}
			}
			var valid []string
			for _, s := range logged {
				if !e.lists(t, s) {
					valid = append(valid, s)
				}
			}
			slices.Sort(valid)
			return valid
		},
		Handle: func(v secret.Version) string {
			return certs.FormatSerial(mustSerial(t, v.Metadata[certs.MetadataSerial]))
		},
	})
}

// recordingMint notes the serial of every certificate Mint reports.
type recordingMint struct {
	*Rotator
	minted *[]string
}

func (m recordingMint) Mint(ctx context.Context, req rotators.MintRequest) (rotators.Generated, error) {
	report := req.Minted
	req.Minted = func(md map[string]string) {
		*m.minted = append(*m.minted, md[certs.MetadataSerial])
		if report != nil {
			report(md)
		}
	}
	return m.Rotator.Mint(ctx, req)
}
