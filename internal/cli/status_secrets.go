package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/internal/binding"
	"github.com/keyturn/keyturn/internal/durtext"
	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/internal/secretstate"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/workflows"
)

// ExitOverdue is `keyturn status --overdue`'s exit code when a secret is overdue: the
// command worked, and found something to act on (as `keyturn diff` exits ExitPending).
const ExitOverdue = 2

// ObserveDeadline bounds all of `keyturn status`'s reads of the secrets' state (each
// read also has secretstate's own timeout): stores that cannot be reached cannot hold
// the command for minutes. What is not read by then is reported unknown, with the
// error.
const ObserveDeadline = 60 * time.Second

// observeSecrets reads the state of the inventory's secrets (of ids only, when given)
// with secretstate, the package the worker's sweep uses too, from this machine: the file
// store of --store-dir, and Vault and AWS from the environment; within ObserveDeadline.
func (g *globals) observeSecrets(ctx context.Context, c client.Client, inv *inventory.Inventory, logger *slog.Logger, ids ...secret.ID) secretstate.Observation {
	ctx, cancel := context.WithTimeout(ctx, ObserveDeadline)
	defer cancel()
	var tp trace.TracerProvider
	if g.tel != nil {
		tp = g.tel.TracerProvider() // the store reads are spans of the command, as the rest of it
	}
	b := backends(nil, logger, tp)
	b.File = nil // backends' typed nil would not compare equal to nil
	store, fileErr := g.openExistingStore()
	if fileErr == nil {
		b.File = store
	}
	resolver := binding.New(inv, b)
	defer func() { _ = resolver.Close() }()
	o := secretstate.Observer{Inventory: inv, Stores: cliStores{resolver: resolver, inv: inv, fileErr: fileErr}, Temporal: c}
	return o.Observe(ctx, ids...)
}

// cliStores opens stores for `keyturn status`: as the worker's resolver does, except that
// a missing file store is reported as such (the CLI, unlike a worker, never creates one).
type cliStores struct {
	resolver *binding.Resolver
	inv      *inventory.Inventory
	fileErr  error
}

func (s cliStores) Store(ctx context.Context, id secret.ID) (stores.Store, error) {
	if sec, ok := s.inv.Lookup(id); ok && sec.Store.Type == inventory.StoreFile && s.fileErr != nil {
		return nil, s.fileErr
	}
	return s.resolver.Store(ctx, id)
}

// printSecrets writes the secrets table, then what needs saying about single secrets:
// why each overdue one is, and what could not be read.
func printSecrets(w io.Writer, obs secretstate.Observation) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	// SENSITIVITY comes last so the columns before it stay where scripts found them.
	fmt.Fprintln(tw, "SECRET\tKIND\tOWNER\tAGE\tMAX AGE\tOVERDUE\tNEXT RUN\tLAST OUTCOME\tREVOKE\tSENSITIVITY")
	for _, s := range obs.Secrets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Kind, orDash(s.Owner), age(s), maxAge(s), overdue(s), nextRun(s), lastOutcome(s), revoke(s), orDash(s.Sensitivity))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	printNotes(w, obs.Secrets)
	return nil
}

// printNotes says why each overdue secret is overdue and what could not be read.
func printNotes(w io.Writer, secrets []secretstate.Secret) {
	for _, s := range secrets {
		if s.IsOverdue() {
			fmt.Fprintf(w, "overdue: %s: %s\n", s.ID, s.OverdueReason)
		}
		for _, u := range unknowns(s) {
			fmt.Fprintf(w, "unknown: %s: %s\n", s.ID, u)
		}
	}
}

// unknowns names each part of a secret's state that is unknown, and why: the sources
// that could not be read, and an age its store does not record.
func unknowns(s secretstate.Secret) []string {
	var out []string
	for _, e := range s.ReadErrors() {
		out = append(out, e.Source+": "+e.Err)
	}
	if s.AgeUnknown() {
		out = append(out, "age: "+cmp.Or(s.OverdueReason, "the store records no creation time for the current version"))
	}
	return out
}

