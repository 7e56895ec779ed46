package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/codec"
	"github.com/keyturn/keyturn/internal/durtext"
	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/internal/secretstate"
	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// rotationRow is one rotation as `keyturn status` lists it: the run as secretstate reads
// it, with the secret it rotates. Its JSON form is documented in docs/status.md; times are
// RFC 3339, durations in seconds.
type rotationRow struct {
	SecretID string `json:"secretId"`
	Kind     string `json:"kind"`
	secretstate.Run
	DurationSeconds float64 `json:"durationSeconds"`
}

// result is what the row shows in its OUTCOME column (see secretstate.Run.Result).
func (r rotationRow) result() string { return r.Result() }

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
	// Secret is the secret's state now (age, policy, next run), when an inventory is known.
	Secret *secretstate.Secret `json:"secret,omitempty"`
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
	if st.Step != "" {
		// A running rotation's own word: its search attribute says only running during
		// the quick steps (revoke, rollback), which the signal checks tell apart.
		d.Step = st.Step
	}
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
	var (
		output      string
		limit       int
		overdue     bool
		secretsOnly bool
	)
	cmd := &cobra.Command{
		Use:   "status [<secret-id>]",
		Short: "Show each secret's age and next run, and recent rotations; or one secret in detail",
		Long: `Without an ID: each secret of the inventory (-f, KEYTURN_INVENTORY or the running
keyturn dev's) with the age of its current version, its maximum age, whether it is overdue,
its next scheduled run, its latest rotation's outcome and any revoke still outstanding;
then the most recent rotations. --secrets shows only the secrets, --overdue only the
overdue ones (exit 0: none overdue; 2: some are; 1: none overdue among those read, but a
secret could not be read). With an ID: that secret and its latest rotation in detail.

Ages come from the stores as this machine reaches them (the file store of --store-dir or
--home, Vault through VAULT_*, AWS through its standard chain); a store it cannot read is
reported for its secrets, never guessed. Each read of a store or of Temporal gets 30 s,
and all of them together 60 s; what is not read by then is reported unknown.
-o json without --secrets or --overdue lists the recent rotations only (no store is read).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("--output %q: use table or json", output)
			}
			if limit < 1 {
				return fmt.Errorf("--limit %d: use a number of rotations, 1 or more", limit)
			}
			if (overdue || secretsOnly) && len(args) == 1 {
				return fmt.Errorf("--overdue and --secrets list the inventory's secrets; leave out the secret ID, or use `%s status %s` alone", g.runPrefix(cmd), args[0])
			}
			var inv *inventory.Inventory
			if overdue || secretsOnly {
				path := g.inventoryPath()
				if path == "" {
					return fmt.Errorf("--overdue and --secrets list the inventory's secrets, and none was found: pass -f FILE or set KEYTURN_INVENTORY (with `keyturn dev` running, its inventory is found in %s)", g.homeDir)
				}
				var err error
				if inv, err = inventory.Load(path); err != nil {
					return err
				}
			} else if path := g.inventoryPath(); path != "" {
				var err error
				if inv, err = inventory.Load(path); err != nil {
					return err
				}
			}
			logger := g.logger(cmd.ErrOrStderr())
			c, err := g.dial(logger)
			if err != nil {
				return err
			}
			defer c.Close()
			out := cmd.OutOrStdout()
			if len(args) == 1 {
				return statusOfSecret(cmd, g, c, inv, secret.ID(args[0]), output, logger)
			}
			// Plain `status -o json` prints the rotations only: reading every store for it
			// would cost time and print nothing.
			if inv != nil && (overdue || secretsOnly || output == "table") {
				obs := g.observeSecrets(cmd.Context(), c, inv, logger)
				if overdue {
					return printOverdue(out, cmd.ErrOrStderr(), obs, output)
				}
				if secretsOnly {
					if output == "json" {
						return writeJSON(out, obs)
					}
					return printSecrets(out, obs)
				}
				if output == "table" {
					if err := printSecrets(out, obs); err != nil {
						return err
					}
					fmt.Fprintln(out)
				}
			}
			rows, err := listRotations(cmd.Context(), c, limit)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(out, rows)
			}
			if len(rows) == 0 {
				_, err := fmt.Fprintln(out, "no rotation has run yet")
				return err
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
	cmd.Flags().BoolVar(&overdue, "overdue", false, "list only the overdue secrets; exit 2 when there are any (see above)")
	cmd.Flags().BoolVar(&secretsOnly, "secrets", false, "list the secrets only, not the recent rotations (-o json: the state of every secret)")
	return cmd
}

// statusOfSecret shows one secret: its state (when an inventory is known) and its latest
// rotation in detail.
func statusOfSecret(cmd *cobra.Command, g *globals, c client.Client, inv *inventory.Inventory, id secret.ID, output string, logger *slog.Logger) error {
	if err := id.Validate(); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	var state *secretstate.Secret
	if inv != nil {
		// An ID the inventory does not know has no rotation to show and none to start:
		// say that, not "none has run yet".
		if _, err := lookupSecret(inv, id); err != nil {
			return err
		}
		obs := g.observeSecrets(cmd.Context(), c, inv, logger, id)
		state = &obs.Secrets[0]
		if output == "table" {
			printSecretState(out, *state)
		}
	}
	d, err := describeRotation(cmd.Context(), c, id, g.runPrefix(cmd))
	if err != nil {
		return err
	}
	d.Secret = state
	if output == "json" {
		return writeJSON(out, d)
	}
	printDetail(out, d, g.runPrefix(cmd))
	return nil
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
	r := rotationRow{Run: secretstate.RunOf(runID, status, started, closed, sa)}
	end := time.Now()
	if r.Closed != nil {
		end = *r.Closed
	}
	r.DurationSeconds = end.Sub(started).Round(time.Millisecond).Seconds()
	r.SecretID = secretstate.Keyword(sa, workflows.SearchAttrSecretID.GetName())
	r.Kind = secretstate.Keyword(sa, workflows.SearchAttrKind.GetName())
	return r
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
	if d.Status == secretstate.StatusRunning {
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
	return durtext.Short(d.Round(time.Second))
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
