package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

func newRotateCmd(g *globals) *cobra.Command {
	var (
		wait   bool
		attach bool
		grace  time.Duration
		reason string
	)
	cmd := &cobra.Command{
		Use:   "rotate <secret-id>",
		Short: "Start a rotation of one secret (create, test, promote, grace, revoke)",
		Long: "Starts a rotation of one secret of the inventory (-f, KEYTURN_INVENTORY, or the one the running\n" +
			"`keyturn dev` serves); an ID that is not there starts nothing. If a rotation of the secret is\n" +
			"already running, it says so and exits 1; --attach follows the running one instead.\n" +
			"--wait waits for the end, prints each step, and exits 0 only if the secret was rotated.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := secret.ID(args[0])
			if err := id.Validate(); err != nil {
				return err
			}
			in := workflows.RotateInput{SecretID: id, Reason: reason, RequestedBy: whoami(), Generation: workflows.RotateGeneration}
			if cmd.Flags().Changed("grace") {
				in.Grace = &grace
			}
			if err := in.Validate(); err != nil {
				return err
			}
			if err := workflows.CheckReason(reason); err != nil {
				return err
			}
			inv, err := g.requireInventory("keyturn rotate")
			if err != nil {
				return err
			}
			s, err := lookupSecret(inv, id)
			if err != nil {
				return err
			}
			c, err := g.dial(g.logger(cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			defer c.Close()
			out := cmd.OutOrStdout()
			run, err := c.ExecuteWorkflow(cmd.Context(), workflows.RotateStartOptions(id, s.Kind), workflows.RotateWorkflowName, in)
			if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
				d, derr := describeRotation(cmd.Context(), c, id, g.runPrefix(cmd))
				if derr != nil {
					return fmt.Errorf("a rotation of %s is already running, and it could not be described: %w", id, derr)
				}
				if !attach {
					kt := g.runPrefix(cmd)
					return fmt.Errorf("a rotation of %s is already running: %s; nothing was started (watch it with `%s status %s`, follow it with `%s rotate %s --attach --wait`)", id, runningSummary(d), kt, id, kt, id)
				}
				if cmd.Flags().Changed("grace") || cmd.Flags().Changed("reason") {
					fmt.Fprintf(cmd.ErrOrStderr(), "note: --grace and --reason do not apply to the rotation already running; it keeps its own\n")
				}
				fmt.Fprintf(out, "attached to the rotation of %s already running: %s\n", id, runningSummary(d))
				run = c.GetWorkflow(cmd.Context(), workflows.RotateWorkflowID(id), d.RunID)
			} else if err != nil {
				return fmt.Errorf("start rotation of %s: %w", id, err)
			} else {
				fmt.Fprintf(out, "started rotation of %s (workflow %s, run %s)\n", id, run.GetID(), run.GetRunID())
			}
			if !hasWorker(cmd.Context(), c) {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: no worker is polling task queue %q: the rotation waits until `keyturn worker` or `keyturn dev` runs\n", workflows.TaskQueue)
			}
			if !wait {
				return nil
			}
			return waitForRotation(cmd.Context(), c, run, id, out, g.runPrefix(cmd))
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the rotation to finish and print its result; exit 0 only if it rotated")
	cmd.Flags().BoolVar(&attach, "attach", false, "if a rotation of the secret is already running, follow it instead of failing")
	cmd.Flags().DurationVar(&grace, "grace", 0, "override the inventory's grace period (e.g. 0s, 10m)")
	cmd.Flags().StringVar(&reason, "reason", "", "why this rotation was started (recorded in the workflow input)")
	return cmd
}

// runningSummary says which run is going on, since when and what it is doing.
func runningSummary(d rotationDetail) string {
	msg := fmt.Sprintf("run %s, started %s, step %s", d.RunID, d.Started.Local().Format(time.DateTime), d.Step)
	if d.Result != nil && d.Result.Outstanding != nil {
		msg += fmt.Sprintf(", %s outstanding after %d attempt(s)", d.Result.Outstanding.What, d.Result.Outstanding.Attempts)
	}
	return msg
}

// outstandingPoll is how often `rotate --wait` asks a running rotation whether a revoke or
// rollback has become outstanding: then it stops waiting and says so, since the rotation
// may keep trying for hours.
const outstandingPoll = 2 * time.Second

// waitForRotation waits for the rotation's end and prints its result; it returns an error
// unless the secret was rotated.
func waitForRotation(ctx context.Context, c client.Client, run client.WorkflowRun, id secret.ID, out io.Writer, kt string) error {
	done := make(chan error, 1)
	var res workflows.RotateResult
	go func() { done <- run.Get(ctx, &res) }()
	tick := time.NewTicker(outstandingPoll)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if ctx.Err() != nil {
				return fmt.Errorf("stopped waiting; the rotation goes on: `%s status %s`", kt, id)
			}
			if err != nil {
				if details, ok := activities.DetailsOf[workflows.RotateResult](err); ok {
					printResult(out, details)
				}
				return rootMessage(err)
			}
			printResult(out, res)
			if res.Outcome != workflows.OutcomeRotated {
				return fmt.Errorf("rotation of %s ended %s", id, res.Outcome)
			}
			return nil
		case <-tick.C:
			st, err := queryStatus(ctx, c, workflows.RotateWorkflowID(id), run.GetRunID())
			if err == nil && st.Outcome == workflows.OutcomeRevokeHeld && st.RevokeGate != nil {
				// A held revoke waits for a consumer, which may take days.
				printResult(out, st.RotateResult)
				seen := "still in use (" + workflows.DescribeUses(st.RevokeGate.Uses, 3) + ")"
				if len(st.RevokeGate.Uses) == 0 {
					seen = "not yet shown idle" // the check failed, or idle could not count yet
				}
				return fmt.Errorf("rotation of %s is %s: the new version is current, and the previous one is %s, so its revoke is held until it is idle. Stopped waiting: `%s status %s` names the uses, `%s revoke-now %s` revokes anyway",
					id, st.Outcome, seen, kt, id, kt, id)
			}
			if err != nil || st.Outstanding == nil {
				continue
			}
			printResult(out, st.RotateResult)
			o := st.Outstanding
			return fmt.Errorf("rotation of %s is %s: %s failed (%s); it is retried until it succeeds, next at %s. Stopped waiting: `%s status %s` shows it, `%s retry-now %s` retries at once",
				id, st.Outcome, o.What, o.LastError, o.NextAttempt.Local().Format(time.TimeOnly), kt, id, kt, id)
		}
	}
}

