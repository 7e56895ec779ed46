package tests

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/internal/harness/testenv"
)

// TestIncidentEvidenceBundle runs a real incident and, in a trail of its own (the worker
// records to the env's), appends hand-made records for it, so the counts are exact, and
// checks `keyturn incident evidence`: every file is in the bundle, SHA256SUMS matches,
// records.jsonl holds the incident's records and not older ones, the verification is OK;
// after one record in the sink is edited, a new bundle's verification says which. An
// existing file is not overwritten without --force, and an unknown incident is an error.
func TestIncidentEvidenceBundle(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	base := t.TempDir()
	auditDir, key := filepath.Join(base, "audit"), filepath.Join(base, "audit.key")
	kt := func(args ...string) (int, string) {
		t.Helper()
		return keyturn(t, env, append([]string{"--audit-dir", auditDir, "--audit-signing-key", key}, args...)...)
	}
	sink, err := audit.OpenFile(auditDir)
	if err != nil {
		t.Fatal(err)
	}
	add := func(r audit.Record) {
		t.Helper()
		if _, _, err := sink.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// A record of the secret from before the incident: verified with its chain, but not
	// part of the incident's records.
	add(audit.Record{ID: "before", Time: time.Now().Add(-time.Hour), Event: audit.EventRotationFinished, Outcome: "rotated",
		Actor: audit.Actor{Type: audit.ActorSchedule, Name: "keyturn/e2e/app"}, SecretID: "e2e/app", Kind: "postgres", VersionNumber: 1})

	if code, out := kt("incident", "start", "--id", "ev-1", "--select", "id=e2e/app", "--mode", "rotate", "--reason", "drill", "--yes", "--progress-every", "100ms"); code != 0 {
		t.Fatalf("incident exited %d:\n%s", code, out)
	}
	now := time.Now()
	incident := audit.Actor{Type: audit.ActorIncident, Name: "ev-1"}
	add(audit.Record{ID: "incident/ev-1|started", Time: now, Event: audit.EventIncidentStarted, Actor: audit.Actor{Type: audit.ActorOperator, Name: "test"}, Reason: "drill", IncidentID: "ev-1"})
	for i, step := range []string{"create", "test", "promote", "revoke"} {
		add(audit.Record{ID: "rotate/e2e/app|run|" + step, Time: now.Add(time.Duration(i+1) * time.Millisecond), Event: audit.EventStepSucceeded, Step: step,
			Actor: incident, Reason: "drill", IncidentID: "ev-1", SecretID: "e2e/app", Kind: "postgres", VersionNumber: 2, Handles: map[string]string{"role": "app_b"}})
	}
	add(audit.Record{ID: "incident/ev-1|finished", Time: now.Add(10 * time.Millisecond), Event: audit.EventIncidentFinished, Actor: incident, IncidentID: "ev-1"})
	if code, out := kt("audit", "checkpoint"); code != 0 {
		t.Fatalf("audit checkpoint exited %d:\n%s", code, out)
	}

	out1 := filepath.Join(base, "ev-1.tar.gz")
	code, out := kt("incident", "evidence", "ev-1", "-o", out1)
	if code != 0 || !strings.Contains(out, "6 record(s) of 2 chain(s)") || !strings.Contains(out, "verification: OK") {
		t.Fatalf("evidence exited %d:\n%s", code, out)
	}
	files := untar(t, out1, "incident-ev-1-evidence/")
	keyID := checkSums(t, files)
	for _, name := range []string{"README.txt", "SHA256SUMS", "report.json", "report.txt", "records.jsonl", "checkpoints.jsonl", "public-key-" + keyID + ".pem", "verification.json", "verification.txt"} {
		if _, ok := files[name]; !ok {
			t.Errorf("the bundle lacks %s", name)
		}
	}
	var rep struct {
		IncidentID string `json:"incidentId"`
		Done       int    `json:"done"`
	}
	if err := json.Unmarshal(files["report.json"], &rep); err != nil || rep.IncidentID != "ev-1" || rep.Done != 1 {
		t.Errorf("report.json: %+v, %v", rep, err)
	}
	recs := string(files["records.jsonl"])
	if strings.Count(recs, "\n") != 6 || strings.Contains(recs, `"id":"before"`) || !strings.Contains(recs, `"step":"revoke"`) {
		t.Errorf("records.jsonl holds other records than the incident's 6:\n%s", recs)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil || !bytes.Equal(pub, files["public-key-"+keyID+".pem"]) {
		t.Errorf("the bundle's public key is not the signing key's (%v)", err)
	}
	if v := verification(t, files); !v.OK() || v.Records != 7 || v.Chains != 2 || v.Uncovered != 0 {
		t.Errorf("verification.json: %+v", v)
	}
	if !strings.Contains(string(files["verification.txt"]), "OK: no problem found") {
		t.Errorf("verification.txt:\n%s", files["verification.txt"])
	}

	if code, out := kt("incident", "evidence", "ev-1", "-o", out1); code != 1 || !strings.Contains(out, "exists: choose another file with -o, or pass --force") {
		t.Fatalf("a second bundle to the same file exited %d:\n%s", code, out)
	}

	// Tamper with the secret's third record in the sink: the next bundle says so.
	path := filepath.Join(auditDir, "records.jsonl")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bytes.Replace(b, []byte(`"step":"test"`), []byte(`"step":"tost"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := kt("incident", "evidence", "ev-1", "-o", out1, "--force"); code != 1 || !strings.Contains(out, "the bundle was written, and its verification found 1 problem(s)") {
		t.Fatalf("evidence over a tampered trail exited %d:\n%s", code, out)
	}
	files = untar(t, out1, "incident-ev-1-evidence/")
	checkSums(t, files)
	v := verification(t, files)
	if v.OK() || len(v.Problems) != 1 || v.Problems[0].Chain != "secret/e2e/app" || v.Problems[0].Seq != 3 {
		t.Errorf("verification.json of the tampered trail: %+v", v)
	}
	if !strings.Contains(string(files["README.txt"]), "Verification: 1 PROBLEM(S)") ||
		!strings.Contains(string(files["verification.txt"]), "secret/e2e/app #3: contents do not match") {
		t.Errorf("README.txt and verification.txt must say what is wrong:\n%s\n%s", files["README.txt"], files["verification.txt"])
	}

	if code, out := kt("incident", "evidence", "nope", "-o", filepath.Join(base, "nope.tar.gz")); code != 1 || !strings.Contains(out, "no incident nope") {
		t.Fatalf("evidence of an unknown incident exited %d:\n%s", code, out)
	}
	if code, out := kt("incident", "evidence", "a/b"); code != 1 || !strings.Contains(out, "without spaces or slashes") {
		t.Fatalf("evidence of a malformed ID exited %d:\n%s", code, out)
	}
}

// untar reads a tar.gz whose files all sit under dir, by name within dir.
func untar(t *testing.T, path, dir string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(h.Name, dir) {
			t.Fatalf("%s is outside %s", h.Name, dir)
		}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[strings.TrimPrefix(h.Name, dir)] = b
		}
	}
}

// checkSums checks that SHA256SUMS lists every other file with its hash, and returns the
// key ID of the bundle's public key.
func checkSums(t *testing.T, files map[string][]byte) (keyID string) {
	t.Helper()
	listed := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(files["SHA256SUMS"])), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		got := sha256.Sum256(files[name])
		if !ok || hex.EncodeToString(got[:]) != sum {
			t.Errorf("SHA256SUMS line %q does not match the file", line)
		}
		listed[name] = true
		if strings.HasPrefix(name, "public-key-") {
			keyID = strings.TrimSuffix(strings.TrimPrefix(name, "public-key-"), ".pem")
		}
	}
	for name := range files {
		if name != "SHA256SUMS" && !listed[name] {
			t.Errorf("SHA256SUMS does not list %s", name)
		}
	}
	return keyID
}

func verification(t *testing.T, files map[string][]byte) audit.Report {
	t.Helper()
	var v audit.Report
	if err := json.Unmarshal(files["verification.json"], &v); err != nil {
		t.Fatal(err)
	}
	return v
}
