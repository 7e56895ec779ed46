package audit_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/audit/audittest"
)

// TestLogMirror: `--audit-stdout` writes each new record once (a retried event is not
// written again) and each checkpoint the log signs, one JSON line each.
func TestLogMirror(t *testing.T) {
	ctx := t.Context()
	sink, err := audit.OpenFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	var out bytes.Buffer
	l := &audit.Log{Sink: sink, Signer: audit.NewSigner(key), Mirror: &out}
	r := audittest.Record("app-db", "e1", time.Now())
	for range 2 { // the second is a retry of the first
		if _, err := l.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("mirrored %d lines, want the record once and the checkpoint:\n%s", len(lines), out.String())
	}
	var rec audit.Record
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil || rec.ID != "e1" || rec.Hash != rec.ComputeHash() {
		t.Errorf("first line is not the sealed record: %v %+v", err, rec)
	}
	var cp struct{ Checkpoint audit.Checkpoint }
	if err := json.Unmarshal([]byte(lines[1]), &cp); err != nil || len(cp.Checkpoint.Heads) != 1 || cp.Checkpoint.Heads[0].Hash != rec.Hash {
		t.Errorf("second line is not the checkpoint over the record: %v %+v", err, cp)
	}
}
