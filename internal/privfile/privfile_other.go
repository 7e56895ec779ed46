//go:build !unix

package privfile

import "io/fs"

// sharedByRootWithOwnGroup is false where file ownership is not Unix's.
func sharedByRootWithOwnGroup(fs.FileInfo) bool { return false }

// Owner is (-1, -1) where file ownership is not Unix's: nothing to keep.
func Owner(fs.FileInfo) (uid, gid int) { return -1, -1 }
