package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// finishIncident follows an incident to its end, prints its report and returns an error
// (exit status 1) for anything the operator must act on: the incident failed, the worker
// resolved another scope than the plan shown, or a secret needs a human.
func finishIncident(ctx context.Context, c client.Client, run client.WorkflowRun, out io.Writer, every time.Duration, prefix string) error {
	rep, runErr := followIncident(ctx, c, run, out, every)
	printReport(out, rep, prefix)
	return incidentVerdict(rep, runErr)
}

// incidentVerdict is the exit status of an incident the CLI followed: an error when it
// failed, when the worker's scope was not the plan shown, or when any secret's rotation
// ended in a state that needs a human, even if the workflow itself completed.
func incidentVerdict(rep workflows.IncidentReport, runErr error) error {
	var problems []string
	if runErr != nil {
		problems = append(problems, rootMessage(runErr).Error())
	}
	if !rep.ScopeDiff.Empty() {
		problems = append(problems, "the worker's scope was not the plan shown (see above)")
	}
	if n := max(rep.NeedsHuman, len(rep.NeedingHuman())); n > 0 {
		problems = append(problems, fmt.Sprintf("%d secret(s) need a human (see above)", n))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// followIncident shows the progress until the incident ends and returns its report,
// taken from the failure's details when it failed.
func followIncident(ctx context.Context, c client.Client, run client.WorkflowRun, out io.Writer, every time.Duration) (workflows.IncidentReport, error) {
	done := make(chan struct{})
	var rep workflows.IncidentReport
	var runErr error
	go func() {
		defer close(done)
		runErr = run.GetWithOptions(ctx, &rep, client.WorkflowRunGetOptions{})
	}()
	last := ""
	warned := false
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-done:
			if r, ok := activities.DetailsOf[workflows.IncidentReport](runErr); ok {
				rep = r
			}
			return rep, runErr
		case <-tick.C:
			val, err := c.QueryWorkflow(ctx, run.GetID(), "", workflows.QueryProgress)
			if err != nil {
				continue
			}
			var p workflows.IncidentProgress
			if val.Get(&p) != nil {
				continue
			}
			if !warned && !p.ScopeDiff.Empty() {
				printScopeDiff(out, p.ScopeDiff)
				warned = true
			}
			if line := progressLine(p); line != last {
				fmt.Fprintln(out, line)
				last = line
			}
		case <-ctx.Done():
			return rep, fmt.Errorf("stopped watching; the incident goes on")
		}
	}
}

func progressLine(p workflows.IncidentProgress) string {
	return fmt.Sprintf("[%s] %d/%d done: %d contained, %d rotated, %d failed", p.Phase, p.Done, p.Total, p.Contained, p.Rotated, p.Failed)
}

// printScopeDiff says how the worker's scope differs from the plan the CLI showed.
func printScopeDiff(w io.Writer, d workflows.ScopeDiff) {
	if len(d.Unplanned) > 0 {
		fmt.Fprintf(w, "WARNING: the worker's inventory put %s in scope, which the plan shown did not have; the incident works on them too\n", idList(d.Unplanned))
	}
	if len(d.Unmatched) > 0 {
		fmt.Fprintf(w, "WARNING: the plan shown had %s, which the worker's inventory does not put in scope; the incident does NOT touch them: compare the inventories (the worker's is the truth)\n", idList(d.Unmatched))
	}
}

func idList(ids []secret.ID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return strings.Join(s, ", ")
}

