package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/audit/audittest"
	"github.com/keyturn/keyturn/secret"
)

// trail is a file sink with records in three chains and a checkpoint signed by
// `keyturn audit checkpoint` over all of them, for the commands to read.
type trail struct {
	dir, key string
	start    time.Time
}

// newTrail writes five records of secret a/one, three of b/two and two of incident i-1
// (whose records name it), then signs a checkpoint through the CLI.
func newTrail(t *testing.T) trail {
	t.Helper()
	base := t.TempDir()
	tr := trail{dir: filepath.Join(base, "audit"), key: filepath.Join(base, "keys", "audit.key"), start: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)}
	sink, err := audit.OpenFile(tr.dir)
	if err != nil {
		t.Fatal(err)
	}
	appendRecords(t, sink, "a/one", 5, tr.start, "")
	appendRecords(t, sink, "b/two", 3, tr.start.Add(time.Hour), "i-1")
	for i, ev := range []string{audit.EventIncidentStarted, audit.EventIncidentFinished} {
		r := audit.Record{ID: fmt.Sprintf("incident/i-1|%d", i), Time: tr.start.Add(time.Hour + time.Duration(i)*time.Minute), Event: ev,
			Actor: audit.Actor{Type: audit.ActorOperator, Name: "carol"}, Reason: "drill", IncidentID: "i-1"}
		if _, _, err := sink.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	code, out := tr.run(t, "audit", "checkpoint")
	if code != 0 || !strings.Contains(out, "made a new audit signing key") || !strings.Contains(out, "over 3 chain(s)") ||
		!strings.Contains(out, "secret/a/one: 5 record(s), head ") {
		t.Fatalf("audit checkpoint exited %d:\n%s", code, out)
	}
	return tr
}

// appendRecords appends n step records of secret id, a minute apart from t0.
func appendRecords(t *testing.T, sink audit.Sink, id secret.ID, n int, t0 time.Time, incident string) {
	t.Helper()
	for i := range n {
		r := audittest.Record(id, fmt.Sprintf("rotate/%s|run|%d", id, i), t0.Add(time.Duration(i)*time.Minute))
		r.IncidentID = incident
		if incident != "" {
			r.Actor = audit.Actor{Type: audit.ActorIncident, Name: incident}
		}
		if _, _, err := sink.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
}

// run runs keyturn on the trail.
func (tr trail) run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	full := append([]string{"--audit-dir", tr.dir, "--audit-signing-key", tr.key}, args...)
	code := Execute(context.Background(), full, strings.NewReader(""), &out, &out)
	return code, out.String()
}

func (tr trail) recordsPath() string     { return filepath.Join(tr.dir, "records.jsonl") }
func (tr trail) checkpointsPath() string { return filepath.Join(tr.dir, "checkpoints.jsonl") }

