// Package home owns Keyturn's state directory: where `keyturn dev` keeps the embedded
// server's database, the file store, the payload codec key and the demo, and where every
// other command looks for them, from any working directory. It is the one place that
// knows the directory's layout.
//
// The directory is, in order: the --home flag, KEYTURN_HOME, $XDG_DATA_HOME/keyturn, or
// ~/.local/share/keyturn (the XDG base directory default). It holds data that cannot be
// recreated (the store's key and secrets), so it is data, not cache or state.
package home

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// EnvVar names the environment variable that sets the state directory.
const EnvVar = "KEYTURN_HOME"

// Dir is an absolute path to a state directory.
type Dir string

// Resolve returns the state directory: flag when set, else KEYTURN_HOME, else the XDG
// default. The path is made absolute, so a command run from another directory later
// still finds it.
func Resolve(flag string) (Dir, error) {
	p := flag
	if p == "" {
		p = os.Getenv(EnvVar)
	}
	if p == "" {
		p = defaultDir()
		if p == "" {
			return "", fmt.Errorf("no state directory: set %s (neither XDG_DATA_HOME nor HOME is set)", EnvVar)
		}
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("state directory %q: %w", p, err)
	}
	return Dir(abs), nil
}

// defaultDir is the XDG base directory spec's place for an application's data.
func defaultDir() string {
	if x := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "keyturn")
	}
	if h, err := os.UserHomeDir(); err == nil && h != "" {
		return filepath.Join(h, ".local", "share", "keyturn")
	}
	return ""
}

// Store is the dev file store's directory.
func (d Dir) Store() string { return filepath.Join(string(d), "store") }

// CodecKey is the payload encryption key file.
func (d Dir) CodecKey() string { return filepath.Join(string(d), "codec.key") }

// Audit is the directory of the audit trail's file sink (records and checkpoints).
func (d Dir) Audit() string { return filepath.Join(string(d), "audit") }

// AuditKey is the Ed25519 key that signs the audit trail's checkpoints; its public half
// is beside it as AuditKey() + ".pub".
func (d Dir) AuditKey() string { return filepath.Join(string(d), "audit.key") }

// DemoInventory is the inventory `keyturn dev` generates for its demo targets.
func (d Dir) DemoInventory() string { return filepath.Join(string(d), "demo-inventory.yaml") }

// DemoCRL is where the demo CA publishes its certificate revocation list.
func (d Dir) DemoCRL() string { return filepath.Join(string(d), "localca", "dev-ca.crl") }

// Temporal is the embedded Temporal server's directory (its SQLite database).
func (d Dir) Temporal() string { return filepath.Join(string(d), "temporal") }

// String returns the path.
func (d Dir) String() string { return string(d) }

func (d Dir) lockFile() string   { return filepath.Join(string(d), "dev.lock") }
func (d Dir) recordFile() string { return filepath.Join(string(d), "dev.json") }

// Dev is what a running `keyturn dev` records about itself, so that other commands find
// its inventory and server without flags.
type Dev struct {
	// Inventory is the absolute path of the inventory the dev worker serves.
	Inventory string `json:"inventory"`
	// Address is the embedded Temporal frontend's host:port.
	Address string `json:"address"`
	// Namespace is the Temporal namespace.
	Namespace string `json:"namespace"`
}

// Lock makes sure one `keyturn dev` at a time uses the directory: two would share one
// SQLite database and one file store behind each other's backs. The lock is released
// when the returned function is called or the process dies.
func (d Dir) Lock() (unlock func(), err error) {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return nil, fmt.Errorf("state directory %s: %w", d, err)
	}
	f, err := os.OpenFile(d.lockFile(), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state directory %s: %w", d, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("another keyturn dev is using %s: stop it, or pass --home (or set %s) to use another directory", d, EnvVar)
	}
	return func() {
		_ = os.Remove(d.recordFile())
		_ = f.Close()
	}, nil
}

// Record writes what a running dev serves. Call it while holding the lock.
func (d Dir) Record(dev Dev) error {
	data, err := json.Marshal(dev)
	if err != nil {
		return fmt.Errorf("record dev state: %w", err)
	}
	tmp := d.recordFile() + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("record dev state: %w", err)
	}
	if err := os.Rename(tmp, d.recordFile()); err != nil {
		return fmt.Errorf("record dev state: %w", err)
	}
	return nil
}

// RunningDev returns what the `keyturn dev` using this directory serves, or ok=false when
// none runs now. A record left by a dev that has stopped is ignored: only a dev that
// still holds the lock counts.
func (d Dir) RunningDev() (Dev, bool) {
	data, err := os.ReadFile(d.recordFile())
	if err != nil {
		return Dev{}, false
	}
	f, err := os.OpenFile(d.lockFile(), os.O_RDWR, 0)
	if err != nil {
		return Dev{}, false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		// Nobody holds it: the dev that wrote the record is gone.
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return Dev{}, false
	}
	var dev Dev
	if json.Unmarshal(data, &dev) != nil || dev.Address == "" {
		return Dev{}, false
	}
	return dev, true
}

// Exists reports whether path exists; a permission error counts as existing, so the
// caller's open reports it.
func Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}
