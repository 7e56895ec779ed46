// Package privfile decides whether a file holding key material or a token is private
// enough to use: only its owner may read it (mode 0600 or 0400), so anyone else who can
// read it could decrypt payloads or forge records.
//
// One exception makes Kubernetes usable: a Secret mounted into a pod whose securityContext
// sets fsGroup is owned by root, group fsGroup, mode 0440, whatever defaultMode says, and
// a non-root container reads it through that group. A file owned by root, readable (not
// writable) by a group this process belongs to and by nobody else is accepted: root chose
// to share it with this process's group.
package privfile

import (
	"fmt"
	"io/fs"
)

// Check returns nil when the file described by info (at path) is private enough, else an
// error that names the file, its mode and the command that fixes it.
func Check(path string, info fs.FileInfo) error {
	perm := info.Mode().Perm()
	if perm&0o077 == 0 {
		return nil
	}
	if perm&0o027 == 0 && sharedByRootWithOwnGroup(info) {
		return nil
	}
	return fmt.Errorf("%s has mode %04o: others may read it; run `chmod 600 %s`", path, perm, path)
}