// lines reads a file of the trail as lines (without their newlines).
func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func writeLines(t *testing.T, path string, ls []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(ls, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// at is the index of the line holding chain's record seq.
func at(t *testing.T, ls []string, chain string, seq int64) int {
	t.Helper()
	for i, l := range ls {
		var r audit.Record
		if json.Unmarshal([]byte(l), &r) == nil && r.Chain == chain && r.Seq == seq {
			return i
		}
	}
	t.Fatalf("no line holds %s #%d", chain, seq)
	return -1
}

func decode(t *testing.T, line string) audit.Record {
	t.Helper()
	var r audit.Record
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func encode(t *testing.T, r audit.Record) string {
	t.Helper()
	b, err := r.MarshalLine()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

// TestAuditVerifyFindsTampering: each way of tampering with the file sink makes `keyturn
// audit verify` exit 1 and name the chain and the position (or the line, or the
// checkpoint); the untouched trail exits 0.
func TestAuditVerifyFindsTampering(t *testing.T) {
	const a = "secret/a/one"
	for name, tc := range map[string]struct {
		tamper func(t *testing.T, tr trail)
		want   []string
	}{
		"untouched": {func(*testing.T, trail) {}, nil},
		"edited field": {func(t *testing.T, tr trail) {
			ls := lines(t, tr.recordsPath())
			i := at(t, ls, a, 2)
			ls[i] = strings.Replace(ls[i], `"role":"app_b"`, `"role":"app_x"`, 1)
			writeLines(t, tr.recordsPath(), ls)
		}, []string{a + " #2: contents do not match the record's hash"}},
		"deleted record": {func(t *testing.T, tr trail) {
			ls := lines(t, tr.recordsPath())
			i := at(t, ls, a, 3)
			writeLines(t, tr.recordsPath(), append(ls[:i:i], ls[i+1:]...))
		}, []string{a + " #3: holds record #4", a + " #3: does not link to the record before it"}},
		"swapped records": {func(t *testing.T, tr trail) {
			ls := lines(t, tr.recordsPath())
			i, j := at(t, ls, a, 2), at(t, ls, a, 3)
			ls[i], ls[j] = ls[j], ls[i]
			writeLines(t, tr.recordsPath(), ls)
		}, []string{a + " #2: holds record #3", a + " #3: holds record #2"}},
		"truncated tail": {func(t *testing.T, tr trail) {
			ls := lines(t, tr.recordsPath())
			i, j := at(t, ls, a, 4), at(t, ls, a, 5)
			rest := append([]string{}, ls[:i]...)
			rest = append(rest, ls[i+1:j]...)
			writeLines(t, tr.recordsPath(), append(rest, ls[j+1:]...))
		}, []string{a + ": the checkpoint of", "signed 5 records, only 3 are here"}},
		"rewritten and rehashed": {func(t *testing.T, tr trail) {
			// Change #2, then reseal it and everything after it: every hash and link is
			// consistent again, only the signed head differs.
			ls := lines(t, tr.recordsPath())
			prev := decode(t, ls[at(t, ls, a, 1)]).Hash
			for seq := int64(2); seq <= 5; seq++ {
				i := at(t, ls, a, seq)
				r := decode(t, ls[i])
				if seq == 2 {
					r.Handles = map[string]string{"role": "app_x"}
				}
				r = r.Seal(a, seq, prev)
				prev = r.Hash
				ls[i] = encode(t, r)
			}
			writeLines(t, tr.recordsPath(), ls)
		}, []string{a + " #5: differs from the checkpoint of"}},
		"altered checkpoint": {func(t *testing.T, tr trail) {
			ls := lines(t, tr.checkpointsPath())
			ls[0] = strings.Replace(ls[0], `"count":5`, `"count":4`, 1)
			writeLines(t, tr.checkpointsPath(), ls)
		}, []string{"has a signature no trusted key verifies", a + "#4"}},
		"forged checkpoint over a rewritten chain": {func(t *testing.T, tr trail) {
			// The trail is rewritten, and the forger signs its new heads with a key of
			// their own: the forged checkpoint is not trusted and the real one still holds.
			ls := lines(t, tr.recordsPath())
			i := at(t, ls, a, 5)
			r := decode(t, ls[i])
			r.Outcome = "rotated"
			r = r.Seal(a, 5, r.Prev)
			ls[i] = encode(t, r)
			writeLines(t, tr.recordsPath(), ls)
			_, key, _ := ed25519.GenerateKey(rand.Reader)
			cp, err := audit.NewSigner(key).Sign(time.Now(), []audit.Head{{Chain: a, Count: 5, Hash: r.Hash}})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(cp)
			writeLines(t, tr.checkpointsPath(), append(lines(t, tr.checkpointsPath()), string(b)))
		}, []string{a + " #5: differs from the checkpoint of", "has a signature no trusted key verifies", "over " + a + "#5"}},
		"unparseable record line": {func(t *testing.T, tr trail) {
			ls := lines(t, tr.recordsPath())
			i := at(t, ls, a, 3)
			ls[i] = ls[i][:len(ls[i])/2]
			writeLines(t, tr.recordsPath(), ls)
		}, []string{"unreadable #3: line 3 of records.jsonl does not parse", a + " #3: holds record #4"}},
		"unparseable checkpoint line": {func(t *testing.T, tr trail) {
			writeLines(t, tr.checkpointsPath(), append(lines(t, tr.checkpointsPath()), "{oops"))
		}, []string{"over line 2 of checkpoints.jsonl) has a signature no trusted key verifies"}},
	} {
		t.Run(name, func(t *testing.T) {
			tr := newTrail(t)
			tc.tamper(t, tr)
			code, out := tr.run(t, "audit", "verify")
			if tc.want == nil {
				if code != 0 || !strings.Contains(out, "OK: no problem found") || !strings.Contains(out, "3 chain(s), 10 record(s), 1 checkpoint(s) of which 1 signed by a trusted key") {
					t.Fatalf("untouched trail: exit %d:\n%s", code, out)
				}
				return
			}
			if code != 1 || !strings.Contains(out, "PROBLEMS:") || !strings.Contains(out, "the audit trail does not verify") {
				t.Fatalf("exit %d, want 1:\n%s", code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			code, js := tr.run(t, "audit", "verify", "--json")
			var rep audit.Report
			if code != 1 || json.Unmarshal([]byte(js[:strings.LastIndex(js, "}")+1]), &rep) != nil || rep.OK() {
				t.Fatalf("--json exited %d, want 1 with the problems:\n%s", code, js)
			}
		})
	}
}

// TestAuditVerifyKeysAndCoverage: records after the last checkpoint are reported as linked
// but unsigned (exit 0), `audit checkpoint` signs them and then has nothing new to sign;
// a public key kept elsewhere verifies, a different one does not.
func TestAuditVerifyKeysAndCoverage(t *testing.T) {
	tr := newTrail(t)
	sink, err := audit.OpenFile(tr.dir)
	if err != nil {
		t.Fatal(err)
	}
	appendRecords(t, sink, "c/three", 2, tr.start.Add(2*time.Hour), "")
	code, out := tr.run(t, "audit", "verify")
	if code != 0 || !strings.Contains(out, "2 record(s) are linked but not yet signed by a checkpoint") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if code, out = tr.run(t, "audit", "checkpoint"); code != 0 || !strings.Contains(out, "over 1 chain(s)") || !strings.Contains(out, "secret/c/three: 2 record(s)") {
		t.Fatalf("second checkpoint exited %d:\n%s", code, out)
	}
	if code, out = tr.run(t, "audit", "checkpoint"); code != 0 || !strings.Contains(out, "nothing new to sign") {
		t.Fatalf("third checkpoint exited %d:\n%s", code, out)
	}
	elsewhere := filepath.Join(t.TempDir(), "trusted.pub")
	b, err := os.ReadFile(tr.key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(elsewhere, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out = tr.run(t, "audit", "verify", "--public-key", elsewhere); code != 0 || strings.Contains(out, "not yet signed") || !strings.Contains(out, "trusted keys from --public-key") {
		t.Fatalf("verify with the key kept elsewhere exited %d:\n%s", code, out)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	other := filepath.Join(t.TempDir(), "other.pub")
	if err := audit.WritePublicKey(other, pub); err != nil {
		t.Fatal(err)
	}
	if code, out = tr.run(t, "audit", "verify", "--public-key", other); code != 1 || !strings.Contains(out, "0 signed by a trusted key") {
		t.Fatalf("verify with a key that signed nothing exited %d:\n%s", code, out)
	}
	// No key at all: nothing can be trusted, and verify says why.
	noKey := trail{dir: tr.dir, key: filepath.Join(t.TempDir(), "missing.key")}
	if code, out = noKey.run(t, "audit", "verify"); code != 1 || !strings.Contains(out, "no public key at") {
		t.Fatalf("verify without a key exited %d:\n%s", code, out)
	}
}

// TestAuditShow: filters select what they say, --json prints the stored lines, and bad
// input names the flag and the fix without echoing terminal escapes.
func TestAuditShow(t *testing.T) {
	tr := newTrail(t)
	count := func(out string) int { return strings.Count(out, "\n") }

	code, out := tr.run(t, "audit", "show", "--secret", "a/one")
	if code != 0 || count(out) != 6 || !strings.Contains(out, "secret/a/one#5") || strings.Contains(out, "b/two") ||
		!strings.Contains(out, "TIME") || !strings.Contains(out, "role=app_b") {
		t.Fatalf("--secret a/one exited %d:\n%s", code, out)
	}
	if code, out = tr.run(t, "audit", "show", "--incident", "i-1", "--json"); code != 0 || count(out) != 5 {
		t.Fatalf("--incident i-1 --json exited %d:\n%s", code, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if r := decode(t, l); r.IncidentID != "i-1" || r.Hash != r.ComputeHash() {
			t.Fatalf("--json line is not a stored record of i-1: %s", l)
		}
	}
	for flags, want := range map[string]int{
		"--actor operator":       7, // 5 of a/one by alice, and carol's two incident records
		"--actor operator:carol": 2,
		"--actor incident:i-1":   3,
		"--since " + tr.start.Add(time.Hour).Format(time.RFC3339):                                                   5,
		"--since " + tr.start.Format(time.RFC3339) + " --until " + tr.start.Add(2*time.Minute).Format(time.RFC3339): 3,
		"--since 1h": 0,
	} {
		code, out := tr.run(t, append([]string{"audit", "show", "--json"}, strings.Fields(flags)...)...)
		if got := count(out); code != 0 || got != want {
			t.Errorf("%s: exit %d, %d record(s), want %d:\n%s", flags, code, got, want, out)
		}
	}
	for _, tc := range []struct{ args, want []string }{
		{[]string{"--secret", "Bad ID\x1b[31m"}, []string{"--secret: secret id", "not path-like"}},
		{[]string{"--incident", "a/b"}, []string{"--incident: incident ID", "without spaces or slashes"}},
		{[]string{"--actor", "robot\x1b]0;x\x07"}, []string{"--actor", "must be one of operator, schedule, incident, worker"}},
		{[]string{"--actor", "operator:"}, []string{"--actor", "give a name after ':'"}},
		{[]string{"--since", "yesterday\x1b[2J"}, []string{"--since", "RFC3339", "24h"}},
		{[]string{"--until", "-5h"}, []string{"--until", "cannot be negative"}},
		{[]string{"--since", "1h", "--until", "2h"}, []string{"before --since", "swap them"}},
	} {
		code, out := tr.run(t, append([]string{"audit", "show"}, tc.args...)...)
		if code != 1 || strings.Contains(out, "\x1b") {
			t.Errorf("%q: exit %d, want 1 without escapes:\n%q", tc.args, code, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%q: output lacks %q:\n%s", tc.args, w, out)
			}
		}
	}
}
