package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// newSignalCmd builds `keyturn abort` and `keyturn skip-grace`, which signal a rotation
// that is in its grace period.
func newSignalCmd(g *globals, name string) *cobra.Command {
	short := map[string]string{
		"abort":      "Abort a rotation in its grace period: the previous version becomes current again and the new one is revoked",
		"skip-grace": "End a rotation's grace period now and revoke the previous version",
	}[name]
	signal := map[string]string{"abort": workflows.SignalAbort, "skip-grace": workflows.SignalSkipGrace}[name]
	return &cobra.Command{
		Use:   name + " <secret-id>",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := secret.ID(args[0])
			if err := id.Validate(); err != nil {
				return err
			}
			c, err := g.dial(g.logger(cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			defer c.Close()
			// A signal the workflow can no longer act on would be accepted and ignored;
			// say so instead.
			d, err := describeRotation(cmd.Context(), c, id)
			if err != nil {
				return err
			}
			if d.Status != "running" {
				return fmt.Errorf("the last rotation of %s is %s (step %s): there is nothing to %s", id, d.Status, d.Step, name)
			}
			if d.Step == workflows.StepRevoke || d.Step == workflows.StepRollback {
				return fmt.Errorf("the rotation of %s is at step %s: %s only applies before the previous version is revoked", id, d.Step, name)
			}
			if err := c.SignalWorkflow(cmd.Context(), workflows.RotateWorkflowID(id), "", signal, nil); err != nil {
				return fmt.Errorf("signal %s to the rotation of %s: %w (is a rotation of it running? `keyturn status %s`)", signal, id, err, id)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sent %s to the rotation of %s\n", signal, id)
			return nil
		},
	}
}
