package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCodecKeyCommands: new creates once and never replaces (unless told to keep), rotate
// says what it kept, and neither prints a key.
func TestCodecKeyCommands(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "codec.key")
	code, out := run(t, "", "codec-key", "new", path)
	if code != 0 || !strings.Contains(out, "created "+path) {
		t.Fatalf("new: exit %d:\n%s", code, out)
	}
	first, _ := os.ReadFile(path)
	code, out = run(t, "", "codec-key", "new", path)
	if code == 0 || !strings.Contains(out, "exists: nothing changed") || !strings.Contains(out, "codec-key add") {
		t.Fatalf("new over an existing file must refuse and name rotate; exit %d:\n%s", code, out)
	}
	if code, out = run(t, "", "codec-key", "new", "--if-missing", path); code != 0 || !strings.Contains(out, "exists with 1 key(s): kept it unchanged") {
		t.Fatalf("new --if-missing: exit %d:\n%s", code, out)
	}
	if again, _ := os.ReadFile(path); string(again) != string(first) {
		t.Fatal("new changed an existing key file")
	}
	code, out = run(t, "", "codec-key", "rotate", path)
	if code != 0 || !strings.Contains(out, "a new key is first (2 keys)") {
		t.Fatalf("rotate: exit %d:\n%s", code, out)
	}
	if code, out = run(t, "", "codec-key", "add", path); code != 0 || !strings.Contains(out, "a new key is second (3 keys)") || !strings.Contains(out, "codec-key promote") {
		t.Fatalf("add: exit %d:\n%s", code, out)
	}
	if code, out = run(t, "", "codec-key", "promote", path); code != 0 || !strings.Contains(out, "the second key is now first (3 keys)") {
		t.Fatalf("promote: exit %d:\n%s", code, out)
	}
	keys, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(keys), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") && strings.Contains(out, line) {
			t.Fatal("the command printed a key")
		}
	}
	broken := filepath.Join(t.TempDir(), "broken.key")
	if err := os.WriteFile(broken, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out = run(t, "", "codec-key", "new", "--if-missing", broken); code == 0 || !strings.Contains(out, "exists but does not load") {
		t.Fatalf("new --if-missing over an empty file must fail; exit %d:\n%s", code, out)
	}
	if code, out = run(t, "", "codec-key", "rotate", filepath.Join(t.TempDir(), "none.key")); code == 0 || !strings.Contains(out, "none.key does not exist") || !strings.Contains(out, "codec-key new") {
		t.Fatalf("rotate of a missing file must name it; exit %d:\n%s", code, out)
	}
}
