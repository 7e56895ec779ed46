package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/keyturn/keyturn/workflows"
)

func newIncidentEvidenceCmd(g *globals) *cobra.Command {
	var (
		output   string
		force    bool
		keyFiles []string
	)
	cmd := &cobra.Command{
		Use:   "evidence <incident-id>",
		Short: "Write one tar.gz with an ended incident's report, audit records, checkpoints, public key and their verification",
		Long: "The bundle holds, under incident-<id>-evidence/:\n" +
			"  report.json, report.txt    the incident's report, as `keyturn incident status` shows it\n" +
			"  records.jsonl              the audit records of the incident's chain and of every secret it\n" +
			"                             worked on, from the incident's start, exactly as stored\n" +
			"  checkpoints.jsonl          the signed checkpoints over those chains\n" +
			"  public-key-<id>.pem        the public key(s) the checkpoints were verified with\n" +
			"  verification.json, .txt    the verification of those chains, whole, from their first record\n" +
			"  README.txt, SHA256SUMS     what each file is, and its SHA-256 (`sha256sum -c SHA256SUMS`)\n\n" +
			"The bundle is written even when verification finds a problem (that is evidence too); the exit\n" +
			"status is then 1. Sign a checkpoint first (`keyturn audit checkpoint`) when no worker runs, so\n" +
			"that the incident's last records are under one.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			id := args[0]
			if err := validateIncidentID(id); err != nil {
				return err
			}
			if output == "" {
				output = "incident-" + id + "-evidence.tar.gz"
			}
			path, err := filepath.Abs(output)
			if err != nil {
				return fmt.Errorf("-o: %w", err)
			}
			if _, err := os.Lstat(path); err == nil && !force {
				return fmt.Errorf("%s exists: choose another file with -o, or pass --force to replace it", path)
			} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("-o: %w", err)
			}
			keys, note, err := g.trustedKeys(keyFiles)
			if err != nil {
				return err
			}

			c, err := g.dial(g.logger(cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			defer c.Close()
			wid := workflows.IncidentWorkflowID(id)
			desc, err := c.DescribeWorkflowExecution(ctx, wid, "")
			var notFound *serviceerror.NotFound
			if errors.As(err, &notFound) {
				return fmt.Errorf("no incident %s on this Temporal server and namespace: check the ID (`keyturn incident start` prints it) and --address/--namespace", id)
			}
			if err != nil {
				return fmt.Errorf("incident %s: %w", id, err)
			}
			info := desc.GetWorkflowExecutionInfo()
			if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				return fmt.Errorf("incident %s is still running: its report is not final; `keyturn incident status %s` follows it, build the evidence once it has ended", id, id)
			}
			rep, runErr := endedIncidentReport(ctx, c, wid)
			if rep.IncidentID == "" {
				return fmt.Errorf("incident %s ended without a report (%v): nothing to bundle", id, rootMessage(runErr))
			}
			start := info.GetStartTime().AsTime()
			if !rep.StartedAt.IsZero() && rep.StartedAt.Before(start) {
				start = rep.StartedAt
			}

			sink, err := g.openAuditSink()
			if err != nil {
				return err
			}
			defer sink.Close()
			ev, err := collectEvidence(ctx, sink, rep, runErr, start, keys, note)
			if err != nil {
				return err
			}
			if err := ev.write(path, "incident-"+id+"-evidence", force, time.Now()); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "wrote %s: incident %s, %d record(s) of %d chain(s) since %s, %d checkpoint(s)\n",
				path, id, ev.included, len(ev.chains), start.UTC().Format(time.RFC3339), ev.checkpoints)
			if ev.report.Uncovered > 0 {
				fmt.Fprintf(out, "%d record(s) of these chains are linked but not yet signed by a checkpoint; `keyturn audit checkpoint` then a new bundle covers them\n", ev.report.Uncovered)
			}
			if !ev.report.OK() {
				return fmt.Errorf("the bundle was written, and its verification found %d problem(s): see verification.txt in it, or `keyturn audit verify`", len(ev.report.Problems))
			}
			fmt.Fprintln(out, "verification: OK")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&output, "output", "o", "", "the tar.gz to write (default incident-<id>-evidence.tar.gz in the working directory)")
	f.BoolVar(&force, "force", false, "replace the output file if it exists")
	f.StringArrayVar(&keyFiles, "public-key", nil, "trusted public key file (repeatable; default: the configured signing key's, --audit-signing-key + .pub)")
	return cmd
}
