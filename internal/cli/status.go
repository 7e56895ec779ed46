package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/codec"
	"github.com/keyturn/keyturn/internal/config"
	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// rotationRow is one rotation as `keyturn status` lists it. Its JSON form is documented
// in docs/status.md; times are RFC 3339, durations in seconds.
type rotationRow struct {
	SecretID string `json:"secretId"`
	Kind     string `json:"kind"`
	// Status is Temporal's: running, completed, failed, cancelled, terminated, timed out.
	Status string `json:"status"`
	// Outcome is how the rotation ended (rotated, rolled_back, aborted, revoke_failed,
	// failed) or an outstanding state while it keeps trying; empty while it runs normally.
	Outcome string `json:"outcome,omitempty"`
	// Step is the step it is on, or where it ended.
	Step            string     `json:"step"`
	Started         time.Time  `json:"started"`
	Closed          *time.Time `json:"closed,omitempty"`
	DurationSeconds float64    `json:"durationSeconds"`
	RunID           string     `json:"runId"`
}

// result is what the row shows in its OUTCOME column: the outcome, else Temporal's status.
// An outstanding state of a run that is no longer running (terminated by an incident, say)
// is history, not the present.
func (r rotationRow) result() string {
	switch {
	case r.Outcome == "":
		return r.Status
	case r.Status != "running" && isOutstanding(r.Outcome):
		return r.Status + " (was " + r.Outcome + ")"
	}
	return r.Outcome
}

func isOutstanding(outcome string) bool {
	return outcome == workflows.OutcomeRevokeOutstanding || outcome == workflows.OutcomeRollbackOutstanding
}

// rotationDetail is one rotation in full, for `keyturn status <id>`.
type rotationDetail struct {
	rotationRow
	NewVersion      *secret.Version          `json:"newVersion,omitempty"`
	PreviousVersion *secret.Version          `json:"previousVersion,omitempty"`
	GraceUntil      *time.Time               `json:"graceUntil,omitempty"`
	PromotedAt      *time.Time               `json:"promotedAt,omitempty"`
	Error           string                   `json:"error,omitempty"`
	LastError       string                   `json:"lastError,omitempty"`
	Rollback        *rotation.RollbackResult `json:"rollback,omitempty"`
	Outstanding     *workflows.Outstanding   `json:"outstanding,omitempty"`
	Steps           []stepRow                `json:"steps"`
	// Result is the workflow's own status, for printing; the JSON form is the fields above.
	Result *workflows.RotateStatus `json:"-"`
}

// stepRow is one step of a rotation in `keyturn status <id> -o json`.
type stepRow struct {
	Step            string    `json:"step"`
	Started         time.Time `json:"started"`
	DurationSeconds float64   `json:"durationSeconds"`
	Error           string    `json:"error,omitempty"`
	Attempts        int       `json:"attempts,omitempty"`
}

