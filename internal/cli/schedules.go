package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/internal/binding"
	"github.com/keyturn/keyturn/internal/durtext"
	"github.com/keyturn/keyturn/internal/schedsource"
	"github.com/keyturn/keyturn/schedules"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// maxPreview bounds keyturn schedules preview -n; Temporal itself reports ten times.
const maxPreview = 100

func newSchedulesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedules",
		Short: "List, preview, pause and resume Keyturn's Temporal schedules",
	}
	cmd.AddCommand(newSchedulesListCmd(g), newSchedulesPreviewCmd(g), newSchedulesPauseCmd(g, true), newSchedulesPauseCmd(g, false))
	return cmd
}

func newSchedulesListCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List Keyturn's schedules with their next run, paused state and last run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("--output %q: use table or json", output)
			}
			c, err := g.dial(g.logger(cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			defer c.Close()
			list, err := schedules.List(cmd.Context(), c)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				return writeJSON(out, list)
			}
			if len(list) == 0 {
				fmt.Fprintln(out, "No Keyturn schedules: run `keyturn apply -f FILE` to create them from the inventory.")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SCHEDULE\tSPEC\tTIMEZONE\tWINDOW\tNEXT RUN\tPAUSED\tLAST RUN")
			for _, s := range list {
				// Temporal goes on reporting next times while a schedule is paused.
				next := "-"
				switch {
				case s.Paused:
					next = "(paused)"
				case len(s.NextRuns) > 0:
					next = s.NextRuns[0].Local().Format("2006-01-02 15:04 MST")
				}
				paused := "no"
				if s.Paused {
					paused = fmt.Sprintf("yes: %s", s.Note)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ScheduleID, s.Spec, s.Timezone, shortWindow(s.Window), next, paused, lastRunText(s.LastRun))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func newSchedulesPreviewCmd(g *globals) *cobra.Command {
	var n int
	cmd := &cobra.Command{
		Use:   "preview <secret-id> -f FILE",
		Short: "Show a secret's next scheduled runs from the inventory, and from Temporal when the schedule exists",
		Long: `Show the next runs of a secret's schedules as the inventory defines them (the cron spec
in its timezone, before the window's jitter) and, when the schedule exists in Temporal,
Temporal's own next action times (jitter included). A certificate also shows its hourly
renewal check. Without a reachable Temporal the inventory's times are still shown.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := secret.ID(args[0])
			if err := id.Validate(); err != nil {
				return err
			}
			if n < 1 || n > maxPreview {
				return fmt.Errorf("-n %d: show between 1 and %d runs", n, maxPreview)
			}
			inv, err := g.scheduleInventory()
			if err != nil {
				return err
			}
			s, ok := inv.Lookup(id)
			if !ok {
				return fmt.Errorf("secret %q is not in inventory %s: check the id", id, g.inventory)
			}
			all, err := schedules.Desire(schedsource.From(inv))
			if err != nil {
				return err
			}
			var mine []schedules.Desired
			for _, d := range all {
				if d.SecretID == id {
					mine = append(mine, d)
				}
			}
			if len(mine) == 0 {
				return fmt.Errorf("secret %s (%s:%d) has no schedule: add e.g. schedule: \"0 3 * * 1\" and timezone: to rotate it automatically", id, g.inventory, s.Line)
			}
			out := cmd.OutOrStdout()
			var c client.Client
			if cl, _, err := g.dialSchedules(cmd); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: Temporal is not reachable, so only the inventory's times are shown: %v\n", err)
			} else {
				c = cl
				defer c.Close()
			}
			for i, d := range mine {
				if i > 0 {
					fmt.Fprintln(out)
				}
				if err := previewOne(cmd, out, c, d, n, inv.Path); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().IntVarP(&n, "count", "n", 5, "how many runs to show")
	return cmd
}

// previewOne prints one schedule's next runs from the inventory and from Temporal.
func previewOne(cmd *cobra.Command, out io.Writer, c client.Client, d schedules.Desired, n int, inventory string) error {
	loc, err := time.LoadLocation(d.Timezone)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: %s\n", d.ScheduleID, d.Describe())
	next, err := d.Next(time.Now(), n)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "  from the inventory:")
	for _, t := range next {
		fmt.Fprintf(out, "    %s\n", previewTime(t, loc))
	}
	if c == nil {
		return nil
	}
	st, err := schedules.Get(cmd.Context(), c, d.ScheduleID)
	if errors.Is(err, schedules.ErrNotFound) {
		fmt.Fprintf(out, "  in Temporal: not created yet; run `keyturn apply -f %s`\n", shellQuote(inventory))
		return nil
	}
	if err != nil {
		return err
	}
	label := "  in Temporal (next action times):"
	if d.Window > 0 {
		label = fmt.Sprintf("  in Temporal (next action times, each up to %s later by the window's jitter):", shortWindow(d.Window))
	}
	if st.Paused {
		label = fmt.Sprintf("  in Temporal: PAUSED (%s); none of these runs starts until it is resumed:", st.Note)
	}
	fmt.Fprintln(out, label)
	for _, t := range st.NextRuns[:min(n, len(st.NextRuns))] {
		fmt.Fprintf(out, "    %s\n", previewTime(t, loc))
	}
	if st.Spec != d.Spec {
		fmt.Fprintf(out, "  Temporal's schedule has spec %q, the inventory %q: run `keyturn apply -f FILE`\n", st.Spec, d.Spec)
	}
	return nil
}

func newSchedulesPauseCmd(g *globals, pause bool) *cobra.Command {
	var note, incident string
	verb, done := "resume", "resumed"
	if pause {
		verb, done = "pause", "paused"
	}
	long := `Pause or resume the Keyturn schedules of the given secrets. The note is shown beside
the schedule in the Web UI and by keyturn schedules list; keyturn apply keeps both the
paused state and the note. Runs missed while paused are not made up.`
	use := verb + " <secret-id>... --note TEXT"
	if !pause {
		use += " | resume --incident <incident-id>"
		long += `

With --incident, resume exactly the schedules that incident paused, as its report records
them, and only those still paused with the incident's note: a schedule paused for another
reason, before or since, stays paused. The incident must have ended.`
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " the schedules of secrets (the cron schedule and a certificate's renewal check)",
		Long:  long,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case incident != "" && len(args) > 0:
				return errors.New("--incident resumes what that incident paused; give no secret IDs with it")
			case incident == "" && len(args) == 0:
				if pause {
					return errors.New("name the secrets whose schedules to pause: keyturn schedules pause <secret-id>... --note TEXT")
				}
				return errors.New("name the secrets whose schedules to resume, or --incident <incident-id> for those an incident paused")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if incident != "" {
				return resumeIncidentSchedules(cmd, g, incident, note)
			}
			ids := make([]secret.ID, len(args))
			for i, a := range args {
				ids[i] = secret.ID(a)
				if err := ids[i].Validate(); err != nil {
					return err
				}
			}
			if strings.TrimSpace(note) == "" {
				if pause {
					return fmt.Errorf("--note is required: say why, so whoever finds the schedule paused knows when to resume it")
				}
				note = schedules.DefaultResumeNote
			}
			if by := whoami(); by != "" {
				note += " (" + by + ")"
			}
			trail, err := g.auditLog(false)
			if err != nil {
				return err
			}
			defer func() { _ = trail.Sink.Close() }()
			c, err := g.dial(g.logger(cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			defer c.Close()
			act := schedules.Resume
			if pause {
				act = schedules.Pause
			}
			changed, err := act(cmd.Context(), c, ids, note)
			for _, id := range changed {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s: %s\n", done, id, note)
			}
			event := audit.EventScheduleResumed
			if pause {
				event = audit.EventSchedulePaused
			}
			if rerr := recordSchedules(cmd.Context(), trail, event, changed, note); rerr != nil {
				return errors.Join(err, fmt.Errorf("the schedules above are %s, but their audit records were not written: %w", done, rerr))
			}
			if err != nil {
				return err
			}
			var missing []string
			for _, id := range ids {
				if !touched(changed, id) {
					missing = append(missing, string(id))
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("no Keyturn schedule for %s (looked for %s<id> and %s<id>): run `keyturn apply -f FILE` first", strings.Join(missing, ", "), schedules.CronPrefix, schedules.RenewalPrefix)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&note, "note", "", "why (shown with the schedule; required to pause)")
	if !pause {
		cmd.Flags().StringVar(&incident, "incident", "", "resume the schedules this ended incident paused, and only those")
	}
	return cmd
}

// resumeIncidentSchedules resumes what an ended incident paused and still holds paused
// with its note, as the incident's report records it.
func resumeIncidentSchedules(cmd *cobra.Command, g *globals, id, note string) error {
	ctx := cmd.Context()
	trail, err := g.auditLog(false)
	if err != nil {
		return err
	}
	defer func() { _ = trail.Sink.Close() }()
	c, err := g.dial(g.logger(cmd.ErrOrStderr()))
	if err != nil {
		return err
	}
	defer c.Close()
	wid := workflows.IncidentWorkflowID(id)
	desc, err := c.DescribeWorkflowExecution(ctx, wid, "")
	if err != nil {
		return fmt.Errorf("incident %s: %w", id, err)
	}
	if desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return fmt.Errorf("incident %s is still running: resume its schedules once it has ended (`keyturn incident status %s`)", id, id)
	}
	var rep workflows.IncidentReport
	runErr := c.GetWorkflow(ctx, wid, "").Get(ctx, &rep)
	if r, ok := activities.DetailsOf[workflows.IncidentReport](runErr); ok {
		rep = r
	}
	sch := rep.Schedules
	if rep.IncidentID == "" {
		return fmt.Errorf("incident %s left no report to read its paused schedules from (%v); resume them by secret ID: `keyturn schedules resume <secret-id> --note ...`", id, rootMessage(runErr))
	}
	out := cmd.OutOrStdout()
	if len(sch.Paused) == 0 && !sch.PauseFailed {
		fmt.Fprintf(out, "incident %s paused no schedule; nothing to resume\n", id)
		return nil
	}
	if strings.TrimSpace(note) == "" {
		note = "incident " + id + " over"
	}
	if by := whoami(); by != "" {
		note += " (" + by + ")"
	}
	candidates := sch.Paused
	scanScope := sch.PausedCount > len(sch.Paused) || sch.PauseFailed
	switch {
	case sch.PauseFailed:
		// A pause failed part way: what it paused before is not listed. Ask every
		// schedule of the scope, and resume those still paused with its note.
		if candidates, err = scopeSchedules(g, rep.Selector); err != nil {
			return fmt.Errorf("incident %s failed while pausing schedules, so its report may not list all it paused: %w", id, err)
		}
		fmt.Fprintf(out, "incident %s failed while pausing schedules: resuming every schedule of its scope (%s, in %s) still paused with its note\n",
			id, rep.Selector, g.inventory)
	case sch.PausedCount > len(sch.Paused):
		// The report lists only some of what the incident paused: ask every schedule of
		// its scope, and resume those still paused with its note (nothing else is).
		if candidates, err = scopeSchedules(g, rep.Selector); err != nil {
			return fmt.Errorf("incident %s paused %d schedules, more than its report lists: %w", id, sch.PausedCount, err)
		}
		fmt.Fprintf(out, "incident %s paused %d schedules and its report lists %d: resuming every schedule of its scope (%s, in %s) still paused with its note\n",
			id, sch.PausedCount, len(sch.Paused), rep.Selector, g.inventory)
	}
	res, err := schedules.ResumePausedWith(ctx, c, candidates, sch.Note, note)
	for _, sid := range res.Resumed {
		fmt.Fprintf(out, "resumed %s: %s\n", sid, note)
	}
	if rerr := recordSchedules(ctx, trail, audit.EventScheduleResumed, res.Resumed, note); rerr != nil {
		err = errors.Join(err, fmt.Errorf("the schedules above are resumed, but their audit records were not written: %w", rerr))
	}
	if scanScope {
		// The candidates included schedules the incident never paused.
		fmt.Fprintf(out, "%d schedules of the scope are not paused with the incident's note (never paused by it, paused for another reason, or resumed since): left as they are\n", len(res.Left))
		return err
	}
	for _, sid := range res.Left {
		fmt.Fprintf(out, "left %s paused: it is not paused with the incident's note any more (someone paused or resumed it since)\n", sid)
	}
	for _, sid := range sch.KeptPaused {
		fmt.Fprintf(out, "left %s paused: it was paused before the incident, for another reason\n", sid)
	}
	return err
}

// scopeSchedules are the schedule IDs of every secret selector (as an incident's report
// writes it) picks in the operator's inventory.
func scopeSchedules(g *globals, selector string) ([]string, error) {
	sel, err := parseSelectors([]string{selector})
	if err != nil {
		return nil, err
	}
	inv, err := g.requireInventory("schedules resume --incident")
	if err != nil {
		return nil, err
	}
	scope, err := activities.Select(binding.SecretInfos(inv), sel)
	if err != nil {
		return nil, err
	}
	ids := make([]secret.ID, len(scope))
	for i, s := range scope {
		ids[i] = s.ID
	}
	return schedules.ScheduleIDs(ids)
}

// recordSchedules writes an operator's pause or resume of each schedule to its secret's
// chain. Each command is its own event, named by a random ID.
func recordSchedules(ctx context.Context, trail *audit.Log, event string, scheduleIDs []string, note string) error {
	runID, now := uuid.NewString(), time.Now()
	for _, sid := range scheduleIDs {
		r := audit.Record{
			ID: audit.EventID("schedules", runID, sid), Time: now, Event: event,
			Actor: audit.Actor{Type: audit.ActorOperator, Name: whoami()}, Reason: note,
			SecretID: schedules.SecretOf(sid), Handles: map[string]string{"schedule": sid},
		}
		if _, err := trail.Append(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// touched reports whether a schedule of id is among the schedule IDs.
func touched(scheduleIDs []string, id secret.ID) bool {
	for _, s := range scheduleIDs {
		if s == schedules.CronScheduleID(id) || s == schedules.RenewalScheduleID(id) {
			return true
		}
	}
	return false
}

func previewTime(t time.Time, loc *time.Location) string {
	return fmt.Sprintf("%s  (%s)", t.In(loc).Format("Mon 2006-01-02 15:04 MST"), t.UTC().Format(time.RFC3339))
}

func shortWindow(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return durtext.Short(d)
}

func lastRunText(r *schedules.Run) string {
	if r == nil {
		return "-"
	}
	s := r.StartedAt.Local().Format("2006-01-02 15:04")
	switch {
	case r.Outcome != "" && r.Status != "completed":
		s += " " + r.Outcome + " (" + r.Status + ")"
	case r.Outcome != "":
		s += " " + r.Outcome
	case r.Status != "":
		s += " " + r.Status
	}
	return s
}
