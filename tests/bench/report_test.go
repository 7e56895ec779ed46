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

// Targets on a 2-core machine: 1,000 secrets contained within 10 s and rotated within
// 60 s; 10,000 contained within 60 s.
var targets = []struct {
	maxN      int
	contained time.Duration
	rotated   time.Duration
}{
	{1000, 10 * time.Second, 60 * time.Second},
	{10000, 60 * time.Second, 0},
}

func reportTargets(n int, rep workflows.IncidentReport) {
	for _, t := range targets {
		if n > t.maxN {
			continue
		}
		check := func(what string, got int64, limit time.Duration) {
			verdict := "met"
			if time.Duration(got)*time.Millisecond > limit {
				verdict = "MISSED"
			}
			fmt.Printf("target %s within %s for N<=%d: %s (%.2f s)\n", what, limit, t.maxN, verdict, float64(got)/1000)
		}
		check("contained", rep.AllContainedMs, t.contained)
		if t.rotated > 0 {
			check("rotated", rep.AllRotatedMs, t.rotated)
		}
		return
	}
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

	events := 0
	byType := map[string]int{}
	it := c.GetWorkflowHistory(ctx, workflows.RotateWorkflowID(ids[0]), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			b.Fatal(err)
		}
		events++
		byType[strings.TrimPrefix(ev.GetEventType().String(), "EVENT_TYPE_")]++
	}
	types := make([]string, 0, len(byType))
	for name, k := range byType {
		types = append(types, fmt.Sprintf("%s %d", name, k))
	}
	sort.Strings(types)
	fmt.Printf("one rotation's history: %d events (%s)\n", events, strings.Join(types, ", "))
}