// printSecretState writes one secret's state above the detail of its latest rotation.
func printSecretState(w io.Writer, s secretstate.Secret) {
	fmt.Fprintf(w, "secret:   %s (%s", s.ID, s.Kind)
	if s.Owner != "" {
		fmt.Fprintf(w, ", owner %s", s.Owner)
	}
	if s.Sensitivity != "" {
		fmt.Fprintf(w, ", sensitivity %s", s.Sensitivity)
	}
	fmt.Fprintln(w, ")")
	for _, c := range s.Consumers {
		fmt.Fprintf(w, "consumer: %s, re-reads every %s\n", c.Name, durtext.Day(c.Refresh.Duration()))
	}
	if len(s.Consumers) == 0 {
		fmt.Fprintln(w, "consumer: none listed in the inventory")
	}
	fmt.Fprintf(w, "age:      %s", age(s))
	if s.Current != nil {
		fmt.Fprintf(w, " (version %d, recorded %s)", s.Current.Number, s.Current.CreatedAt.Local().Format(time.DateTime))
	}
	fmt.Fprintf(w, "\nmax age:  %s", maxAge(s))
	if s.MaxAgeFrom != "" {
		fmt.Fprintf(w, " (from %s)", s.MaxAgeFrom)
	}
	fmt.Fprintf(w, "\noverdue:  %s", overdue(s))
	if s.IsOverdue() {
		fmt.Fprintf(w, " (%s)", s.OverdueReason)
	}
	fmt.Fprintf(w, "\nnext run: %s\nrevoke:   %s\n", nextRun(s), revoke(s))
	if g := s.RevokeGate; g != nil {
		until := "revoke anyway"
		if g.Hold {
			until = "hold"
		}
		since := g.Since
		if g.State == workflows.GateHeld && !g.HeldSince.IsZero() {
			since = g.HeldSince
		}
		fmt.Fprintf(w, "gate:     %s since %s, max wait until %s (then %s), %d check(s) of %s\n", g.State, since.Local().Format(time.DateTime), g.Until.Local().Format(time.DateTime), until, g.Checks, orDash(g.Checked))
		for _, u := range g.Uses {
			fmt.Fprintf(w, "use:      %s", workflows.DescribeUses([]rotators.Use{u}, 1))
			if u.Detail != "" {
				fmt.Fprintf(w, " (%s)", u.Detail)
			}
			fmt.Fprintln(w)
		}
		if g.LastError != "" {
			fmt.Fprintf(w, "gate:     the last check failed: %s\n", g.LastError)
		}
	}
	for _, u := range unknowns(s) {
		fmt.Fprintf(w, "unknown:  %s\n", u)
	}
	fmt.Fprintln(w)
}

// printOverdue lists the overdue secrets and returns the exit code's error: ExitOverdue
// when there are any; else 1 when a secret could not be read (it is named on stderr, as
// its state is unknown); else nil.
func printOverdue(out, errOut io.Writer, obs secretstate.Observation, output string) error {
	var late, unknown []secretstate.Secret
	for _, s := range obs.Secrets {
		switch {
		case s.IsOverdue():
			late = append(late, s)
		case s.Overdue == nil:
			unknown = append(unknown, s)
		}
	}
	all := obs.Secrets
	obs.Secrets = late
	if output == "json" {
		if err := writeJSON(out, obs); err != nil {
			return err
		}
	} else if len(late) == 0 {
		fmt.Fprintf(out, "no overdue secret among the %d read\n", len(all)-len(unknown))
	} else if err := printSecrets(out, obs); err != nil {
		return err
	}
	for _, s := range unknown {
		fmt.Fprintf(errOut, "keyturn: cannot tell whether %s is overdue: %s\n", s.ID, cmp.Or(s.StoreError, s.OverdueReason))
	}
	switch {
	case len(late) > 0:
		return &exitError{code: ExitOverdue, err: fmt.Errorf("%d secret(s) overdue: %s", len(late), ids(late))}
	case len(unknown) > 0:
		return fmt.Errorf("whether %d secret(s) are overdue is unknown: %s", len(unknown), ids(unknown))
	}
	return nil
}

