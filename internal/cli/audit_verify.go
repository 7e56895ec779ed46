package cli

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/internal/durtext"
	"github.com/keyturn/keyturn/internal/yamlfields"
)

func newAuditVerifyCmd(g *globals) *cobra.Command {
	var (
		keyFiles []string
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check every record's hash and chain link and every checkpoint's signature; exit 1 on any problem",
		Long: "Verify reads the whole trail and checks that no record was edited, removed, inserted or moved,\n" +
			"that no chain is shorter than a signed checkpoint says, and that every checkpoint is signed by a\n" +
			"trusted key. Trusted keys are the --public-key files; without one, the public half of the\n" +
			"configured signing key (<home>/audit.key.pub). Keep a copy of the public key where whoever can\n" +
			"write the trail cannot, and pass it here: a key read from beside the trail proves less.\n\n" +
			"Records after their chain's last checkpoint are checked against each other only: a rewrite of\n" +
			"them alone shows once a checkpoint signs them (`keyturn audit checkpoint`, or a worker, every minute).\n" +
			"Exit status 0 when nothing is wrong, 1 otherwise.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			keys, note, err := g.trustedKeys(keyFiles)
			if err != nil {
				return err
			}
			sink, err := g.openAuditSink()
			if err != nil {
				return err
			}
			defer sink.Close()
			recs, err := sink.Records(ctx, audit.Filter{})
			if err != nil {
				return err
			}
			cps, err := sink.Checkpoints(ctx)
			if err != nil {
				return err
			}
			rep := audit.Verify(recs, cps, keys, nil)
			out := cmd.OutOrStdout()
			if asJSON {
				if err := writeJSON(out, rep); err != nil {
					return err
				}
			} else {
				printVerification(out, rep, "audit trail in "+g.auditPlace(), keys, note)
			}
			if !rep.OK() {
				return fmt.Errorf("the audit trail does not verify: %d problem(s)", len(rep.Problems))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keyFiles, "public-key", nil, "trusted public key file (repeatable; default: the configured signing key's, --audit-signing-key + .pub)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the verification report as JSON")
	return cmd
}

// trustedKeys loads the public keys checkpoints are checked with: the files given, else
// the configured signing key's public key (its .pub, or the key itself when the .pub is
// missing). note says where they came from, or that there were none to find.
func (g *globals) trustedKeys(files []string) ([]ed25519.PublicKey, string, error) {
	if len(files) > 0 {
		var keys []ed25519.PublicKey
		for _, f := range files {
			k, err := audit.LoadPublicKey(f)
			if err != nil {
				return nil, "", fmt.Errorf("--public-key: %w", err)
			}
			keys = append(keys, k)
		}
		return keys, "trusted keys from --public-key", nil
	}
	for _, f := range []string{g.audit.keyFile + ".pub", g.audit.keyFile} {
		k, err := audit.LoadPublicKey(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("%w (pass --public-key FILE, or set --audit-signing-key)", err)
		}
		return []ed25519.PublicKey{k}, "trusted key from " + f + " (beside the trail: pass --public-key with a copy kept elsewhere for a stronger check)", nil
	}
	return nil, fmt.Sprintf("no public key at %s.pub and no --public-key: no checkpoint can be trusted", g.audit.keyFile), nil
}

// printVerification prints a verification report for people: what was checked, how much
// of it a trusted checkpoint signs, and each problem.
func printVerification(w io.Writer, rep audit.Report, what string, keys []ed25519.PublicKey, note string) {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = audit.KeyID(k)
	}
	fmt.Fprintf(w, "%s: %d chain(s), %d record(s), %d checkpoint(s) of which %d signed by a trusted key\n",
		what, rep.Chains, rep.Records, rep.Checkpoints, rep.Trusted)
	if len(ids) > 0 {
		fmt.Fprintf(w, "%s: %s\n", note, strings.Join(ids, ", "))
	} else {
		fmt.Fprintln(w, note)
	}
	if !rep.LastCheckpoint.IsZero() {
		fmt.Fprintf(w, "last trusted checkpoint: %s\n", rep.LastCheckpoint.UTC().Format(time.RFC3339))
	}
	if rep.Uncovered > 0 {
		fmt.Fprintf(w, "%d record(s) are linked but not yet signed by a checkpoint: a rewrite of those alone would not show until one signs them (`keyturn audit checkpoint`; a running worker signs every %s)\n",
			rep.Uncovered, durtext.Day(audit.DefaultCheckpointInterval))
	}
	if rep.OK() {
		fmt.Fprintln(w, "OK: no problem found")
		return
	}
	fmt.Fprintf(w, "PROBLEMS: %d\n", len(rep.Problems))
	for _, p := range rep.Problems {
		// Chain names and messages come from the trail: sanitized like any other text from it.
		fmt.Fprintf(w, "  %s\n", yamlfields.Displayable(p.String(), 400))
	}
}

func newAuditCheckpointCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "checkpoint",
		Short: "Sign a checkpoint now over every chain that moved since the last one",
		Long: "Signs the current head of every chain that changed since the latest checkpoint with the audit\n" +
			"signing key (--audit-signing-key, default <home>/audit.key, made on first use with its public key\n" +
			"beside it as .pub). A running worker does this every minute; run it by hand before `audit verify`\n" +
			"or `incident evidence` when no worker runs.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			_, statErr := os.Stat(g.audit.keyFile)
			l, err := g.auditLog(true)
			if err != nil {
				return err
			}
			defer l.Sink.Close()
			if errors.Is(statErr, fs.ErrNotExist) {
				fmt.Fprintf(out, "made a new audit signing key %s (key %s); its public key is %s.pub: keep a copy where whoever can write the trail cannot, for `keyturn audit verify --public-key`\n",
					g.audit.keyFile, audit.KeyID(l.Signer.Public()), g.audit.keyFile)
			}
			cp, signed, err := audit.Checkpointer{Sink: l.Sink, Signer: l.Signer}.Checkpoint(ctx, time.Now())
			if err != nil {
				return err
			}
			if !signed {
				fmt.Fprintln(out, "nothing new to sign: every chain's head is already under a checkpoint")
				return nil
			}
			printCheckpoint(out, cp)
			return nil
		},
	}
}

// printCheckpoint says what a checkpoint signed: each chain's length and head hash.
func printCheckpoint(w io.Writer, cp audit.Checkpoint) {
	fmt.Fprintf(w, "signed a checkpoint at %s with key %s over %d chain(s):\n", cp.Time.UTC().Format(time.RFC3339), cp.KeyID, len(cp.Heads))
	for _, h := range cp.Heads {
		fmt.Fprintf(w, "  %s: %d record(s), head %s\n", yamlfields.Displayable(h.Chain, 200), h.Count, shortHash(h.Hash))
	}
}

// shortHash is the first 16 hex digits of a hash, enough to compare by eye.
func shortHash(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}
