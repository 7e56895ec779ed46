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
//
// In the revoke gate (step revoke_gate) abort and give-up stop the gate without revoking
// and without rolling back (the new version is current), retry-now checks again at once,
// and revoke-now, which only applies there, revokes whoever still uses the old version.
var signalCmds = map[string]struct {
	short, signal string
	outstanding   bool
	gateOnly      bool
}{
	"abort":      {"Abort a rotation before its revoke: the previous version becomes current again and the new one is revoked (in the revoke gate: stop without revoking or rolling back)", workflows.SignalAbort, false, false},
	"skip-grace": {"End a rotation's grace period now and revoke the previous version", workflows.SignalSkipGrace, false, false},
	"retry-now":  {"Retry an outstanding revoke or rollback at once (after fixing the target, say); in the revoke gate, check again at once", workflows.SignalRetryNow, true, false},
	"give-up":    {"Stop retrying an outstanding revoke or rollback: the rotation ends, saying what may still work (in the revoke gate: stop without revoking)", workflows.SignalGiveUp, true, false},
	"revoke-now": {"Revoke the previous version now while the revoke gate waits for it to be unused or holds its revoke, whoever still uses it", workflows.SignalRevokeNow, false, true},
}

// newSignalCmd builds one of signalCmds.
func newSignalCmd(g *globals, name string) *cobra.Command {
	short, signal, outstanding, gateOnly := signalCmds[name].short, signalCmds[name].signal, signalCmds[name].outstanding, signalCmds[name].gateOnly
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
			gate := d.Step == workflows.StepRevokeGate
			switch {
			case gateOnly && !gate:
				return fmt.Errorf("the rotation of %s is at step %s: %s only applies while its revoke gate waits or holds", id, d.Step, name)
			case gate && signal == workflows.SignalSkipGrace:
				return fmt.Errorf("the rotation of %s is past its grace period, in the revoke gate: use `keyturn revoke-now %s` to revoke whoever still uses the old version", id, id)
			case gate:
				// Every other signal means something in the gate (see signalCmds).
			case outstanding && d.Outstanding == nil:
				return fmt.Errorf("the rotation of %s is at step %s with nothing outstanding: %s only applies while a revoke or rollback is being retried", id, d.Step, name)
			case !outstanding && (d.Step == workflows.StepRevoke || d.Step == workflows.StepRollback || d.Outstanding != nil ||
				(d.Step == workflows.StepPurge && signal == workflows.SignalAbort)):
				return fmt.Errorf("the rotation of %s is at step %s: %s only applies before the previous version is revoked", id, d.Step, name)
			}
			if err := c.SignalWorkflow(cmd.Context(), workflows.RotateWorkflowID(id), "", signal, workflows.OperatorSignal{By: whoami()}); err != nil {
				return fmt.Errorf("signal %s to the rotation of %s: %w (is a rotation of it running? `keyturn status %s`)", signal, id, err, id)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sent %s to the rotation of %s\n", signal, id)
			return nil
		},
	}
}
