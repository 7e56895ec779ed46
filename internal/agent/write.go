package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/keyturn/keyturn/internal/durable"
)

// tempPattern names the temporary files writeAtomic makes beside a destination, hidden
// and recognisable, so removeStaleTemps can clear what a crash left.
func tempPattern(dest string) string { return "." + filepath.Base(dest) + ".keyturn-*.tmp" }

// writeAtomic replaces dest with data so that a reader sees the old file or the new one,
// never a part, and a crash leaves one of the two. The temporary file is made in dest's
// directory (a rename across file systems is not atomic) and is 0600 before a byte of
// material is written; owner and mode are set before the rename, so the file never
// appears with other permissions than asked. uid or gid -1 leaves that owner as it is.
//
// With markPending, dest's reload-pending marker is made durable before the rename: a
// crash after the rename then always leaves a marker, and the next agent reloads.
func writeAtomic(dest string, data []byte, mode os.FileMode, uid, gid int, markPending bool) (err error) {
	dir := filepath.Dir(dest)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("write %s: directory %s does not exist; create it (the agent does not create directories)", dest, dir)
	}
	tmp, err := os.CreateTemp(dir, tempPattern(dest))
	if err != nil {
		return fmt.Errorf("write %s: %w", dest, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// CreateTemp already makes the file 0600; say so explicitly, before any material is
	// in it, rather than rely on it.
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("write %s: chmod temporary file: %w", dest, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", dest, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", dest, err)
	}
	if uid != -1 || gid != -1 {
		if err := tmp.Chown(uid, gid); err != nil {
			return fmt.Errorf("write %s: set owner %d:%d (the agent needs the privilege to chown, e.g. run as root): %w", dest, uid, gid, err)
		}
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: chmod %04o: %w", dest, mode, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", dest, err)
	}
	if markPending {
		if err := markReloadPending(dest); err != nil {
			return fmt.Errorf("write %s: %w", dest, err)
		}
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return fmt.Errorf("write %s: %w", dest, err)
	}
	return durable.SyncDir(dir)
}

// upToDate reports whether dest already holds data with the mode and owners asked, so an
// agent restarted over its own files neither rewrites them nor reloads.
func upToDate(dest string, data []byte, mode os.FileMode, uid, gid int) bool {
	st, err := os.Lstat(dest)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != mode {
		return false
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		if (uid != -1 && int(sys.Uid) != uid) || (gid != -1 && int(sys.Gid) != gid) {
			return false
		}
	}
	if st.Size() != int64(len(data)) {
		return false
	}
	have, err := os.ReadFile(dest)
	return err == nil && bytes.Equal(have, data)
}

// removeStaleTemps deletes temporary files a crashed agent left beside dest. They may
// hold material, so they must not linger.
func removeStaleTemps(dest string) {
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(dest), tempPattern(dest)))
	for _, m := range matches {
		os.Remove(m)
	}
}

// pendingMarker names the file that says dest was written and the reload has not yet
// succeeded since. It sits beside dest, hidden, and holds nothing.
//
// It is one marker per destination, in the destination's directory, rather than one per
// agent in a state directory: the agent can already write there (no new setting, no
// directory to create or own), a marker cannot outlive the file it speaks for in another
// place, and the set of markers is exactly the list of files still waiting for a reload,
// which a retried reload command gets in KEYTURN_CHANGED_FILES.
func pendingMarker(dest string) string {
	return filepath.Join(filepath.Dir(dest), "."+filepath.Base(dest)+".keyturn-reload-pending")
}

// markReloadPending creates dest's marker and flushes the directory, so the marker is on
// disk before the rename that needs it. An existing marker is kept as it is.
func markReloadPending(dest string) error {
	f, err := os.OpenFile(pendingMarker(dest), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create the reload-pending marker: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create the reload-pending marker: %w", err)
	}
	return durable.SyncDir(filepath.Dir(dest))
}

// reloadPending reports whether dest's marker is there.
func reloadPending(dest string) bool {
	_, err := os.Lstat(pendingMarker(dest))
	return err == nil
}

// clearReloadPending removes the markers of dests after a reload succeeded. A marker
// already gone is fine; one that cannot be removed costs one more (harmless) reload.
func clearReloadPending(dests []string) error {
	var errs []error
	dirs := map[string]bool{}
	for _, d := range dests {
		if err := os.Remove(pendingMarker(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove the reload-pending marker of %s: %w", d, err))
			continue
		}
		dirs[filepath.Dir(d)] = true
	}
	for dir := range dirs {
		if err := durable.SyncDir(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