// printReport prints an incident's report; prefix is how to run keyturn in the commands
// it prints.
func printReport(w io.Writer, rep workflows.IncidentReport, prefix string) {
	fmt.Fprintln(w, progressLine(rep.IncidentProgress))
	if rep.AllContainedMs > 0 {
		fmt.Fprintf(w, "every old credential refused after %s\n", time.Duration(rep.AllContainedMs)*time.Millisecond)
	}
	if rep.AllRotatedMs > 0 {
		fmt.Fprintf(w, "every new credential tested and promoted after %s\n", time.Duration(rep.AllRotatedMs)*time.Millisecond)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SECRET\tOUTCOME\tCONTAINED\tROTATED\tERROR")
	for _, s := range rep.Secrets {
		sup := ""
		if s.Superseded {
			sup = " (stopped a rotation in flight)"
		}
		fmt.Fprintf(tw, "%s\t%s%s\t%s\t%s\t%s\n", s.ID, s.Outcome, sup, msOrDash(s.ContainedMs), msOrDash(s.RotatedMs), s.Error)
	}
	_ = tw.Flush()
	if rep.Unlisted > 0 {
		// A large report lists only secrets that need a human, as many as a page holds.
		unlistedNeeding := max(0, rep.NeedsHuman-len(rep.NeedingHuman()))
		fmt.Fprintf(w, "%d more secrets are not listed (a report lists at most one page): %d rotated as planned, %d needing a human; their records: %s\n",
			rep.Unlisted, rep.Unlisted-unlistedNeeding, unlistedNeeding, withPrefix("keyturn incident evidence "+rep.IncidentID, prefix))
	}
	printEnded(w, rep.Secrets)
	printScopeDiff(w, rep.ScopeDiff)
	printSchedules(w, rep.Schedules, prefix)
	if needs := rep.NeedingHuman(); len(needs) > 0 {
		fmt.Fprintf(w, "NEEDS A HUMAN: %d secret(s):\n", max(rep.NeedsHuman, len(needs)))
		for _, s := range needs {
			fmt.Fprintf(w, "  %s (%s): %s\n", s.ID, s.Outcome, humanAction(s, prefix))
		}
	}
}

// printSchedules names the schedules the incident paused, those it left alone, and the
// command that resumes what it paused.
func printSchedules(w io.Writer, s workflows.PausedSchedules, prefix string) {
	if len(s.Paused) > 0 {
		fmt.Fprintf(w, "schedules paused by the incident: %s\n", scheduleList(s.Paused, s.PausedCount))
	}
	if len(s.KeptPaused) > 0 {
		fmt.Fprintf(w, "schedules paused before the incident, for another reason, left as they are: %s\n", scheduleList(s.KeptPaused, s.KeptPausedCount))
	}
	if len(s.Resumed) > 0 {
		fmt.Fprintf(w, "schedules resumed: %s\n", scheduleList(s.Resumed, s.ResumedCount))
	}
	if len(s.LeftPaused) > 0 {
		fmt.Fprintf(w, "schedules left paused (paused again with another note meanwhile): %s\n", scheduleList(s.LeftPaused, s.LeftPausedCount))
	}
	if s.PauseFailed {
		fmt.Fprintf(w, "pausing the schedules failed part way: some may be paused with the incident's note without being listed here\n")
	}
	if s.ResumeCommand != "" {
		fmt.Fprintf(w, "resume the schedules the incident paused (and only those) when it is safe:\n  %s\n", withPrefix(s.ResumeCommand, prefix))
	}
}

// scheduleList joins a report's list of schedule IDs; count is the list's full length
// when the report cut it (0 otherwise).
func scheduleList(ids []string, count int) string {
	if count > len(ids) {
		return fmt.Sprintf("%d schedules, the first %d of them: %s", count, len(ids), strings.Join(ids, ", "))
	}
	return strings.Join(ids, ", ")
}

// withPrefix replaces the leading "keyturn" of a command with how this keyturn is run.
func withPrefix(command, prefix string) string {
	if prefix == "" {
		return command
	}
	return prefix + strings.TrimPrefix(command, "keyturn")
}

// humanAction says what to do about a secret the incident could not finish.
func humanAction(s workflows.SecretReport, prefix string) string {
	again := withPrefix(fmt.Sprintf("keyturn incident start --select id=%s --mode ... --reason ...", s.ID), prefix)
	status := withPrefix("keyturn status "+string(s.ID), prefix)
	switch s.Outcome {
	case workflows.OutcomeRevokeFailed:
		return fmt.Sprintf("a credential that should have been revoked may still be accepted by the target: the previous one after a rotation, or the new one after a rollback (the error says which; `%s` shows the versions and which is current). "+
			"Fix what the error names (often the target's admin access), then revoke it: `%s` (a new incident revokes every existing version)", status, again)
	case workflows.OutcomeFailed:
		return fmt.Sprintf("the rotation did not finish; its error says at which step (a failed plan changed nothing; a failed rollback may leave the target and the store disagreeing). "+
			"Read the rotation's history (workflow %s in the Web UI) and `%s`, fix the cause, then `%s`", workflows.RotateWorkflowID(s.ID), status, again)
	}
	return fmt.Sprintf("not rotated (%s); fix the cause, then `%s`", strings.TrimSpace(s.Error), again)
}

func msOrDash(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return (time.Duration(ms) * time.Millisecond).String()
}

func newIncidentStatusCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status <incident-id>",
		Short: "Show an incident's progress, or its report once it has ended",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.dial(g.logger(cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			defer c.Close()
			wid := workflows.IncidentWorkflowID(args[0])
			desc, err := c.DescribeWorkflowExecution(ctx, wid, "")
			if err != nil {
				return fmt.Errorf("incident %s: %w", args[0], err)
			}
			out := cmd.OutOrStdout()
			if desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				val, err := c.QueryWorkflow(ctx, wid, "", workflows.QueryProgress)
				if err != nil {
					return fmt.Errorf("query incident %s: %w", args[0], err)
				}
				var p workflows.IncidentProgress
				if err := val.Get(&p); err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(out, p)
				}
				fmt.Fprintln(out, progressLine(p))
				return nil
			}
			rep, runErr := endedIncidentReport(ctx, c, wid)
			if output == "json" {
				return writeJSON(out, rep)
			}
			fmt.Fprintf(out, "incident %s (%s, scope %s) by %s: %s\n", rep.IncidentID, rep.Mode, rep.Selector, rep.Operator, rep.Reason)
			printReport(out, rep, g.runPrefix(cmd))
			if runErr != nil {
				return rootMessage(runErr)
			}
			if n := max(rep.NeedsHuman, len(rep.NeedingHuman())); n > 0 {
				return fmt.Errorf("%d secret(s) need a human (see above)", n)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

// endedIncidentReport is the report of an incident that has ended, taken from the
// failure's details when it failed (runErr is then that failure).
func endedIncidentReport(ctx context.Context, c client.Client, wid string) (rep workflows.IncidentReport, runErr error) {
	runErr = c.GetWorkflow(ctx, wid, "").Get(ctx, &rep)
	if r, ok := activities.DetailsOf[workflows.IncidentReport](runErr); ok {
		rep = r
	}
	return rep, runErr
}

// printEnded names the sessions containment ended, per secret: an incident skips the
// revoke gate, so these are the consumers it cut off (they must reconnect with the new
// version).
func printEnded(w io.Writer, secrets []workflows.SecretReport) {
	for _, s := range secrets {
		if len(s.Ended) == 0 {
			continue
		}
		fmt.Fprintf(w, "sessions ended by containing %s:\n", s.ID)
		for _, line := range s.Ended {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
}
