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

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// rotationRow is one rotation as `keyturn status` shows it.
type rotationRow struct {
	SecretID string    `json:"secretId"`
	Kind     string    `json:"kind"`
	Step     string    `json:"step"`
	Status   string    `json:"status"`
	Started  time.Time `json:"started"`
	Closed   time.Time `json:"closed,omitzero"`
	RunID    string    `json:"runId"`
}

// rotationDetail is one rotation in full, for `keyturn status <id>`.
type rotationDetail struct {
	rotationRow
	Result *workflows.RotateStatus `json:"result,omitempty"`
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
				d, err := describeRotation(cmd.Context(), c, id)
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(out, d)
				}
				printDetail(out, d)
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
			fmt.Fprintln(tw, "SECRET\tKIND\tSTEP\tSTATUS\tSTARTED\tRUN")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.SecretID, r.Kind, r.Step, r.Status, r.Started.Local().Format(time.DateTime), r.RunID)
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
	if status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && closed.Unix() > 0 {
		r.Closed = closed
	}
	fields := sa.GetIndexedFields()
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

func describeRotation(ctx context.Context, c client.Client, id secret.ID) (rotationDetail, error) {
	wid := workflows.RotateWorkflowID(id)
	desc, err := c.DescribeWorkflowExecution(ctx, wid, "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return rotationDetail{}, fmt.Errorf("no rotation of %s has run yet: start one with `keyturn rotate %s`", id, id)
	}
	if err != nil {
		return rotationDetail{}, fmt.Errorf("describe rotation of %s: %w", id, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	d := rotationDetail{rotationRow: rowOf(info.GetExecution().GetRunId(), info.GetStatus(), info.GetStartTime().AsTime(), info.GetCloseTime().AsTime(), info.GetSearchAttributes())}
	st := &workflows.RotateStatus{}
	if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		v, err := c.QueryWorkflow(ctx, wid, d.RunID, workflows.QueryStatus)
		if err != nil {
			return d, fmt.Errorf("query rotation of %s: %w (is a keyturn worker running?)", id, err)
		}
		if err := v.Get(st); err != nil {
			return d, fmt.Errorf("decode status of %s: %w", id, err)
		}
		d.Result = st
		return d, nil
	}
	var res workflows.RotateResult
	err = c.GetWorkflow(ctx, wid, d.RunID).Get(ctx, &res)
	if err != nil {
		var ok bool
		if res, ok = resultFromError(err); !ok {
			st.LastError = rootMessage(err).Error()
			d.Result = st
			return d, nil
		}
	}
	st.RotateResult = res
	st.Step = d.Step
	d.Result = st
	return d, nil
}

func printDetail(w io.Writer, d rotationDetail) {
	fmt.Fprintf(w, "rotation: %s (run %s)\nstatus:   %s, step %s\nstarted:  %s\n", d.SecretID, d.RunID, d.Status, d.Step, d.Started.Local().Format(time.DateTime))
	if d.Result == nil {
		return
	}
	if !d.Result.GraceUntil.IsZero() && d.Status == "running" {
		fmt.Fprintf(w, "grace until: %s\n", d.Result.GraceUntil.Local().Format(time.DateTime))
	}
	if d.Result.LastError != "" && d.Result.Error == "" {
		fmt.Fprintf(w, "last error: %s\n", d.Result.LastError)
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
