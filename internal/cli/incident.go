package cli

import (
	"bufio"
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
	"go.temporal.io/sdk/temporal"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

func newIncidentCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "incident",
		Short: "Contain or rotate every secret in a scope at once, when a credential may have leaked",
	}
	cmd.AddCommand(newIncidentStartCmd(g), newIncidentStatusCmd(g))
	return cmd
}

func newIncidentStartCmd(g *globals) *cobra.Command {
	var (
		selects  []string
		in       workflows.IncidentInput
		yes      bool
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "start --select SELECTOR --mode contain|rotate --reason TEXT",
		Short: "Start an incident: pause schedules, stop rotations in flight, contain or rotate each secret in scope",
		Long: "SELECTOR is a comma-separated list of id=<secret-id>, tag=<tag>, kind=<kind> and prefix=<id-prefix>;\n" +
			"a secret is in scope when it matches every criterion (any of the ids). --select may repeat.\n\n" +
			"contain: revoke every existing credential at once (database sessions ended), then issue, test and\n" +
			"  promote new ones. Consumers fail until they read the new credential: use it for a leak.\n" +
			"rotate: rotate with no grace period, then revoke the old credential.\n\n" +
			"Without --yes the plan is shown and you are asked to confirm. --dry-run shows the plan only.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			sel, err := parseSelectors(selects)
			if err != nil {
				return err
			}
			in.Selector = sel
			if in.IncidentID == "" {
				in.IncidentID = "inc-" + time.Now().UTC().Format("20060102-150405")
			}
			if in.Operator == "" {
				in.Operator = whoami()
			}
			dry := in.DryRun
			in.DryRun = false
			if err := in.Validate(); err != nil {
				return err
			}
			c, err := g.dial(g.logger(cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			defer c.Close()

			// A dry run first, always: it resolves the scope on the worker, so an empty or
			// unknown scope stops here with nothing changed.
			plan, err := runIncident(ctx, c, in, true)
			if err != nil {
				return err
			}
			printPlan(out, plan)
			if dry {
				fmt.Fprintln(out, "dry run: nothing was changed")
				return nil
			}
			if !yes {
				fmt.Fprintf(out, "Type the incident ID (%s) to %s these %d secret(s): ", in.IncidentID, in.Mode, len(plan.Plan))
				answer, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if strings.TrimSpace(answer) != in.IncidentID {
					return errors.New("not confirmed; nothing was changed")
				}
			}
			run, err := c.ExecuteWorkflow(ctx, incidentStartOptions(in.IncidentID, false), workflows.IncidentWorkflowName, in)
			if err != nil {
				return fmt.Errorf("start incident %s: %w", in.IncidentID, err)
			}
			fmt.Fprintf(out, "incident %s started (workflow %s); `keyturn incident status %s` shows it from anywhere\n", in.IncidentID, run.GetID(), in.IncidentID)
			return followIncident(ctx, c, run, out, interval)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&selects, "select", nil, "scope: id=..., tag=..., kind=..., prefix=... (comma-separated, criteria combine with AND)")
	f.StringVar(&in.Mode, "mode", workflows.ModeContain, "contain (revoke everything first) or rotate (grace 0, then revoke)")
	f.StringVar(&in.Reason, "reason", "", "why (required; recorded on every rotation the incident starts)")
	f.StringVar(&in.IncidentID, "id", "", "incident ID (default inc-<UTC time>)")
	f.StringVar(&in.Operator, "operator", "", "who runs the incident (default: the OS user)")
	f.BoolVar(&in.DryRun, "dry-run", false, "show the plan and change nothing")
	f.BoolVar(&yes, "yes", false, "do not ask for confirmation")
	f.BoolVar(&in.ResumeSchedules, "resume-schedules", false, "resume the paused schedules when the incident is done")
	f.IntVar(&in.Parallelism, "parallelism", 0, fmt.Sprintf("secrets worked on at once (default %d, at most %d)", workflows.DefaultIncidentParallelism, workflows.MaxIncidentParallelism))
	f.DurationVar(&interval, "progress-every", 500*time.Millisecond, "how often the live progress is refreshed")
	return cmd
}

// parseSelectors reads --select values into one selector.
func parseSelectors(values []string) (activities.Selector, error) {
	var s activities.Selector
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			key, val, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok || val == "" {
				return s, fmt.Errorf("--select %q: write key=value pairs: id=<secret-id>, tag=<tag>, kind=<kind> or prefix=<id-prefix>", part)
			}
			switch key {
			case "id":
				s.IDs = append(s.IDs, secret.ID(val))
			case "tag":
				s.Tags = append(s.Tags, val)
			case "kind":
				if s.Kind != "" && s.Kind != val {
					return s, fmt.Errorf("--select: two kinds (%s, %s) can never both match; start one incident per kind or select by tag", s.Kind, val)
				}
				s.Kind = val
			case "prefix":
				s.Prefix = val
			default:
				return s, fmt.Errorf("--select: unknown key %q; use id, tag, kind or prefix", key)
			}
		}
	}
	if s.Empty() {
		return s, errors.New("--select is required: name the scope by id=, tag=, kind= or prefix= (there is no select-all, on purpose)")
	}
	return s, nil
}

