package cli

import (
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/keyturn/keyturn/internal/durtext"
	"github.com/keyturn/keyturn/internal/inventory"
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
			inv, err := inventory.Load(g.inventory)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			warnings := inv.Warnings()
			fmt.Fprintf(out, "%s: %d secret(s), no problems, %d warning(s)\n", g.inventory, len(inv.Secrets), len(warnings))
			for _, w := range warnings {
				fmt.Fprintf(out, "  %s\n", w)
			}
			printAgePolicies(out, inv)
			return nil
		},
	})
	return cmd
}

// logWarnings logs the inventory's warnings (see inventory.Inventory.Warnings) at the start
// of a command that serves it: they never stop it, but whoever starts it should see them.
func logWarnings(logger *slog.Logger, inv *inventory.Inventory) {
	for _, w := range inv.Warnings() {
		logger.Warn("inventory warning", "warning", w.String())
	}
}

// printAgePolicies shows each secret's owner and the maximum age in force, with where it
// comes from: a derived one is only visible here and in `keyturn status`.
func printAgePolicies(w io.Writer, inv *inventory.Inventory) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SECRET\tKIND\tOWNER\tMAX AGE\tFROM")
	for _, s := range inv.Secrets {
		p := s.AgePolicy()
		maxAge, why := "none", "no max_age, schedule or certificate lifetime: never overdue by age"
		if p.MaxAge > 0 {
			maxAge, why = durtext.Day(p.MaxAge), p.Why
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.Kind, orDash(s.Owner), maxAge, why)
	}
	_ = tw.Flush()
}

// orDash is v, or "-" for a column that has no value.
func orDash(v string) string {
	if v == "" {
		return "-"
	}
	return v
}
