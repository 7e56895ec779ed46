package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// Targets on a 2-core machine (issue 14): every leaked password of 1,000 secrets refused
// within 3 s, of 10,000 within 10 s. The rotations are compared with the engine's floor
// instead (see the floor's line).
var targets = []struct {
	maxN    int
	refused time.Duration
}{
	{1000, 3 * time.Second},
	{10000, 10 * time.Second},
}

// reportTargets prints the verdict on the containment target. start is the moment the
// attackers count from (the command's start): the incident's own containment time counts
// from its workflow's start, later by the time it took to start it.
func reportTargets(n int, rep workflows.IncidentReport, start time.Time, refusedBy time.Duration) {
	containedAt := rep.StartedAt.Sub(start) + time.Duration(rep.AllContainedMs)*time.Millisecond
	for _, t := range targets {
		if n > t.maxN {
			continue
		}
		verdict := "met"
		if refusedBy > t.refused {
			verdict = "MISSED"
		}
		fmt.Printf("target every leaked password refused within %s for N<=%d: %s (refused by %.2f s; the incident reported everything contained at %.2f s: its workflow started at %.2f s and contained in %.2f s)\n",
			t.refused, t.maxN, verdict, refusedBy.Seconds(), containedAt.Seconds(), rep.StartedAt.Sub(start).Seconds(), float64(rep.AllContainedMs)/1000)
		return
	}
}

// checkAttack fails the benchmark when a leaked password was not refused 30 s after
// when, or a leaked login got in after the catalog showed every one refused.
func checkAttack(b *testing.B, att *attack, allRefused bool, when string) {
	b.Helper()
	if !allRefused {
		b.Errorf("not every leaked password was refused 30 s after %s (%v)", when, att.err)
	}
	if k := att.acceptedAfterCatalog(); k > 0 {
		b.Errorf("%d leaked logins got in after the catalog showed every leaked password refused", k)
	}
}

// writeAttack reports what the attackers saw.
func writeAttack(a *attack, passwords, secrets, attackers int, allRefused bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fmt.Printf("\nAttackers: %d clients tried %d leaked passwords (current and previous of %d secrets) %d times; %d logins accepted during the incident (%d of them ended by the server before they were ready for queries).\n",
		attackers, passwords, secrets, a.attempts, a.accepted, a.endedLoggingIn)
	if !allRefused {
		fmt.Printf("NOT every leaked password was refused (first other error: %v)\n", a.err)
		return
	}
	fmt.Printf("Last leaked login accepted %.2f s after the incident's start (the attempt began at %.2f s); the attackers had seen every leaked password refused by %.2f s (a round of one attacker took at most %.2f s).\n",
		a.lastAccepted.Seconds(), a.lastAcceptedBegan.Seconds(), a.refusedBy.Seconds(), a.round.Seconds())
	switch {
	case a.catalogAt == 0:
		fmt.Printf("The catalog watch never read every leaked password refused (%v): the bound is the attackers' own.\n", a.catalogErr)
	case a.acceptedAfterCatalog() > 0:
		fmt.Printf("CONTRADICTION: the catalog watch read every leaked password refused at %.2f s, yet %d logins that began later got in: the bound is the attackers' own.\n",
			a.catalogAt.Seconds(), a.acceptedAfterCatalog())
	default:
		fmt.Printf("The catalog (pg_authid, read every %s as the superuser) first showed that none of them could log in at %.2f s (NOLOGIN, no password, or a SCRAM verifier the password does not match); no login that began later got in.\n",
			catalogPoll, a.catalogAt.Seconds())
	}
	fmt.Printf("So the last leaked password stopped working between %.2f s and %.2f s.\n", a.lastAcceptedBegan.Seconds(), a.refusedFrom().Seconds())
}

// writeBatches shows, for each run of the incident (1,000 secrets each), when its first
// and last secret were contained and rotated: the runs work one after the other, so the
// last containment waits for every earlier run's rotations.
func writeBatches(rep workflows.IncidentReport) {
	const perRun = 1000
	if len(rep.Secrets) <= perRun {
		return
	}
	fmt.Println("\nPer run of the incident (seconds after its start):")
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tsecrets\tfirst contained\tlast contained\tlast rotated\t")
	for lo := 0; lo < len(rep.Secrets); lo += perRun {
		batch := rep.Secrets[lo:min(lo+perRun, len(rep.Secrets))]
		first, lastC, lastR := int64(-1), int64(0), int64(0)
		for _, s := range batch {
			if first < 0 || s.ContainedMs < first {
				first = s.ContainedMs
			}
			lastC, lastR = max(lastC, s.ContainedMs), max(lastR, s.RotatedMs)
		}
		fmt.Fprintf(tw, "%d\t%d\t%.2f\t%.2f\t%.2f\t\n", lo/perRun+1, len(batch), float64(first)/1000, float64(lastC)/1000, float64(lastR)/1000)
	}
	_ = tw.Flush()
}