func ids(secrets []secretstate.Secret) string {
	out := make([]string, len(secrets))
	for i, s := range secrets {
		out[i] = string(s.ID)
	}
	return strings.Join(out, ", ")
}

// The columns of the secrets table. "?" is a fact that could not be read (the notes
// under the table say why), "-" one that does not exist.

func age(s secretstate.Secret) string {
	switch {
	case s.Age != nil:
		return durtext.Rough(s.Age.Duration())
	case s.StoreError != "":
		return "?"
	case s.AgeUnknown():
		return "unknown"
	case s.Versions > 0:
		return "no current version"
	}
	return "never rotated"
}

func maxAge(s secretstate.Secret) string {
	if s.MaxAge == nil {
		return "none"
	}
	return durtext.Day(s.MaxAge.Duration())
}

func overdue(s secretstate.Secret) string {
	switch {
	case s.Overdue == nil:
		return "?"
	case *s.Overdue:
		return "yes"
	}
	return "no"
}

func nextRun(s secretstate.Secret) string {
	switch {
	case s.ScheduleError != "":
		return "?"
	case s.NextRun != nil:
		return s.NextRun.Local().Format("2006-01-02 15:04")
	}
	for _, sch := range s.Schedules {
		if sch.RenewalCheck && sch.NextRun != nil && s.StoreError != "" {
			return "?" // the renewal check runs, but when the certificate is due is unknown
		}
	}
	for _, sch := range s.Schedules {
		if sch.Missing {
			return "not applied"
		}
	}
	for _, sch := range s.Schedules {
		if sch.Paused {
			return "paused"
		}
	}
	return "-"
}

func lastOutcome(s secretstate.Secret) string {
	switch {
	case s.LastRotation != nil:
		return s.LastRotation.Result()
	case s.RotationError != "":
		return "?"
	}
	return "-"
}

func revoke(s secretstate.Secret) string {
	switch {
	case s.RevokesOutstanding == nil:
		return "?"
	case *s.RevokesOutstanding == 0:
		return "-"
	}
	switch s.RevokeState {
	case secretstate.RevokeRetrying:
		return "retrying"
	case secretstate.RollbackRetrying:
		return "rollback retrying"
	case secretstate.RevokeFailed:
		return "failed"
	case secretstate.RevokeWaiting, secretstate.RevokeHeld:
		return s.RevokeState + gateUses(s)
	}
	return "outstanding"
}

// gateUses says what holds a waiting or held revoke: ": 2 sessions (app_b as orders-api
// from 10.0.0.5:41000 since 12:01:05Z, and 1 more)", ": no use seen", or "" when the gate
// could not be asked.
func gateUses(s secretstate.Secret) string {
	g := s.RevokeGate
	switch {
	case g == nil:
		return ""
	case len(g.Uses) == 0 && g.LastError != "":
		return ": use unknown, the last check failed"
	case len(g.Uses) == 0 && !g.IdleFrom.IsZero():
		// The target records uses late (IAM): no use yet is not idle yet.
		return ": no use seen yet, idle counts from " + g.IdleFrom.UTC().Format("2006-01-02 15:04Z")
	case len(g.Uses) == 0:
		return ": no use seen"
	}
	noun := "use"
	if s.Kind == inventory.KindPostgres {
		noun = "session"
	}
	if len(g.Uses) != 1 {
		noun += "s"
	}
	return fmt.Sprintf(": %d %s (%s)", len(g.Uses), noun, workflows.DescribeUses(g.Uses, 1))
}
