package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWindowAndCatchupWindow(t *testing.T) {
	const head = "version: 1\ndefaults:\n  catchup_window: 5s\n  window: 2h\nsecrets:\n"
	const secret = `  - id: app/db
    kind: postgres
    window: 10m
    postgres: {host: h, database: d, role: app, admin: {username: a, password: "env:P"}}
`
	path := filepath.Join(t.TempDir(), "inv.yaml")
	write := func(text string) {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(head + secret)
	_, err := Load(path)
	probs, ok := err.(Errors)
	if !ok {
		t.Fatalf("Parse: %v, want problems", err)
	}
	want := map[string]string{
		"defaults.catchup_window": "between 10s and 24h",
		"defaults.window":         "shorter than 1h",
		"secrets[0].window":       "only means something with a schedule",
	}
	for field, text := range want {
		found := false
		for _, p := range probs {
			if p.Field == field && strings.Contains(p.Message, text) {
				found = true
			}
		}
		if !found {
			t.Errorf("no problem on %s containing %q; got %v", field, text, probs)
		}
	}

	write("version: 1\ndefaults: {window: 30m}\nsecrets:\n" + strings.Replace(secret, "window: 10m", "schedule: \"@daily\"", 1))
	inv, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if s := inv.Secrets[0]; s.Window != 30*time.Minute || inv.Defaults.CatchupWindow != DefaultCatchupWindow {
		t.Errorf("window %s, catch-up %s; want the defaults' 30m and %s", s.Window, inv.Defaults.CatchupWindow, DefaultCatchupWindow)
	}
}