func whoami() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// rootMessage strips the SDK's wrapping ("workflow execution error (type: ...)") so the
// user reads what went wrong.
func rootMessage(err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return errors.New(appErr.Message())
	}
	var canceled *temporal.CanceledError
	if errors.As(err, &canceled) {
		return errors.New("cancelled")
	}
	return err
}

func printResult(w io.Writer, r workflows.RotateResult) {
	fmt.Fprintf(w, "secret:   %s\n", r.SecretID)
	if r.Outcome != "" {
		fmt.Fprintf(w, "outcome:  %s\n", r.Outcome)
	}
	if r.NewVersion != nil {
		fmt.Fprintf(w, "new:      version %d (%s)\n", r.NewVersion.Number, handleOf(r.NewVersion.Metadata))
	}
	if r.PreviousVersion != nil {
		fmt.Fprintf(w, "previous: version %d (%s)\n", r.PreviousVersion.Number, handleOf(r.PreviousVersion.Metadata))
	} else if r.NewVersion != nil {
		fmt.Fprintln(w, "previous: none (the secret's first version: nothing to revoke)")
	}
	if r.Rollback != nil {
		fmt.Fprintf(w, "kept:     %s\n", r.Rollback.Kept())
	}
	if g := r.RevokeGate; g != nil {
		fmt.Fprintf(w, "gate:     %s\n", gateOutcome(*g))
	}
	if r.Error != "" {
		fmt.Fprintf(w, "error:    %s\n", r.Error)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tDURATION\tERROR")
	for _, s := range r.Steps {
		step := s.Step
		if s.Attempts > 1 {
			step = fmt.Sprintf("%s (attempt %d)", s.Step, s.Attempts)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", step, s.Duration.Round(time.Millisecond), s.Error)
	}
	_ = tw.Flush()
}

// hasWorker reports whether any worker polls Keyturn's task queue. When the question
// cannot be answered it says yes: the warning is a hint, not a check.
func hasWorker(ctx context.Context, c client.Client) bool {
	resp, err := c.DescribeTaskQueue(ctx, workflows.TaskQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
	if err != nil {
		return true
	}
	return len(resp.GetPollers()) > 0
}

// handleOf names a version's credential on its target by the first handle its kind
// records: a role, an access key ID, an API key ID, a certificate serial, a Redis
// password's ID (the user is the same for every version) or a MariaDB account.
func handleOf(md map[string]string) string {
	for _, k := range []string{"role", "access_key_id", "key_id", "serial", "password_id", "user"} {
		if v := md[k]; v != "" {
			return k + " " + v
		}
	}
	return "no handle recorded"
}

// gateOutcome says in one line what the revoke gate saw and did, for a rotation's
// detail: how it ended, or where it stands while it waits.
func gateOutcome(g workflows.RevokeGateStatus) string {
	uses := fmt.Sprintf("%d use(s) open", len(g.Uses))
	if len(g.Uses) > 0 {
		uses += ": " + workflows.DescribeUses(g.Uses, 3)
	}
	switch g.State {
	case workflows.GateWaiting:
		return fmt.Sprintf("waiting since %s, %s", g.Since.Local().Format(time.DateTime), uses)
	case workflows.GateHeld:
		return fmt.Sprintf("held since %s, %s", g.HeldSince.Local().Format(time.DateTime), uses)
	case workflows.GateIdle:
		return fmt.Sprintf("the previous version was idle after %d check(s); revoked", g.Checks)
	case workflows.GateRevokedAnyway:
		return fmt.Sprintf("max wait passed with %s; revoked anyway, as the policy says", uses)
	case workflows.GateRevokedByOperator:
		return fmt.Sprintf("revoke-now sent by an operator with %s; revoked", uses)
	case workflows.GateStopped:
		return fmt.Sprintf("stopped by an operator or a cancellation with %s: the previous version was NOT revoked and still works", uses)
	case workflows.GateUnsupported:
		return "the kind could not tell whether the previous version was in use; revoked after the grace period"
	}
	return g.State
}
