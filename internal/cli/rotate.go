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
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/keyturn/keyturn/internal/config"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

func newRotateCmd(g *globals) *cobra.Command {
	var (
		wait   bool
		grace  time.Duration
		reason string
	)
	cmd := &cobra.Command{
		Use:   "rotate <secret-id>",
		Short: "Start a rotation of one secret (create, test, promote, grace, revoke)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := secret.ID(args[0])
			if err := id.Validate(); err != nil {
				return err
			}
			kind, err := g.kindOf(id)
			if err != nil {
				return err
			}
			in := workflows.RotateInput{SecretID: id, Reason: reason, RequestedBy: whoami()}
			if cmd.Flags().Changed("grace") {
				in.Grace = &grace
			}
			if err := in.Validate(); err != nil {
				return err
			}
			c, err := g.dial(g.logger(cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			defer c.Close()
			run, err := c.ExecuteWorkflow(cmd.Context(), workflows.RotateStartOptions(id, kind), workflows.RotateWorkflowName, in)
			var started *serviceerror.WorkflowExecutionAlreadyStarted
			if errors.As(err, &started) {
				return fmt.Errorf("a rotation of %s is already running (run %s): watch it with `keyturn status %s`", id, started.RunId, id)
			}
			if err != nil {
				return fmt.Errorf("start rotation of %s: %w", id, err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "started rotation of %s (workflow %s, run %s)\n", id, run.GetID(), run.GetRunID())
			if !hasWorker(cmd.Context(), c) {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: no worker is polling task queue %q: the rotation waits until `keyturn worker` or `keyturn dev` runs\n", workflows.TaskQueue)
			}
			if !wait {
				return nil
			}
			var res workflows.RotateResult
			err = run.Get(cmd.Context(), &res)
			if cmd.Context().Err() != nil {
				return fmt.Errorf("stopped waiting; the rotation goes on: `keyturn status %s`", id)
			}
			if err != nil {
				if details, ok := resultFromError(err); ok {
					printResult(out, details)
				}
				return rootMessage(err)
			}
			printResult(out, res)
			if res.Outcome != workflows.OutcomeRotated {
				return fmt.Errorf("rotation of %s ended %s", id, res.Outcome)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the rotation to finish and print its result")
	cmd.Flags().DurationVar(&grace, "grace", 0, "override the inventory's grace period (e.g. 0s, 10m)")
	cmd.Flags().StringVar(&reason, "reason", "", "why this rotation was started (recorded in the workflow input)")
	return cmd
}

// kindOf looks the secret up in the inventory when one is given, so a typo is reported
// before anything starts. Without an inventory the worker's own check applies.
func (g *globals) kindOf(id secret.ID) (string, error) {
	if g.inventory == "" {
		return "", nil
	}
	inv, err := config.Load(g.inventory)
	if err != nil {
		return "", err
	}
	s, ok := inv.Lookup(id)
	if !ok {
		return "", fmt.Errorf("secret %q is not in inventory %s: check the id (`keyturn config validate -f %s` lists problems)", id, g.inventory, g.inventory)
	}
	return s.Kind, nil
}

func whoami() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// resultFromError extracts the RotateResult a failed or cancelled rotation attaches.
func resultFromError(err error) (workflows.RotateResult, bool) {
	var res workflows.RotateResult
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.HasDetails() && appErr.Details(&res) == nil {
		return res, true
	}
	var canceled *temporal.CanceledError
	if errors.As(err, &canceled) && canceled.HasDetails() && canceled.Details(&res) == nil {
		return res, true
	}
	return res, false
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
	if r.Error != "" {
		fmt.Fprintf(w, "error:    %s\n", r.Error)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tDURATION\tERROR")
	for _, s := range r.Steps {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Step, s.Duration.Round(time.Millisecond), s.Error)
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
// records: a role, an access key ID, an API key ID or a certificate serial.
func handleOf(md map[string]string) string {
	for _, k := range []string{"role", "access_key_id", "key_id", "serial"} {
		if v := md[k]; v != "" {
			return k + " " + v
		}
	}
	return "no handle recorded"
}
