// Package privfile decides whether a file holding key material or a token is private
// enough to use: only its owner may read it (mode 0600 or 0400), so anyone else who can
// read it could decrypt payloads or forge records.
//
// One exception makes Kubernetes usable: a file of a Secret mounted into a pod whose
// securityContext sets fsGroup is owned by root and group fsGroup, and the kubelet adds
// group read to its defaultMode (0400 becomes 0440); a non-root container reads it
// through that group. Such a file is accepted when it is in Kubernetes' layout for
// Secret volumes (a "..data" link beside it), owned by root, readable (not writable) by a
// group this process belongs to and by nobody else. An ordinary file on a host never is.
package privfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Check returns nil when the file described by info (at path) is private enough, else an
// error that names the file, its mode and the command that fixes it.
func Check(path string, info fs.FileInfo) error {
	perm := info.Mode().Perm()
	if perm&0o077 == 0 {
		return nil
	}
	if perm&0o027 == 0 && inSecretVolume(path) && sharedByRootWithOwnGroup(info) {
		return nil
	}
	return fmt.Errorf("%s has mode %04o: others may read it; run `chmod 600 %s`", path, perm, path)
}

// inSecretVolume reports whether path is a file of a Kubernetes Secret (or projected)
// volume: the kubelet writes each version into a timestamped directory and points the
// "..data" link beside the files at it.
func inSecretVolume(path string) bool {
	info, err := os.Lstat(filepath.Join(filepath.Dir(path), "..data"))
	return err == nil && info.Mode()&os.ModeSymlink != 0
}
