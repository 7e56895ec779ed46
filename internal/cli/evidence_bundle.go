package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/workflows"
)

// evidence is an incident's evidence bundle, collected and ready to write.
type evidence struct {
	incidentID string
	// chains are the audit chains included: the incident's and each affected secret's.
	chains []string
	// included counts the records in records.jsonl; checkpoints those in checkpoints.jsonl.
	included, checkpoints int
	// report is the verification of the included chains, whole.
	report audit.Report
	files  []bundleFile
}

// bundleFile is one file of the bundle and what it is, for the README.
type bundleFile struct {
	name, about string
	data        []byte
}

// collectEvidence gathers the bundle of the incident rep reports: its report, the audit
// records of its chain and of every secret it worked on since start, the checkpoints over
// those chains, the trusted public keys and the verification of those chains. The chains
// are verified whole, from their first record, since a chain can only be checked from its
// start; records.jsonl holds the part from the incident's start.
func collectEvidence(ctx context.Context, sink audit.Sink, rep workflows.IncidentReport, runErr error, start time.Time, keys []ed25519.PublicKey, note string) (*evidence, error) {
	ev := &evidence{incidentID: rep.IncidentID}
	chains := []string{audit.ChainOf(audit.Record{IncidentID: rep.IncidentID})}
	for _, s := range rep.Secrets {
		chains = append(chains, audit.ChainOf(audit.Record{SecretID: s.ID}))
	}
	// A record that names the incident belongs to the evidence even if the report does
	// not list its secret (one the worker added to the scope, say).
	named, err := sink.Records(ctx, audit.Filter{IncidentID: rep.IncidentID})
	if err != nil {
		return nil, err
	}
	for _, r := range named {
		if r.Chain != audit.UnreadableChain {
			chains = append(chains, r.Chain)
		}
	}
	sort.Strings(chains)
	ev.chains = slices.Compact(chains)

	recs, err := sink.Records(ctx, audit.Filter{Chains: ev.chains})
	if err != nil {
		return nil, err
	}
	cps, err := sink.Checkpoints(ctx)
	if err != nil {
		return nil, err
	}
	ev.report = audit.Verify(recs, cps, keys, ev.chains)

	var records, checkpoints, verification bytes.Buffer
	for _, r := range recs {
		if r.Chain == audit.UnreadableChain || r.Time.Before(start) {
			continue
		}
		line, err := r.MarshalLine()
		if err != nil {
			return nil, fmt.Errorf("audit record %s: %w", r.ID, err)
		}
		records.Write(line)
		ev.included++
	}
	for _, cp := range cps {
		if !slices.ContainsFunc(cp.Heads, func(h audit.Head) bool { return slices.Contains(ev.chains, h.Chain) }) {
			continue
		}
		b, err := json.Marshal(cp)
		if err != nil {
			return nil, fmt.Errorf("audit checkpoint: %w", err)
		}
		checkpoints.Write(append(b, '\n'))
		ev.checkpoints++
	}
	reportJSON, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("incident report: %w", err)
	}
	verifyJSON, err := json.MarshalIndent(ev.report, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("verification report: %w", err)
	}
	printVerification(&verification, ev.report, "chains "+strings.Join(ev.chains, ", ")+", whole", keys, note)

	ev.files = []bundleFile{
		{"report.json", "the incident's report (workflows.IncidentReport) as JSON", append(reportJSON, '\n')},
		{"report.txt", "the incident's report as `keyturn incident status` prints it", reportText(rep, runErr)},
		{"records.jsonl", fmt.Sprintf("%d audit record(s) of the chains above from %s on, one JSON line each, as stored", ev.included, start.UTC().Format(time.RFC3339Nano)), records.Bytes()},
		{"checkpoints.jsonl", fmt.Sprintf("%d signed checkpoint(s) over the chains above, one JSON line each, as stored", ev.checkpoints), checkpoints.Bytes()},
	}
	for _, k := range keys {
		ev.files = append(ev.files, bundleFile{"public-key-" + audit.KeyID(k) + ".pem", "a public key the checkpoints were verified with (key " + audit.KeyID(k) + ")", audit.MarshalPublicKey(k)})
	}
	ev.files = append(ev.files,
		bundleFile{"verification.json", "the verification of the chains above, whole (audit.Report)", append(verifyJSON, '\n')},
		bundleFile{"verification.txt", "the same verification as `keyturn audit verify` prints it", verification.Bytes()})
	return ev, nil
}

