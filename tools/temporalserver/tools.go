//go:build tools

// Package temporalserver pins the Temporal server whose own binaries, temporal-server and
// temporal-sql-tool, the tests and benchmarks run as a separate process persisted in
// PostgreSQL: the layout production uses, beside the embedded server of `keyturn dev`.
// `make tools` builds both into bin/; nothing here is linked into keyturn.
package temporalserver

import (
	_ "go.temporal.io/server/cmd/server"
	_ "go.temporal.io/server/cmd/tools/sql"
)
