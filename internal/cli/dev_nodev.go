//go:build nodev

package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// newDevCmd, in a build made with -tags nodev (`make build-prod`, deploy/Dockerfile), says
// that this build leaves `keyturn dev` out. The embedded Temporal server and Web UI are
// most of the full binary (65 MB without them against 234 MB, unstripped), and a worker
// keeps much of that code resident: without them a worker's peak resident memory in a
// 1,000-secret incident was 93 MiB instead of 178-192 MiB.
func newDevCmd(*globals) *cobra.Command {
	return &cobra.Command{
		Use:    "dev",
		Short:  "Not in this build: the production build leaves out the embedded Temporal server and Web UI",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("`keyturn dev` is not in this build (built with -tags nodev, the production build, without the embedded Temporal server and Web UI); " +
				"build the full binary for it: make build, or go build ./cmd/keyturn")
		},
	}
}
