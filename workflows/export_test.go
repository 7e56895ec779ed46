package workflows

// SetPageSize makes incidents read and rotate their scope in pages of n secrets, so a
// test pages a small scope; the returned function restores the size.
func SetPageSize(n int) (restore func()) {
	old := pageSize
	pageSize = n
	return func() { pageSize = old }
}

// Listed is listed, for tests.
var Listed = listed

// HedgeDelay is hedgeDelay, for tests.
var HedgeDelay = hedgeDelay