// writeParent shows how fast the incident workflow itself started its children and
// handled its workflow tasks: every child start and completion is an event in its
// history, and one workflow's events are written one transaction at a time.
func writeParent(st parentStats) {
	fmt.Printf("\nThe incident workflow: %d workflow tasks; last child initiated %.2f s after the start\n", st.workflowTasks, st.lastStart.Seconds())
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tcount\tp50 ms\tp95 ms\tmax ms\t")
	for _, r := range []struct {
		name string
		ds   []time.Duration
	}{{"child initiated to started", st.startLag}, {"workflow task scheduled to completed", st.taskLatency}} {
		if len(r.ds) == 0 {
			continue
		}
		ds := slices.Clone(r.ds)
		slices.Sort(ds)
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.0f\t\n", r.name, len(ds), ms(percentile(ds, 50)), ms(percentile(ds, 95)), ms(ds[len(ds)-1]))
	}
	_ = tw.Flush()
}

// writeRotations reads the results of the sampled secrets' Rotate workflows and shows
// each step's duration as the workflow saw it (scheduled to completed, so queueing and
// the server's round trips included), and the events of one rotation.
func writeRotations(b *testing.B, c client.Client, ids []secret.ID, incidentStart time.Time) {
	b.Helper()
	ctx := context.Background()
	if len(ids) > 200 {
		ids = ids[:200]
	}
	steps := map[string][]time.Duration{}
	var total, began []time.Duration
	var slowest secret.ID // the sampled rotation slowest from plan to promoted
	var slowestTook time.Duration
	for _, id := range ids {
		var res workflows.RotateResult
		if err := c.GetWorkflow(ctx, workflows.RotateWorkflowID(id), "").Get(ctx, &res); err != nil {
			b.Fatalf("result of the rotation of %s: %v", id, err)
		}
		for _, s := range res.Steps {
			steps[s.Step] = append(steps[s.Step], s.Duration)
		}
		if len(res.Steps) > 0 && !res.PromotedAt.IsZero() {
			total = append(total, res.PromotedAt.Sub(res.Steps[0].Started))
			if took := total[len(total)-1]; took > slowestTook {
				slowest, slowestTook = id, took
			}
			began = append(began, res.Steps[0].Started.Sub(incidentStart))
		}
	}
	names := make([]string, 0, len(steps))
	for name := range steps {
		names = append(names, name)
	}
	order := []string{workflows.StepPlan, workflows.StepContain, workflows.StepCreate, workflows.StepTest, workflows.StepPromote}
	sort.Slice(names, func(i, j int) bool { return slices.Index(order, names[i]) < slices.Index(order, names[j]) })
	fmt.Printf("\nSteps of %d sampled rotations as their workflow saw them:\n", len(ids))
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "step\tp50 ms\tp95 ms\tmax ms\t")
	row := func(name string, ds []time.Duration) {
		slices.Sort(ds)
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t\n", name, ms(percentile(ds, 50)), ms(percentile(ds, 95)), ms(ds[len(ds)-1]))
	}
	for _, name := range names {
		row(name, steps[name])
	}
	if len(total) > 0 {
		row("plan to promoted", total)
		row("incident start to plan", began)
	}
	_ = tw.Flush()

	// A workflow task that timed out waited for its worker (a sticky task the worker did
	// not take in time, or a worker that died): each one is a wait and a replay.
	var timedOut []string // how each timed out, and how long after the task was scheduled
	events := 0
	byType := map[string]int{}
	for k, id := range ids {
		it := c.GetWorkflowHistory(ctx, workflows.RotateWorkflowID(id), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		scheduledAt := map[int64]time.Time{}
		var timeline strings.Builder
		var first time.Time
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				b.Fatal(err)
			}
			if id == slowest {
				if first.IsZero() {
					first = ev.GetEventTime().AsTime()
				}
				fmt.Fprintf(&timeline, "  %7.3f  %s\n", ev.GetEventTime().AsTime().Sub(first).Seconds(), strings.TrimPrefix(ev.GetEventType().String(), "EVENT_TYPE_"))
			}
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
				scheduledAt[ev.GetEventId()] = ev.GetEventTime().AsTime()
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
				a := ev.GetWorkflowTaskTimedOutEventAttributes()
				after := ev.GetEventTime().AsTime().Sub(scheduledAt[a.GetScheduledEventId()])
				timedOut = append(timedOut, fmt.Sprintf("%s after %.2f s",
					strings.ToLower(strings.TrimPrefix(a.GetTimeoutType().String(), "TIMEOUT_TYPE_")), after.Seconds()))
			}
			if k == 0 {
				events++
				byType[strings.TrimPrefix(ev.GetEventType().String(), "EVENT_TYPE_")]++
			}
		}
		// A rotation far slower than the rest waited somewhere: its history says where.
		if id == slowest && slowestTook > 2*time.Second {
			fmt.Printf("the slowest sampled rotation (%s, %.2f s from plan to promoted), its events in seconds:\n%s", id, slowestTook.Seconds(), timeline.String())
		}
	}
	fmt.Printf("workflow tasks timed out in the %d sampled rotations: %d", len(ids), len(timedOut))
	if len(timedOut) > 0 {
		fmt.Printf(" (%s)", strings.Join(timedOut, ", "))
	}
	fmt.Println()
	types := make([]string, 0, len(byType))
	for name, k := range byType {
		types = append(types, fmt.Sprintf("%s %d", name, k))
	}
	sort.Strings(types)
	fmt.Printf("one rotation's history: %d events (%s)\n", events, strings.Join(types, ", "))
}