// reportText is the incident's report as `keyturn incident status` prints it.
func reportText(rep workflows.IncidentReport, runErr error) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "incident %s (%s, scope %s) by %s: %s\n", rep.IncidentID, rep.Mode, rep.Selector, rep.Operator, rep.Reason)
	fmt.Fprintf(&b, "started %s", rep.StartedAt.UTC().Format(time.RFC3339))
	if !rep.FinishedAt.IsZero() {
		fmt.Fprintf(&b, ", finished %s", rep.FinishedAt.UTC().Format(time.RFC3339))
	}
	b.WriteString("\n")
	printReport(&b, rep, "keyturn")
	if runErr != nil {
		fmt.Fprintf(&b, "the incident failed: %v\n", rootMessage(runErr))
	}
	return b.Bytes()
}

// readme is the bundle's README.txt: what it is and each file's SHA-256.
func (ev *evidence) readme(now time.Time) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Evidence of Keyturn incident %s, written %s.\n\n", ev.incidentID, now.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "Audit chains included: %s.\n", strings.Join(ev.chains, ", "))
	if ev.report.OK() {
		fmt.Fprintf(&b, "Verification: OK (%d record(s) checked, %d trusted checkpoint(s)).\n", ev.report.Records, ev.report.Trusted)
	} else {
		fmt.Fprintf(&b, "Verification: %d PROBLEM(S), see verification.txt.\n", len(ev.report.Problems))
	}
	if ev.report.Uncovered > 0 {
		fmt.Fprintf(&b, "%d record(s) are linked but not yet signed by a checkpoint: they are checked against each\nother only.\n", ev.report.Uncovered)
	}
	b.WriteString("\nFiles (SHA-256, as in SHA256SUMS; check with `sha256sum -c SHA256SUMS`):\n")
	for _, f := range ev.files {
		fmt.Fprintf(&b, "  %s  %s\n      %s\n", sha256Hex(f.data), f.name, f.about)
	}
	b.WriteString("\nEach record's hash is SHA-256 over its line as stored, without the newline, with the value of\n" +
		"\"hash\" emptied; \"prev\" is the hash of the record before it in its chain. A checkpoint signs, with\n" +
		"Ed25519, each chain's length and last hash at a time (see its \"heads\"). records.jsonl starts at the\n" +
		"incident, so a chain's first record there may link to an older record that is not included; the\n" +
		"verification was run over the whole chains, from their first record, when the bundle was written.\n")
	return []byte(b.String())
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// write writes the bundle as a tar.gz at path, its files under dir/. It writes a
// temporary file beside path first, so a bundle is never half written; without force an
// existing path is never replaced, even one made meanwhile.
func (ev *evidence) write(path, dir string, force bool, now time.Time) error {
	files := append(slices.Clone(ev.files), bundleFile{"README.txt", "", ev.readme(now)})
	var sums strings.Builder
	for _, f := range files {
		fmt.Fprintf(&sums, "%s  %s\n", sha256Hex(f.data), f.name)
	}
	files = append(files, bundleFile{"SHA256SUMS", "", []byte(sums.String())})

	tmp, err := os.CreateTemp(filepath.Dir(path), ".keyturn-evidence-*.tmp")
	if err != nil {
		return fmt.Errorf("write evidence: %w", err)
	}
	defer os.Remove(tmp.Name())
	zw := gzip.NewWriter(tmp)
	tw := tar.NewWriter(zw)
	err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: now})
	for _, f := range files {
		if err != nil {
			break
		}
		if err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: dir + "/" + f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: now}); err == nil {
			_, err = tw.Write(f.data)
		}
	}
	err = errors.Join(err, tw.Close(), zw.Close(), tmp.Sync(), tmp.Close())
	if err != nil {
		return fmt.Errorf("write evidence %s: %w", path, err)
	}
	if force {
		if err := os.Rename(tmp.Name(), path); err != nil {
			return fmt.Errorf("write evidence: %w", err)
		}
		return nil
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s was created meanwhile: choose another file with -o, or pass --force to replace it", path)
	} else if err != nil {
		return fmt.Errorf("write evidence: %w", err)
	}
	return nil
}
