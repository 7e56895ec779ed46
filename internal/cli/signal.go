package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// signalCmds describes the commands that signal a running rotation: the first two act
// before the previous version is revoked, the last two only while a revoke or rollback
// is outstanding.
var signalCmds = map[string]struct {
	short, signal string
	outstanding   bool
}{
	"abort":      {"Abort a rotation before its revoke: the previous version becomes current again and the new one is revoked", workflows.SignalAbort, false},
	"skip-grace": {"End a rotation's grace period now and revoke the previous version", workflows.SignalSkipGrace, false},
	"retry-now":  {"Retry an outstanding revoke or rollback at once (after fixing the target, say)", workflows.SignalRetryNow, true},
	"give-up":    {"Stop retrying an outstanding revoke or rollback: the rotation ends, saying what may still work", workflows.SignalGiveUp, true},
}

// newSignalCmd builds one of signalCmds.
func newSignalCmd(g *globals, name string) *cobra.Command {
	short, signal, outstanding := signalCmds[name].short, signalCmds[name].signal, signalCmds[name].outstanding
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
			d, err := describeRotation(cmd.Context(), c, id, g.runPrefix(cmd))
			if err != nil {
				return err
			}
			if d.Status != "running" {
				return fmt.Errorf("the last rotation of %s is %s (step %s): there is nothing to %s", id, d.result(), d.Step, name)
			}
			switch {
			case outstanding && d.Outstanding == nil:
				return fmt.Errorf("the rotation of %s is at step %s with nothing outstanding: %s only applies while a revoke or rollback is being retried", id, d.Step, name)
			case !outstanding && (d.Step == workflows.StepRevoke || d.Step == workflows.StepRollback || d.Outstanding != nil ||
				(d.Step == workflows.StepPurge && signal == workflows.SignalAbort)):
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
