package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keyturn/keyturn/internal/config"
)

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with the inventory file"}
	cmd.AddCommand(&cobra.Command{
		Use:   "validate",
		Short: "Check an inventory file and report every problem with its line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.inventory == "" {
				return fmt.Errorf("no inventory: pass -f FILE or set KEYTURN_INVENTORY")
			}
			inv, err := config.Load(g.inventory)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d secret(s), no problems\n", g.inventory, len(inv.Secrets))
			return nil
		},
	})
	return cmd
}
