package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/internal/binding"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

func newIncidentCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "incident",
		Short: "Contain or rotate every secret in a scope at once, when a credential may have leaked",
	}
	cmd.AddCommand(newIncidentStartCmd(g), newIncidentStatusCmd(g), newIncidentEvidenceCmd(g))
	return cmd
}

func newIncidentStartCmd(g *globals) *cobra.Command {
	var (
		selects  []string
		in       workflows.IncidentInput
		dry, yes bool
		attach   bool
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "start --select SELECTOR --mode contain|rotate --reason TEXT",
		Short: "Start an incident: contain or rotate every secret in scope, its rotations in flight stopped and its schedules paused",
		Long: "SELECTOR is a comma-separated list of id=<secret-id>, tag=<tag>, kind=<kind> and prefix=<id-prefix>;\n" +
			"a secret is in scope when it matches every criterion (any of the ids). --select may repeat.\n\n" +
			"contain: revoke every existing credential at once (database sessions ended), then issue, test and\n" +
			"  promote new ones. Consumers fail until they read the new credential: use it for a leak.\n" +
			"rotate: rotate with no grace period, then revoke the old credential.\n\n" +
			"The plan is made from the inventory (-f, KEYTURN_INVENTORY, else the running `keyturn dev`'s)\n" +
			"before anything starts: an unknown ID or an empty scope starts nothing. --dry-run shows the plan\n" +
			"and starts nothing; without --yes you are asked to confirm. The worker resolves the scope again\n" +
			"from its own inventory, and any difference from the plan shown is reported (exit status 1).\n\n" +
			"An incident ID is used once: an ID whose incident is running is reported (--attach follows it),\n" +
			"one whose incident has ended is refused.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			sel, err := parseSelectors(selects)
			if err != nil {
				return err
			}
			in.Selector = sel
			// A generated ID that happens to be taken is someone else's incident: it is
			// reported, never followed, whatever --attach says.
			generatedID := in.IncidentID == ""
			if generatedID {
				in.IncidentID = newIncidentID(time.Now())
			}
			if in.Operator == "" {
				in.Operator = whoami()
			}
			if err := in.Validate(); err != nil {
				return err
			}
			if err := workflows.CheckReason(in.Reason); err != nil {
				return err
			}
			inv, err := g.requireInventory("incident start")
			if err != nil {
				return err
			}
			plan, err := workflows.PlanIncident(binding.SecretInfos(inv), in.Selector, in.Mode)
			if err != nil {
				return fmt.Errorf("plan incident %s from inventory %s: %w; nothing was started", in.IncidentID, inv.Path, err)
			}
			if len(plan) == 0 {
				return fmt.Errorf("the scope %q matches no secret in inventory %s; nothing was started", in.Selector, inv.Path)
			}
			printPlan(out, in, plan)
			if dry {
				fmt.Fprintln(out, "dry run: nothing was started or changed")
				return nil
			}
			// The plan goes with the incident so the worker can name any difference in
			// scope; a very large plan would not fit in one payload, and is not sent.
			if len(plan) <= maxComparedPlan {
				for _, p := range plan {
					in.Planned = append(in.Planned, p.ID)
				}
			} else {
				fmt.Fprintf(out, "the plan has %d secrets, more than the %d the worker compares with its own scope: the report says how many it worked on, not which differ\n", len(plan), maxComparedPlan)
			}
			c, err := g.dial(g.logger(cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			defer c.Close()
			// Before asking anything: an ID in use is reported (or followed), never reused.
			if run, err := existingIncident(ctx, c, in.IncidentID, attach && !generatedID, out); run != nil || err != nil {
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.ErrOrStderr(), "note: the plan above is this command's; --select, --mode and --reason do not apply to the incident already running, whose own progress and report follow")
				return finishIncident(ctx, c, run, out, interval, g.runPrefix(cmd))
			}
			if !yes {
				fmt.Fprintf(out, "Type the incident ID (%s) to %s these %d secret(s): ", in.IncidentID, in.Mode, len(plan))
				answer, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if strings.TrimSpace(answer) != in.IncidentID {
					return errors.New("not confirmed; nothing was started")
				}
			}
			run, err := c.ExecuteWorkflow(ctx, incidentStartOptions(in.IncidentID), workflows.IncidentWorkflowName, in)
			var started *serviceerror.WorkflowExecutionAlreadyStarted
			if errors.As(err, &started) {
				// Taken between the check and the start.
				if run, err := existingIncident(ctx, c, in.IncidentID, attach && !generatedID, out); run != nil || err != nil {
					if err != nil {
						return err
					}
					return finishIncident(ctx, c, run, out, interval, g.runPrefix(cmd))
				}
			}
			if err != nil {
				return fmt.Errorf("start incident %s: %w", in.IncidentID, err)
			}
			fmt.Fprintf(out, "incident %s started (workflow %s, run %s); `%s incident status %s` shows it from anywhere\n", in.IncidentID, run.GetID(), run.GetRunID(), g.runPrefix(cmd), shellQuote(in.IncidentID))
			return finishIncident(ctx, c, run, out, interval, g.runPrefix(cmd))
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&selects, "select", nil, "scope: id=..., tag=..., kind=..., prefix=... (comma-separated, criteria combine with AND)")
	f.StringVar(&in.Mode, "mode", workflows.ModeContain, "contain (revoke everything first) or rotate (grace 0, then revoke)")
	f.StringVar(&in.Reason, "reason", "", "why (required; recorded on every rotation the incident starts)")
	f.StringVar(&in.IncidentID, "id", "", "incident ID, used once (default inc-<UTC time>-<random>)")
	f.StringVar(&in.Operator, "operator", "", "who runs the incident (default: the OS user)")
	f.BoolVar(&dry, "dry-run", false, "show the plan from the inventory and start nothing")
	f.BoolVar(&yes, "yes", false, "do not ask for confirmation")
	f.BoolVar(&attach, "attach", false, "if the incident --id is running already, follow it instead of failing")
	f.BoolVar(&in.ResumeSchedules, "resume-schedules", false, "when done, resume the schedules the incident paused (never those paused for another reason)")
	f.IntVar(&in.Parallelism, "parallelism", 0, fmt.Sprintf("secrets worked on at once (default %d, at most %d)", workflows.DefaultIncidentParallelism, workflows.MaxIncidentParallelism))
	f.DurationVar(&interval, "progress-every", 500*time.Millisecond, "how often the live progress is refreshed")
	return cmd
}

// newIncidentID is a default incident ID: the UTC time, readable in lists, and a random
// suffix of 30 bits so that incidents started in the same second almost never share an
// ID (two in a billion for a pair); the check before the start catches the rest.
func newIncidentID(now time.Time) string {
	// 32 letters and digits, so a byte modulo 32 picks each with the same chance.
	const alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
	b := make([]byte, 6)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "inc-" + now.UTC().Format("20060102-150405") + "-" + string(b)
}

// existingIncident looks for a workflow under the incident's ID. None: (nil, nil). A
// running one is followed with attach, otherwise reported as an error saying what it is
// doing; an ended one is always an error, since an incident ID is used once.
func existingIncident(ctx context.Context, c client.Client, id string, attach bool, out io.Writer) (client.WorkflowRun, error) {
	wid := workflows.IncidentWorkflowID(id)
	desc, err := c.DescribeWorkflowExecution(ctx, wid, "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look for incident %s: %w", id, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	runID := info.GetExecution().GetRunId()
	since := info.GetStartTime().AsTime().UTC().Format(time.RFC3339)
	if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		status := strings.ToLower(strings.TrimPrefix(info.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_"))
		return nil, fmt.Errorf("incident ID %s was used already: that incident (run %s, started %s) ended %s at %s; nothing was started. "+
			"`keyturn incident status %s` shows its report; start a new incident with another --id, or without --id for a fresh one",
			id, runID, since, status, info.GetCloseTime().AsTime().UTC().Format(time.RFC3339), id)
	}
	if attach {
		fmt.Fprintf(out, "incident %s is running already (run %s, since %s): following it\n", id, runID, since)
		return c.GetWorkflow(ctx, wid, runID), nil
	}
	doing := "its progress could not be read (is a worker running?)"
	// A query waits for a worker to answer; with none, say so soon rather than hang.
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if val, err := c.QueryWorkflow(qctx, wid, runID, workflows.QueryProgress); err == nil {
		var p workflows.IncidentProgress
		if val.Get(&p) == nil {
			doing = progressLine(p)
		}
	}
	return nil, fmt.Errorf("incident %s is running already (run %s, since %s): %s; nothing new was started. "+
		"Follow it with `keyturn incident status %s` or `keyturn incident start --id %s --attach ...`",
		id, runID, since, doing, id, id)
}

// maxComparedPlan bounds the plan sent with an incident (its IDs travel in the workflow's
// input, which Temporal limits to 2 MiB; 10,000 IDs of 100 characters are 1 MB).
const maxComparedPlan = 10_000

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

// incidentStartOptions start an incident once per ID. Without
// WorkflowExecutionErrorWhenAlreadyStarted the SDK answers a taken ID, running or
// closed, with the existing run instead of an error, and the CLI would follow an old
// incident as if it had started it.
func incidentStartOptions(id string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                                       workflows.IncidentWorkflowID(id),
		TaskQueue:                                workflows.TaskQueue,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    temporal.NewSearchAttributes(workflows.SearchAttrIncidentID.ValueSet(id)),
		StaticSummary:                            "Incident " + id,
	}
}

// printPlan shows what the incident will do, from the CLI's inventory. It is written
// through a buffer: the table writer writes each cell on its own, and a scope of 10,000
// secrets made that 50,000 writes before the incident could start.
func printPlan(out io.Writer, in workflows.IncidentInput, plan []workflows.PlannedSecret) {
	w := bufio.NewWriter(out)
	defer w.Flush()
	fmt.Fprintf(w, "incident %s, mode %s, scope %s: %d secret(s)\n", in.IncidentID, in.Mode, in.Selector, len(plan))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SECRET\tKIND\tSTORE\tTARGET")
	for _, p := range plan {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.ID, p.Kind, p.Store, p.Target)
	}
	_ = tw.Flush()
	if len(plan) > 0 {
		fmt.Fprintln(w, "for each secret:")
		for i, s := range plan[0].Steps {
			fmt.Fprintf(w, "  %d. %s\n", i+1, s)
		}
	}
}
