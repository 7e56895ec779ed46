//go:build unix

package privfile

import (
	"io/fs"
	"os"
	"slices"
	"syscall"
)

// sharedByRootWithOwnGroup reports whether info is owned by root and its group is one of
// this process's groups (its effective group or a supplementary one, such as fsGroup).
func sharedByRootWithOwnGroup(info fs.FileInfo) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok || st.Uid != 0 {
		return false
	}
	gid := int(st.Gid)
	if gid == os.Getegid() {
		return true
	}
	groups, err := os.Getgroups()
	return err == nil && slices.Contains(groups, gid)
}

// Owner returns the file's owner and group, for a file written to replace it, or
// (-1, -1) when info does not say.
func Owner(info fs.FileInfo) (uid, gid int) {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return -1, -1
}
