package cli

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/internal/yamlfields"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

func newAuditCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read, verify and sign the audit trail: every change Keyturn made and every operator action",
		Long: "The audit trail holds one record per change and operator action, hash-chained per secret and\n" +
			"per incident, with signed checkpoints over the chain heads. It is kept in --audit-dir (default\n" +
			"<home>/audit), or in PostgreSQL with --audit-postgres; checkpoints are signed with\n" +
			"--audit-signing-key (default <home>/audit.key). See docs/audit.md.\n" +
			"Records hold references (IDs, version numbers, role names, key IDs, serials), never secrets.",
	}
	cmd.AddCommand(newAuditShowCmd(g), newAuditVerifyCmd(g), newAuditCheckpointCmd(g))
	return cmd
}

// showFlags are `keyturn audit show`'s filters as typed.
type showFlags struct {
	secretID, incident, actor, since, until string
	json                                    bool
}

func newAuditShowCmd(g *globals) *cobra.Command {
	var sf showFlags
	cmd := &cobra.Command{
		Use:   "show",
		Short: "List audit records, filtered by secret, incident, actor and time",
		Long: "Lists the records the filters select, oldest first. Filters combine with AND.\n" +
			"--since and --until take an RFC3339 time (2026-12-03T14:00:00Z) or a duration meaning that long\n" +
			"ago (90m, 24h, 7d). --json prints each record as one JSON line, exactly as stored (with its hash).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := sf.filter(time.Now())
			if err != nil {
				return err
			}
			sink, err := g.openAuditSink()
			if err != nil {
				return err
			}
			defer sink.Close()
			recs, err := sink.Records(cmd.Context(), f)
			if err != nil {
				return err
			}
			sort.SliceStable(recs, func(i, j int) bool { return recs[i].Time.Before(recs[j].Time) })
			out := cmd.OutOrStdout()
			if sf.json {
				for _, r := range recs {
					line, err := r.MarshalLine()
					if err != nil {
						return fmt.Errorf("audit record %s: %w", yamlfields.Quote(r.ID), err)
					}
					if _, err := out.Write(line); err != nil {
						return err
					}
				}
				return nil
			}
			if len(recs) == 0 {
				fmt.Fprintln(out, "no audit records match")
				return nil
			}
			printRecords(out, recs)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&sf.secretID, "secret", "", "only this secret's records (its chain)")
	fl.StringVar(&sf.incident, "incident", "", "only records that name this incident")
	fl.StringVar(&sf.actor, "actor", "", "only this actor: a type (operator, schedule, incident, worker) or type:name (operator:alice)")
	fl.StringVar(&sf.since, "since", "", "records at or after: RFC3339 time, or a duration ago (24h, 7d)")
	fl.StringVar(&sf.until, "until", "", "records at or before: RFC3339 time, or a duration ago")
	fl.BoolVar(&sf.json, "json", false, "one JSON record per line, as stored")
	return cmd
}

// actorTypes are the actor types a record can name (audit.Actor*).
var actorTypes = []string{audit.ActorOperator, audit.ActorSchedule, audit.ActorIncident, audit.ActorWorker}

// filter checks the flags and turns them into an audit.Filter; every message names the
// flag and the fix, and repeats a bad value only quoted and cut short.
func (sf showFlags) filter(now time.Time) (audit.Filter, error) {
	var f audit.Filter
	if sf.secretID != "" {
		id := secret.ID(sf.secretID)
		if err := id.Validate(); err != nil {
			return f, fmt.Errorf("--secret: %w", err)
		}
		f.SecretID = id
	}
	if sf.incident != "" {
		if err := validateIncidentID(sf.incident); err != nil {
			return f, fmt.Errorf("--incident: %w", err)
		}
		f.IncidentID = sf.incident
	}
	if sf.actor != "" {
		typ, name, hasName := strings.Cut(sf.actor, ":")
		if !slices.Contains(actorTypes, typ) {
			return f, fmt.Errorf("--actor %s: the type before ':' must be one of %s (e.g. --actor operator or --actor operator:alice)", yamlfields.Quote(sf.actor), strings.Join(actorTypes, ", "))
		}
		if hasName && (name == "" || yamlfields.Displayable(name, 200) != name) {
			return f, fmt.Errorf("--actor %s: give a name after ':' in printable characters, or the type alone", yamlfields.Quote(sf.actor))
		}
		f.Actor = sf.actor
	}
	var err error
	if f.Since, err = parseWhen("--since", sf.since, now); err != nil {
		return f, err
	}
	if f.Until, err = parseWhen("--until", sf.until, now); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return f, fmt.Errorf("--until (%s) is before --since (%s): nothing could match; swap them", f.Until.Format(time.RFC3339), f.Since.Format(time.RFC3339))
	}
	return f, nil
}

// parseWhen reads an RFC3339 time or a duration before now ("24h" is a day ago).
func parseWhen(flag, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if d, err := yamlfields.ParseDuration(v); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%s %s: a duration means that long ago and cannot be negative; write 24h for a day ago", flag, yamlfields.Quote(v))
		}
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%s %s: write an RFC3339 time (2026-12-03T14:00:00Z) or a duration meaning that long ago (90m, 24h, 7d)", flag, yamlfields.Quote(v))
}

// validateIncidentID applies the rule workflows.IncidentInput.Validate applies to
// incident IDs, so a typo is told apart from an incident that does not exist.
func validateIncidentID(id string) error {
	if !workflows.ValidIncidentID(id) || yamlfields.Displayable(id, 100) != id {
		return fmt.Errorf("incident ID %s is not one: incident IDs are 1 to 100 printable characters without spaces or slashes, e.g. inc-20261203-142501-ab7kq4", yamlfields.Quote(id))
	}
	return nil
}

// printRecords prints records as a table. Every value comes from the trail, which anyone
// with write access to it could have edited: cells are sanitized before they reach a
// terminal.
func printRecords(w io.Writer, recs []audit.Record) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tCHAIN#SEQ\tACTOR\tEVENT\tSTEP\tOUTCOME\tVERSION\tHANDLES")
	for _, r := range recs {
		version := "-"
		if r.VersionNumber > 0 {
			version = strconv.Itoa(r.VersionNumber)
		}
		fmt.Fprintf(tw, "%s\t%s#%d\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.Time.UTC().Format(time.RFC3339), cell(r.Chain, 80), r.Seq, cell(r.Actor.String(), 40), cell(r.Event, 30),
			cell(r.Step, 20), cell(outcomeOf(r), 60), version, cell(handles(r.Handles), 80))
	}
	_ = tw.Flush()
}

// outcomeOf is what a record's OUTCOME column shows: the rotation's outcome, the error's
// class, or for a line that does not parse, what is wrong with it.
func outcomeOf(r audit.Record) string {
	switch {
	case r.Chain == audit.UnreadableChain:
		return r.Error
	case r.Outcome != "" && r.ErrorClass != "":
		return r.Outcome + " (" + r.ErrorClass + ")"
	case r.Outcome != "":
		return r.Outcome
	case r.ErrorClass != "":
		return r.ErrorClass
	}
	return ""
}

// handles is a record's handles as k=v, sorted by key.
func handles(h map[string]string) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + h[k]
	}
	return strings.Join(parts, ",")
}

// cell is a value ready for a table cell: sanitized, cut to limit, "-" if empty.
func cell(s string, limit int) string {
	s = yamlfields.Displayable(s, limit) // tabs and newlines are dropped with the other control characters
	if s == "" {
		return "-"
	}
	return s
}
