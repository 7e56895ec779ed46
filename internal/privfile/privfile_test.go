//go:build unix

package privfile

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeInfo is a file's stat result with the owner, group and mode a test chooses:
// root-owned files cannot be made by an unprivileged test.
type fakeInfo struct {
	mode     fs.FileMode
	uid, gid uint32
}

func (f fakeInfo) Name() string       { return "key" }
func (f fakeInfo) Size() int64        { return 64 }
func (f fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return false }
func (f fakeInfo) Sys() any           { return &syscall.Stat_t{Uid: f.uid, Gid: f.gid} }

func TestCheck(t *testing.T) {
	// A Secret volume as the kubelet lays it out: the files link into a directory that
	// ..data points at.
	vol := t.TempDir()
	if err := os.Mkdir(filepath.Join(vol, "..2026_12_04"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..2026_12_04", filepath.Join(vol, "..data")); err != nil {
		t.Fatal(err)
	}
	inVolume, onHost := filepath.Join(vol, "codec.key"), filepath.Join(t.TempDir(), "codec.key")
	own := uint32(os.Getegid())
	other := own + 4242
	for name, tc := range map[string]struct {
		info   fakeInfo
		ok     bool
		onHost bool
	}{
		"root-shared, but on a host":     {fakeInfo{0o440, 0, own}, false, true},
		"0600, mine":                     {fakeInfo{0o600, uint32(os.Geteuid()), own}, true, false},
		"0400":                           {fakeInfo{0o400, uint32(os.Geteuid()), own}, true, false},
		"Kubernetes secret with fsGroup": {fakeInfo{0o440, 0, own}, true, false},
		"root, group of another process": {fakeInfo{0o440, 0, other}, false, false},
		"group-readable, not root's":     {fakeInfo{0o640, 1000, own}, false, false},
		"root, group may write":          {fakeInfo{0o460, 0, own}, false, false},
		"root, others may read":          {fakeInfo{0o444, 0, own}, false, false},
		"world-readable":                 {fakeInfo{0o644, uint32(os.Geteuid()), own}, false, false},
	} {
		path := inVolume
		if tc.onHost {
			path = onHost
		}
		err := Check(path, tc.info)
		if (err == nil) != tc.ok {
			t.Errorf("%s: Check = %v, want ok=%v", name, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("%s: the error does not say how to fix it: %v", name, err)
		}
	}
}

// TestCheckRealFiles runs the rule on files this test can make.
func TestCheckRealFiles(t *testing.T) {
	dir := t.TempDir()
	for mode, ok := range map[fs.FileMode]bool{0o600: true, 0o644: false} {
		p := filepath.Join(dir, mode.String())
		if err := os.WriteFile(p, []byte("k"), mode); err != nil {
			t.Fatal(err)
		}
		_ = os.Chmod(p, mode)
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := Check(p, info); (err == nil) != ok {
			t.Errorf("mode %04o: Check = %v, want ok=%v", mode, err, ok)
		}
	}
}