func incidentStartOptions(id string, dry bool) client.StartWorkflowOptions {
	wid := workflows.IncidentWorkflowID(id)
	summary := "Incident " + id
	if dry {
		wid += "/dry-run/" + time.Now().UTC().Format("150405.000")
		summary += " (dry run)"
	}
	return client.StartWorkflowOptions{
		ID:                       wid,
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes:    temporal.NewSearchAttributes(workflows.SearchAttrIncidentID.ValueSet(id)),
		StaticSummary:            summary,
	}
}

// runIncident runs a dry run and returns its plan.
func runIncident(ctx context.Context, c client.Client, in workflows.IncidentInput, dry bool) (workflows.IncidentReport, error) {
	in.DryRun = dry
	run, err := c.ExecuteWorkflow(ctx, incidentStartOptions(in.IncidentID, dry), workflows.IncidentWorkflowName, in)
	if err != nil {
		return workflows.IncidentReport{}, fmt.Errorf("plan incident %s: %w", in.IncidentID, err)
	}
	var rep workflows.IncidentReport
	if err := run.Get(ctx, &rep); err != nil {
		return rep, rootMessage(err)
	}
	return rep, nil
}

func printPlan(w io.Writer, rep workflows.IncidentReport) {
	fmt.Fprintf(w, "incident %s, mode %s, scope %s: %d secret(s)\n", rep.IncidentID, rep.Mode, rep.Selector, len(rep.Plan))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SECRET\tKIND\tSTORE\tTARGET")
	for _, p := range rep.Plan {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.ID, p.Kind, p.Store, p.Target)
	}
	_ = tw.Flush()
	if len(rep.Plan) > 0 {
		fmt.Fprintln(w, "for each secret:")
		for i, s := range rep.Plan[0].Steps {
			fmt.Fprintf(w, "  %d. %s\n", i+1, s)
		}
	}
}

// followIncident shows the progress until the incident ends, then its report.
func followIncident(ctx context.Context, c client.Client, run client.WorkflowRun, out io.Writer, every time.Duration) error {
	done := make(chan struct{})
	var rep workflows.IncidentReport
	var runErr error
	go func() {
		defer close(done)
		runErr = run.GetWithOptions(ctx, &rep, client.WorkflowRunGetOptions{})
	}()
	last := ""
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-done:
			if runErr != nil {
				var appErr *temporal.ApplicationError
				if errors.As(runErr, &appErr) && appErr.HasDetails() {
					_ = appErr.Details(&rep)
				}
			}
			printReport(out, rep)
			if runErr != nil {
				return rootMessage(runErr)
			}
			return nil
		case <-tick.C:
			val, err := c.QueryWorkflow(ctx, run.GetID(), "", workflows.QueryProgress)
			if err != nil {
				continue
			}
			var p workflows.IncidentProgress
			if val.Get(&p) != nil {
				continue
			}
			if line := progressLine(p); line != last {
				fmt.Fprintln(out, line)
				last = line
			}
		case <-ctx.Done():
			return fmt.Errorf("stopped watching; the incident goes on")
		}
	}
}

func progressLine(p workflows.IncidentProgress) string {
	return fmt.Sprintf("[%s] %d/%d done: %d contained, %d rotated, %d failed", p.Phase, p.Done, p.Total, p.Contained, p.Rotated, p.Failed)
}

func printReport(w io.Writer, rep workflows.IncidentReport) {
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
			var rep workflows.IncidentReport
			runErr := c.GetWorkflow(ctx, wid, "").Get(ctx, &rep)
			var appErr *temporal.ApplicationError
			if errors.As(runErr, &appErr) && appErr.HasDetails() {
				_ = appErr.Details(&rep)
			}
			if output == "json" {
				return writeJSON(out, rep)
			}
			fmt.Fprintf(out, "incident %s (%s, scope %s) by %s: %s\n", rep.IncidentID, rep.Mode, rep.Selector, rep.Operator, rep.Reason)
			printReport(out, rep)
			if runErr != nil {
				return rootMessage(runErr)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}
