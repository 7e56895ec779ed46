//go:build !unix

package privfile

import "io/fs"

// sharedByRootWithOwnGroup is false where file ownership is not Unix's.
func sharedByRootWithOwnGroup(fs.FileInfo) bool { return false }
