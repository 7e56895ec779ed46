package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/internal/schedsource"
	"github.com/keyturn/keyturn/schedules"
	"github.com/keyturn/keyturn/workflows"
)

// ExitPending is keyturn diff's exit code when schedules differ from the inventory: not
// a failure, but a signal a CI job can act on.
const ExitPending = 2

// exitError is an error that asks for its own exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// ExitCode is the code the error asks for.
func (e *exitError) ExitCode() int { return e.code }

// ExitCode is the process exit code for what a command returned: 0 for no error, the
// code an error asks for (keyturn diff: ExitPending when changes are pending), 1 for any
// other error.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var coded interface{ ExitCode() int }
	if errors.As(err, &coded) {
		return coded.ExitCode()
	}
	return 1
}

func newApplyCmd(g *globals) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Make Temporal's schedules match the inventory: print the plan, then create, update and delete",
		Long: `Reconcile the inventory's schedules into Temporal Schedules. Every secret with a
schedule gets keyturn/<secret-id>; every certificate also gets keyturn-renew/<secret-id>,
an hourly renewal check. apply prints the plan (what it would create, update and delete,
and why), asks for confirmation unless --yes is given, then carries it out. Only schedules
whose ID starts with keyturn/ or keyturn-renew/ are touched. Paused schedules stay paused,
with their note. Applying twice changes nothing the second time.

An invalid inventory or cron spec is refused, with its file:line, before anything is sent
to Temporal.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			inv, err := g.scheduleInventory()
			if err != nil {
				return err
			}
			c, ns, err := g.dialSchedules(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			out := cmd.OutOrStdout()
			plan, err := schedules.Plan(cmd.Context(), c, ns, schedsource.From(inv))
			if err != nil {
				return err
			}
			printSchedulePlan(out, plan)
			n := plan.Pending()
			if n == 0 {
				fmt.Fprintln(out, "In sync: nothing to apply.")
				return nil
			}
			if !yes {
				ok, err := confirm(cmd.InOrStdin(), out, fmt.Sprintf("Apply these %d change(s) to Temporal? Type yes: ", n))
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("not applied: nothing changed (answer yes, or pass --yes)")
				}
			}
			// The audit trail is opened first: a trail that cannot be written changes nothing.
			trail, err := g.auditLog(false)
			if err != nil {
				return err
			}
			defer func() { _ = trail.Sink.Close() }()
			made, err := schedules.ApplyMade(cmd.Context(), c, ns, plan)
			if rerr := recordApplied(cmd.Context(), trail, made); rerr != nil {
				err = errors.Join(err, fmt.Errorf("%d change(s) were applied, but their audit records were not written: %w", len(made), rerr))
			}
			if err != nil {
				return fmt.Errorf("apply schedules: %w", err)
			}
			fmt.Fprintf(out, "Applied: %d created, %d updated, %d deleted, %d unchanged.\n",
				plan.Count(schedules.Create), plan.Count(schedules.Update), plan.Count(schedules.Delete), plan.Count(schedules.Unchanged))
			if !hasWorker(cmd.Context(), c) {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: no worker is polling task queue %q: scheduled runs wait until `keyturn worker` or `keyturn dev` runs\n", workflows.TaskQueue)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "apply without asking")
	return cmd
}

func newDiffCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "diff -f FILE",
		Short: "Print what keyturn apply would change in Temporal's schedules, and change nothing",
		Long: `Print the plan keyturn apply would carry out, and change nothing.

Exit codes: 0 when Temporal's schedules match the inventory, 2 when changes are pending
(the plan is printed; run keyturn apply), 1 on any error (an invalid inventory, Temporal
unreachable). A CI job can run it to detect schedules that drifted or were not applied.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			inv, err := g.scheduleInventory()
			if err != nil {
				return err
			}
			c, ns, err := g.dialSchedules(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			plan, err := schedules.Plan(cmd.Context(), c, ns, schedsource.From(inv))
			if err != nil {
				return err
			}
			printSchedulePlan(cmd.OutOrStdout(), plan)
			if n := plan.Pending(); n > 0 {
				return &exitError{code: ExitPending, err: fmt.Errorf("%d schedule change(s) pending: run `keyturn apply -f %s`", n, g.inventory)}
			}
			fmt.Fprintln(cmd.OutOrStdout(), "In sync: Temporal's schedules match the inventory.")
			return nil
		},
	}
}

// scheduleInventory loads and validates the inventory, so a bad file or spec is refused
// with its place before anything reaches Temporal.
func (g *globals) scheduleInventory() (*inventory.Inventory, error) {
	if g.inventory == "" {
		return nil, fmt.Errorf("no inventory: pass -f FILE or set KEYTURN_INVENTORY")
	}
	inv, err := inventory.Load(g.inventory)
	if err != nil {
		return nil, fmt.Errorf("%w\nnothing was sent to Temporal; fix the inventory and run again", err)
	}
	return inv, nil
}

// dialSchedules connects to Temporal and names the namespace it connected to, which
// schedule updates must carry.
func (g *globals) dialSchedules(cmd *cobra.Command) (client.Client, string, error) {
	conn, err := g.connect(g.logger(cmd.ErrOrStderr()))
	if err != nil {
		return nil, "", err
	}
	return conn.Client, conn.Namespace, nil
}

// printSchedulePlan prints one line per schedule, then the counts.
func printSchedulePlan(w io.Writer, plan schedules.Changes) {
	for _, c := range plan {
		fmt.Fprintln(w, c.String())
	}
	fmt.Fprintf(w, "Plan: %s.\n", plan.Summary())
}

// confirm asks a question on w and reads the answer from r: only yes (or y) agrees.
func confirm(r io.Reader, w io.Writer, question string) (bool, error) {
	fmt.Fprint(w, question)
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("read the answer: %w", err)
	}
	fmt.Fprintln(w)
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "yes" || answer == "y", nil
}

// recordApplied writes one audit record per change an apply made, in its secret's
// chain. Each apply is its own event (applying twice changes twice), so the records'
// identity is this apply's own, random, ID and the schedule.
func recordApplied(ctx context.Context, trail *audit.Log, made schedules.Changes) error {
	applyID := uuid.NewString()
	now := time.Now()
	for _, ch := range made {
		handles := map[string]string{"schedule": ch.ScheduleID, "action": string(ch.Action)}
		if ch.Desired != nil {
			handles["spec"] = ch.Desired.Describe()
		}
		r := audit.Record{
			ID: audit.EventID("apply", applyID, ch.ScheduleID), Time: now, Event: audit.EventScheduleApplied,
			Actor: audit.Actor{Type: audit.ActorOperator, Name: whoami()}, Reason: strings.Join(ch.Reasons, "; "),
			SecretID: ch.SecretID, Handles: handles,
		}
		if _, err := trail.Append(ctx, r); err != nil {
			return err
		}
	}
	return nil
}
