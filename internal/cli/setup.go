package cli

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyturn/keyturn/internal/durtext"
	"github.com/keyturn/keyturn/internal/setup"
	"github.com/keyturn/keyturn/workflows"
)

// checkTimeout bounds the worker's start check: two small calls to the frontend.
const checkTimeout = 30 * time.Second

func newSetupCmd(g *globals) *cobra.Command {
	var (
		check     bool
		create    bool
		retention time.Duration
		wait      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Prepare a Temporal namespace for Keyturn: its search attributes (and the namespace, with --create-namespace)",
		Long: "Checks that the namespace exists and registers Keyturn's custom search attributes in it\n" +
			"(" + setup.List(setup.Attributes(workflows.SearchAttributes())) + "), then waits until the frontend accepts them.\n" +
			"Running it again changes nothing. The cluster is reached as every command reaches it (TEMPORAL_* variables,\n" +
			"profile, --address, --namespace), so TLS, mTLS and API keys work the same; the identity needs the operator\n" +
			"service. On Temporal Cloud, add the attributes in the namespace's settings or with tcld, then check with --check.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if wait <= 0 {
				return fmt.Errorf("--wait %s: give the cluster some time to accept the attributes (default 1m)", durtext.Short(wait))
			}
			if retention < 24*time.Hour {
				return fmt.Errorf("--retention %s is too short: Temporal keeps a closed workflow at least 1 day (24h)", durtext.Short(retention))
			}
			conn, err := g.connect(g.logger(cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			defer conn.Close()
			out := cmd.OutOrStdout()
			want := workflows.SearchAttributes()
			if check {
				ctx, cancel := context.WithTimeout(cmd.Context(), checkTimeout)
				defer cancel()
				r, err := setup.Check(ctx, conn.Client, conn.Address, conn.Namespace, want)
				if err != nil {
					return err
				}
				if err := r.Err(); err != nil {
					return err
				}
				fmt.Fprintf(out, "Namespace %q on %s is ready for Keyturn: %d search attributes registered.\n", conn.Namespace, conn.Address, len(want))
				return nil
			}
			res, err := setup.Apply(cmd.Context(), conn.Client, conn.Address, conn.Namespace, want, setup.Options{
				CreateNamespace: create, Retention: retention, Wait: wait,
			})
			if res.CreatedNamespace {
				fmt.Fprintf(out, "Created namespace %q on %s (retention %s).\n", conn.Namespace, conn.Address, durtext.Short(retention))
			}
			if len(res.Added) > 0 {
				fmt.Fprintf(out, "Registered search attributes in %q: %s.\n", conn.Namespace, setup.List(res.Added))
			}
			if err != nil {
				return err
			}
			if !res.CreatedNamespace && len(res.Added) == 0 {
				fmt.Fprintf(out, "Namespace %q on %s was already ready for Keyturn; nothing changed.\n", conn.Namespace, conn.Address)
				return nil
			}
			fmt.Fprintf(out, "Namespace %q on %s is ready for Keyturn: start workers with `keyturn worker --namespace %s`.\n", conn.Namespace, conn.Address, conn.Namespace)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&check, "check", false, "only check: exit 1 naming what is missing, change nothing")
	f.BoolVar(&create, "create-namespace", false, "create the namespace when it does not exist")
	f.DurationVar(&retention, "retention", 72*time.Hour, "with --create-namespace: how long the namespace keeps closed rotations' histories")
	f.DurationVar(&wait, "wait", time.Minute, "how long to wait for the cluster to accept what was added")
	return cmd
}

// checkNamespace is the worker's start check: a namespace that is missing or lacks
// Keyturn's search attributes stops the worker with the names and the fix, since every
// rotation would fail there. A cluster that refuses this identity the check is logged and
// the worker starts: it may be allowed to run workflows without the operator service.
func checkNamespace(ctx context.Context, conn connection, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	r, err := setup.Check(ctx, conn.Client, conn.Address, conn.Namespace, workflows.SearchAttributes())
	switch {
	case err != nil && setup.Refused(err):
		logger.Warn("could not check the namespace's search attributes: this identity may not use the operator service; "+
			"rotations fail if they are missing (check with `keyturn setup --check` as an operator)", "namespace", conn.Namespace, "error", err)
		return nil
	case err != nil:
		return err
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("%w\nthe worker did not start", err)
	}
	return nil
}
