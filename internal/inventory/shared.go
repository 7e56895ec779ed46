package inventory

// Rules of this package that other packages apply too, exported here so they are not
// copied: each is a thin name for the one implementation the inventory checks use.

// IsLoopbackHost reports whether host names this machine (localhost or a loopback IP),
// the one place plain http is allowed: for an httpapi call here, and for a notification
// webhook in package notify, which checks the URL when it has resolved the reference.
func IsLoopbackHost(host string) bool { return isLoopback(host) }

// Displayable cleans text for people the way problem messages are cleaned (see
// displayable): no escape sequences or control characters, valid UTF-8, at most limit
// runes. Package notify cleans the error text of an event with it.
func Displayable(s string, limit int) string { return displayable(s, limit) }