// fill copies the workflow's status into the documented JSON fields.
func (d *rotationDetail) fill(st *workflows.RotateStatus) {
	d.Result = st
	d.NewVersion, d.PreviousVersion = st.NewVersion, st.PreviousVersion
	d.GraceUntil, d.PromotedAt = timePtr(st.GraceUntil), timePtr(st.PromotedAt)
	d.Error, d.LastError, d.Rollback, d.Outstanding = st.Error, st.LastError, st.Rollback, st.Outstanding
	if d.Outcome == "" {
		d.Outcome = st.Outcome
	}
	d.Steps = make([]stepRow, 0, len(st.Steps))
	for _, s := range st.Steps {
		d.Steps = append(d.Steps, stepRow{Step: s.Step, Started: s.Started, DurationSeconds: s.Duration.Seconds(), Error: s.Error, Attempts: s.Attempts})
	}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func newStatusCmd(g *globals) *cobra.Command {
	var output string
	var limit int
	cmd := &cobra.Command{
		Use:   "status [<secret-id>]",
		Short: "Show recent rotations, or one secret's latest rotation in detail",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("--output %q: use table or json", output)
			}
			if limit < 1 {
				return fmt.Errorf("--limit %d: use a number of rotations, 1 or more", limit)
			}
			c, err := g.dial(g.logger(cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			defer c.Close()
			out := cmd.OutOrStdout()
			if len(args) == 1 {
				id := secret.ID(args[0])
				if err := id.Validate(); err != nil {
					return err
				}
				if path := g.inventoryPath(); path != "" {
					// An ID the inventory does not know has no rotation to show and none to
					// start: say that, not "none has run yet".
					inv, err := config.Load(path)
					if err != nil {
						return err
					}
					if _, err := lookupSecret(inv, id); err != nil {
						return err
					}
				}
				d, err := describeRotation(cmd.Context(), c, id, g.runPrefix(cmd))
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(out, d)
				}
				printDetail(out, d, g.runPrefix(cmd))
				return nil
			}
			rows, err := listRotations(cmd.Context(), c, limit)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(out, rows)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SECRET\tKIND\tOUTCOME\tSTEP\tSTARTED\tDURATION\tRUN")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.SecretID, r.Kind, r.result(), r.Step, r.Started.Local().Format(time.DateTime), shortSeconds(r.DurationSeconds), r.RunID)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	cmd.Flags().IntVar(&limit, "limit", 50, "how many recent rotations to list")
	return cmd
}

func listRotations(ctx context.Context, c client.Client, limit int) ([]rotationRow, error) {
	var rows []rotationRow
	req := &workflowservice.ListWorkflowExecutionsRequest{
		Query:    fmt.Sprintf("WorkflowType = '%s'", workflows.RotateWorkflowName),
		PageSize: int32(min(limit, 1000)),
	}
	for len(rows) < limit {
		resp, err := c.ListWorkflow(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("list rotations: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			rows = append(rows, rowOf(e.GetExecution().GetRunId(), e.GetStatus(), e.GetStartTime().AsTime(), e.GetCloseTime().AsTime(), e.GetSearchAttributes()))
		}
		if len(resp.GetNextPageToken()) == 0 {
			break
		}
		req.NextPageToken = resp.GetNextPageToken()
	}
	if len(rows) > limit {
		rows = rows[:limit]
	}
	return rows, nil
}

func rowOf(runID string, status enumspb.WorkflowExecutionStatus, started, closed time.Time, sa *commonpb.SearchAttributes) rotationRow {
	r := rotationRow{RunID: runID, Status: statusName(status), Started: started}
	end := time.Now()
	if status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && closed.Unix() > 0 {
		r.Closed = &closed
		end = closed
	}
	r.DurationSeconds = end.Sub(started).Round(time.Millisecond).Seconds()
	fields := sa.GetIndexedFields()
	r.Outcome = keyword(fields, workflows.SearchAttrOutcome.GetName())
	r.SecretID = keyword(fields, workflows.SearchAttrSecretID.GetName())
	r.Kind = keyword(fields, workflows.SearchAttrKind.GetName())
	r.Step = keyword(fields, workflows.SearchAttrStep.GetName())
	return r
}

func keyword(fields map[string]*commonpb.Payload, name string) string {
	p, ok := fields[name]
	if !ok {
		return ""
	}
	var s string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &s); err != nil {
		return ""
	}
	return s
}

func statusName(s enumspb.WorkflowExecutionStatus) string {
	switch s {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return "running"
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return "completed"
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		return "failed"
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return "cancelled"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return "terminated"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return "timed out"
	case enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		return "continued"
	}
	return "unknown"
}

func describeRotation(ctx context.Context, c client.Client, id secret.ID, kt string) (rotationDetail, error) {
	wid := workflows.RotateWorkflowID(id)
	desc, err := c.DescribeWorkflowExecution(ctx, wid, "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return rotationDetail{}, fmt.Errorf("no rotation of %s has run yet: start one with `%s rotate %s`", id, kt, id)
	}
	if err != nil {
		return rotationDetail{}, fmt.Errorf("describe rotation of %s: %w", id, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	d := rotationDetail{rotationRow: rowOf(info.GetExecution().GetRunId(), info.GetStatus(), info.GetStartTime().AsTime(), info.GetCloseTime().AsTime(), info.GetSearchAttributes())}
	if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		st, err := queryStatus(ctx, c, wid, d.RunID)
		if err != nil {
			return d, fmt.Errorf("query rotation of %s: %w (is a keyturn worker running?)", id, err)
		}
		d.fill(&st)
		return d, nil
	}
	st := &workflows.RotateStatus{StartedAt: d.Started, Step: d.Step}
	var res workflows.RotateResult
	err = c.GetWorkflow(ctx, wid, d.RunID).Get(ctx, &res)
	if errors.Is(err, codec.ErrUnknownKey) {
		return d, fmt.Errorf("read the result of the rotation of %s: %w", id, err)
	}
	if err != nil {
		var ok bool
		if res, ok = activities.DetailsOf[workflows.RotateResult](err); !ok {
			st.LastError = rootMessage(err).Error()
		}
	}
	st.RotateResult = res
	d.fill(st)
	return d, nil
}

// queryStatus asks a running rotation where it stands.
func queryStatus(ctx context.Context, c client.Client, wid, runID string) (workflows.RotateStatus, error) {
	var st workflows.RotateStatus
	v, err := c.QueryWorkflow(ctx, wid, runID, workflows.QueryStatus)
	if err != nil {
		return st, err
	}
	if err := v.Get(&st); err != nil {
		return st, fmt.Errorf("decode status: %w", err)
	}
	return st, nil
}

// shortSeconds prints a duration in seconds the way a person reads it: milliseconds
// under a second, tenths under a minute, whole seconds beyond.
func shortSeconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return config.ShortDuration(d.Round(time.Second))
}

func printDetail(w io.Writer, d rotationDetail, kt string) {
	fmt.Fprintf(w, "rotation: %s (run %s)\nstatus:   %s, step %s\nstarted:  %s\n", d.SecretID, d.RunID, d.result(), d.Step, d.Started.Local().Format(time.DateTime))
	if d.Result == nil {
		return
	}
	if d.GraceUntil != nil && d.Status == "running" && d.Outstanding == nil {
		fmt.Fprintf(w, "grace until: %s\n", d.GraceUntil.Local().Format(time.DateTime))
	}
	if o := d.Outstanding; o != nil {
		fmt.Fprintf(w, "outstanding: %s, %d attempt(s) since %s, next at %s (`%s retry-now %s` tries at once, `%s give-up %s` stops)\nlast error: %s\n",
			o.What, o.Attempts, o.Since.Local().Format(time.DateTime), o.NextAttempt.Local().Format(time.DateTime), kt, d.SecretID, kt, d.SecretID, o.LastError)
	}
	if d.LastError != "" && d.Error == "" && d.Outstanding == nil {
		fmt.Fprintf(w, "last error: %s\n", d.LastError)
	}
	if d.Result.Outcome != "" || len(d.Result.Steps) > 0 {
		printResult(w, d.Result.RotateResult)
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
