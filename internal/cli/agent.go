package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keyturn/keyturn/internal/agent"
)

func newAgentCmd(g *globals) *cobra.Command {
	var (
		configPath string
		once       bool
		check      bool
	)
	cmd := &cobra.Command{
		Use:   "agent -c FILE",
		Short: "Render secrets to files for programs that are not Go; re-render and reload after each rotation",
		Long: `keyturn agent renders the current version of chosen secrets to files (raw, env, json,
pem or a Go template), polls the store, re-renders a file when a rotation promotes a new
version, and then runs a reload command or signals a process, as Vault Agent's templates
do. It needs only read access to the store. Files are written atomically with mode 0600
unless the template says otherwise; when the store cannot be read they are left as they
are and the log says how stale they are.

A reload stays pending on disk (a marker beside each file) until it succeeds, so a failed
reload is retried at later polls, by a restarted agent and by the next --once. A reload
command does not inherit the agent's VAULT_*, AWS_* or KEYTURN_* variables.

Without --once it runs until SIGINT or SIGTERM. With --once it renders, reloads if a file
changed or a reload is still pending, and exits 1 if any file could not be rendered or
the reload failed (for init containers and cron). The file's format: docs/agent.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath == "" {
				return fmt.Errorf("no agent configuration: pass -c FILE (see docs/agent.md for its format)")
			}
			cfg, err := agent.Load(configPath)
			if err != nil {
				return err
			}
			if check {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %d template(s), no problems\n", configPath, len(cfg.Templates))
				return nil
			}
			ctx := cmd.Context()
			src, err := agent.OpenSource(ctx, cfg.Store)
			if err != nil {
				return fmt.Errorf("open the %s store: %w", cfg.Store.Type, err)
			}
			defer src.Close()
			a, err := agent.New(cfg, src, g.logger(cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			if once {
				return a.Once(ctx)
			}
			return a.Run(ctx)
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", envOr("KEYTURN_AGENT_CONFIG", ""), "the agent's YAML file (KEYTURN_AGENT_CONFIG)")
	cmd.Flags().BoolVar(&once, "once", false, "render once and exit; exit 1 if a file could not be rendered or the reload (new or pending) failed")
	cmd.Flags().BoolVar(&check, "check", false, "only validate the file and exit")
	return cmd
}
