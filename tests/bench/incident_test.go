package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/rotators/postgres"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// The incident benchmark's knobs, read from the environment so `make bench` (which runs
// every benchmark here) skips it and `make bench-incident N=10000` sets it.
const (
	envN           = "KEYTURN_BENCH_INCIDENT_N"
	envParallelism = "KEYTURN_BENCH_INCIDENT_PARALLELISM"
	envPollers     = "KEYTURN_BENCH_INCIDENT_POLLERS"
	envSample      = "KEYTURN_BENCH_INCIDENT_SAMPLE"
	// envAttackers is the number of attacker clients; envAttacked the number of secrets
	// whose current and previous passwords they try.
	envAttackers = "KEYTURN_BENCH_INCIDENT_ATTACKERS"
	envAttacked  = "KEYTURN_BENCH_INCIDENT_ATTACKED"
	// envProfile names a file for a CPU profile of the incident alone (not the setup).
	envProfile = "KEYTURN_BENCH_INCIDENT_CPUPROFILE"
)

// benchPrefix starts the ID of every secret the benchmark makes; the incident selects it.
const benchPrefix = "bench/"

// BenchmarkIncident measures the incident playbook in contain mode over N Postgres
// secrets (alternating twins) of a scram-sha-256 cluster with fsync on. Each secret is
// seeded by the engine's own steps with two versions that both log in (a rotation in its
// grace period: current and previous). While the incident runs, attacker clients keep
// logging in with the current and previous passwords of a sample of the secrets.
//
// Figures: the time until no attacker login succeeds any more (every leaked password
// refused), the incident's own containment time (AllContainedMs), the time until every
// new version is tested and promoted (AllRotatedMs), the wall time and the history
// events. Afterwards, untimed, a sample of secrets is checked on the server: both old
// passwords are refused and the new one logs in. Run with `make bench-incident` (N=1000)
// or `make bench-incident N=10000`. Figures are reported, never asserted; a failed
// secret or a failed check fails the benchmark.
func BenchmarkIncident(b *testing.B) {
	n := envInt(b, envN, 0)
	if n <= 0 {
		b.Skipf("set %s (make bench-incident [N=10000]) to run the incident benchmark", envN)
	}
	parallel := envInt(b, envParallelism, workflows.DefaultIncidentParallelism)
	pollers := envInt(b, envPollers, 2)
	sampleSize := envInt(b, envSample, 50)
	attackers := envInt(b, envAttackers, 4)
	attacked := min(n, envInt(b, envAttacked, 100))
	if n <= 1000 {
		sampleSize = n
	}
	ctx := context.Background()

	// Each secret in flight holds at most one admin or test connection; the verification
	// and the superuser need a few more.
	maxConns := max(300, parallel+100)
	start := time.Now()
	env, ids := testenv.NewBulk(b, testenv.BulkOptions{
		N: n, Prefix: benchPrefix + "s",
		// Durable, as a user's cluster is (the test clusters run with fsync off).
		PostgresSettings: map[string]string{"max_connections": strconv.Itoa(maxConns), "fsync": "on"},
	})
	resolver := env.Resolver(b)
	pr := newProbe(resolver)
	workerOpts := wideWorkerOptions(parallel, pollers)
	probed := workerOpts
	probed.Interceptors = []interceptor.WorkerInterceptor{&activityProbe{p: pr}}
	env.StartWorkerWith(b, pr, probed)
	b.Logf("environment for %d secrets ready in %s", n, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	if err := testenv.SeedVersions(ctx, resolver, ids, 16); err != nil {
		b.Fatalf("seed current versions: %v", err)
	}
	if err := seedInGrace(ctx, resolver, ids, 16); err != nil {
		b.Fatalf("seed second versions: %v", err)
	}
	b.Logf("seeded two versions of %d secrets (current and previous, both logging in) in %s (untimed)", n, time.Since(start).Round(time.Millisecond))

	sample := pickSample(ids, max(sampleSize, attacked))
	old := make([]credential, len(sample))
	oldPrevious := make([]credential, len(sample))
	for i, id := range sample {
		old[i] = currentCredential(b, env, id)
		oldPrevious[i] = credentialAt(b, env, id, secret.StagePrevious)
	}
	leakedCreds := leakedOf(b, env, sample[:attacked])
	checkLeaked(ctx, b, env, leakedCreds)

	pr.reset()
	cpuBefore := sampleCPU(env.Cluster.Port)
	in := workflows.IncidentInput{
		IncidentID: "bench-" + strconv.Itoa(n), Selector: activities.Selector{Prefix: benchPrefix},
		Mode: workflows.ModeContain, Reason: "incident benchmark", Operator: "bench", Parallelism: parallel,
	}
	stopProfile := startProfile(b)
	b.ResetTimer()
	start = time.Now()
	attackCtx, stopAttack := context.WithCancel(ctx)
	defer stopAttack()
	att := startAttack(attackCtx, env, leakedCreds, attackers, start)
	run, err := env.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.IncidentWorkflowID(in.IncidentID), TaskQueue: workflows.TaskQueue,
	}, workflows.IncidentWorkflowName, in)
	if err != nil {
		b.Fatalf("start incident: %v", err)
	}
	// Read before Get: once Get has followed the continue-as-new chain, GetRunID names
	// the last run.
	firstRun := run.GetRunID()
	stopProgress := followProgress(b, env.Client, run.GetID(), start)
	var rep workflows.IncidentReport
	err = run.Get(ctx, &rep)
	wall := time.Since(start)
	b.StopTimer()
	allRefused := att.wait(30 * time.Second)
	stopAttack()
	<-att.done
	stopProfile()
	stopProgress()
	cpu := sampleCPU(env.Cluster.Port).sub(cpuBefore)
	if err != nil {
		b.Fatalf("incident: %v (%d/%d done, %d failed)", err, rep.Done, rep.Total, rep.Failed)
	}
	if rep.Contained != n || rep.Rotated != n || rep.Failed != 0 {
		b.Fatalf("incident: %d contained, %d rotated, %d failed of %d", rep.Contained, rep.Rotated, rep.Failed, n)
	}
	parent := incidentEvents(b, env.Client, run.GetID(), firstRun, start)
	runs, events := parent.runs, parent.events

	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\nN\tparallelism\tcontained s\trotated s\twall s\tevents\truns\t")
	fmt.Fprintf(w, "%d\t%d\t%.2f\t%.2f\t%.2f\t%d\t%d\t\n", n, parallel,
		float64(rep.AllContainedMs)/1000, float64(rep.AllRotatedMs)/1000, wall.Seconds(), events, runs)
	_ = w.Flush()
	writeAttack(att, len(leakedCreds), attacked, attackers, allRefused)
	checkAttack(b, att, allRefused, "the incident ended")
	reportTargets(n, rep, start, att.refusedFrom())
	fmt.Printf("\nCPU during the incident (%.1f s wall, %d cores = %.1f core-s): this process (Temporal server + worker) %.1f s, PostgreSQL %.1f s, machine busy %.0f%%\n",
		wall.Seconds(), runtime.NumCPU(), float64(runtime.NumCPU())*wall.Seconds(), cpu.self.Seconds(), cpu.postgres.Seconds(), 100*cpu.machineBusy.Seconds()/max(cpu.total.Seconds(), 1e-9))
	writeBatches(rep)
	writeParent(parent)
	fmt.Println("\nInside the worker (activity = execution; wait = scheduled to started):")
	pr.write(os.Stdout)
	writeRotations(b, env.Client, sample, rep.StartedAt)

	b.ReportMetric(att.refusedFrom().Seconds(), "refused-s")
	b.ReportMetric(float64(rep.AllContainedMs)/1000, "contained-s")
	b.ReportMetric(float64(rep.AllRotatedMs)/1000, "rotated-s")
	b.ReportMetric(wall.Seconds(), "wall-s")
	b.ReportMetric(float64(events), "events")
	b.ReportMetric(0, "ns/op")

	// Untimed: on the server, each sampled secret's old password is refused, its new one
	// logs in.
	for i, id := range sample {
		checkRefused(b, env, id, old[i])
		checkRefused(b, env, id, oldPrevious[i])
		now := currentCredential(b, env, id)
		if now.version <= old[i].version {
			b.Errorf("%s: current is still version %d", id, now.version)
			continue
		}
		if err := login(ctx, env, now.role, now.password); err != nil {
			b.Errorf("%s: the new credential (version %d, role %s) does not log in: %v", id, now.version, now.role, err)
		}
	}
	fmt.Printf("\nverified on the server for %d of %d secrets: both old passwords refused, new password logs in\n", len(sample), n)

	// The engine's floor, in the same run on the same server: the incident's fan-out with
	// nothing to do, bare children with as many activities as a rotation after the batch
	// containment runs (create, test, promote, revoke), as many at a time, from one parent.
	floorBefore := sampleCPU(env.Cluster.Port)
	floor := measureFanOutFloor(b, env.Client, fanOut{N: n, Parallel: parallel, Activities: 4}, workerOpts)
	floorCPU := sampleCPU(env.Cluster.Port).sub(floorBefore)
	rotated := time.Duration(rep.AllRotatedMs) * time.Millisecond
	fmt.Printf("engine floor in this run: %d bare children of 4 activities, %d at a time, from one parent: %.2f s; "+
		"the incident's rotations were done %.2f s after its start: %.2f times the floor (target 1.3)\n",
		n, parallel, floor.Seconds(), rotated.Seconds(), rotated.Seconds()/floor.Seconds())
	// Where the difference goes: the floor has no target to work on, so PostgreSQL's CPU
	// (the rotations' ALTER ROLEs, each Test's fresh login, the attackers) is all extra.
	writeCPU("the incident", floorCPU, cpu)
	// What the target's work alone costs the ratio on this machine.
	bound := postgresBound(floorCPU, cpu).Seconds()
	fmt.Printf("so even if the engine cost no more CPU than the floor, the floor's CPU plus PostgreSQL's (the attackers' logins in the first seconds included) on %d cores, all busy, take at least %.1f s: %.2f times the floor\n",
		runtime.NumCPU(), bound, bound/floor.Seconds())
	b.ReportMetric(cpu.self.Seconds()/max(floorCPU.self.Seconds(), 1e-9), "process-cpu-vs-floor")
	b.ReportMetric(bound/floor.Seconds(), "ratio-bound-by-postgres")
	b.ReportMetric(floor.Seconds(), "floor-s")
}

// credential is a secret's current version as the store holds it.
type credential struct {
	version  int
	role     string
	password secret.Sensitive
}

func currentCredential(b *testing.B, env *testenv.Env, id secret.ID) credential {
	b.Helper()
	return credentialAt(b, env, id, secret.StageCurrent)
}

// credentialAt is a secret's version at stage as the store holds it.
func credentialAt(b *testing.B, env *testenv.Env, id secret.ID, stage secret.Stage) credential {
	b.Helper()
	v, m, err := env.Store.Read(context.Background(), id, stage)
	if err != nil {
		b.Fatalf("read %s %s: %v", stage, id, err)
	}
	return credential{version: v.Number, role: v.Metadata[postgres.MetadataRole], password: m.Get(postgres.FieldPassword)}
}

// checkRefused fails unless the server refuses the old credential's login: a wrong
// password (28P01) or a role without LOGIN (28000).
func checkRefused(b *testing.B, env *testenv.Env, id secret.ID, c credential) {
	b.Helper()
	err := login(context.Background(), env, c.role, c.password)
	var pgErr *pgconn.PgError
	if err == nil || !errors.As(err, &pgErr) || (pgErr.Code != "28P01" && pgErr.Code != "28000") {
		b.Errorf("%s: the old credential (version %d, role %s) should be refused, got %v", id, c.version, c.role, err)
	}
}

func login(ctx context.Context, env *testenv.Env, user string, password secret.Sensitive) error {
	_, err := tryLogin(ctx, env, user, password)
	return err
}

// tryLogin is login that also says whether the session became ready for queries.
func tryLogin(ctx context.Context, env *testenv.Env, user string, password secret.Sensitive) (in bool, err error) {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=demo sslmode=disable connect_timeout=10", env.Cluster.Host, env.Cluster.Port, user))
	if err != nil {
		return false, err
	}
	cfg.Password = password.Reveal()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, err
	}
	defer conn.Close(ctx)
	var one int
	return true, conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// pickSample returns k IDs chosen at random (all of them when k >= len(ids)), in random
// order, so any prefix of it is a random sample too.
func pickSample(ids []secret.ID, k int) []secret.ID {
	out := slices.Clone(ids)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out[:min(k, len(out))]
}

// parentStats is what the incident's own histories say about how it drove its children.
type parentStats struct {
	runs, events, workflowTasks int
	// startLag is initiated to started of each child (the server creating it); lastStart
	// is when the last child was initiated, after the incident's start.
	startLag  []time.Duration
	lastStart time.Duration
	// taskLatency is each workflow task of the incident, scheduled to completed.
	taskLatency []time.Duration
}

// incidentEvents follows the incident's chain of runs (continue-as-new) and reads their
// histories.
func incidentEvents(b *testing.B, c client.Client, id, runID string, start time.Time) parentStats {
	b.Helper()
	ctx := context.Background()
	var st parentStats
	for runID != "" {
		st.runs++
		next := ""
		initiated := map[int64]time.Time{}
		var taskScheduled time.Time
		it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				b.Fatalf("history of %s run %s: %v", id, runID, err)
			}
			st.events++
			at := ev.GetEventTime().AsTime()
			switch {
			case ev.GetWorkflowExecutionContinuedAsNewEventAttributes() != nil:
				next = ev.GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
			case ev.GetStartChildWorkflowExecutionInitiatedEventAttributes() != nil:
				initiated[ev.GetEventId()] = at
				st.lastStart = max(st.lastStart, at.Sub(start))
			case ev.GetChildWorkflowExecutionStartedEventAttributes() != nil:
				if t, ok := initiated[ev.GetChildWorkflowExecutionStartedEventAttributes().GetInitiatedEventId()]; ok {
					st.startLag = append(st.startLag, at.Sub(t))
				}
			case ev.GetWorkflowTaskScheduledEventAttributes() != nil:
				taskScheduled = at
			case ev.GetWorkflowTaskCompletedEventAttributes() != nil:
				st.workflowTasks++
				if !taskScheduled.IsZero() {
					st.taskLatency = append(st.taskLatency, at.Sub(taskScheduled))
				}
			}
		}
		runID = next
	}
	return st
}

// followProgress prints the incident's progress every 5 seconds until stopped.
func followProgress(b *testing.B, c client.Client, id string, start time.Time) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryProgress)
			var p workflows.IncidentProgress
			if err == nil {
				err = v.Get(&p)
			}
			cancel()
			if err != nil {
				fmt.Printf("  %5.1f s: progress query failed: %v\n", time.Since(start).Seconds(), err)
				continue
			}
			// Counts restart with each run (continue-as-new) from the carried reports.
			fmt.Printf("  %5.1f s: %d/%d done, %d contained, %d rotated, %d failed\n", time.Since(start).Seconds(), p.Done, p.Total, p.Contained, p.Rotated, p.Failed)
		}
	}()
	return func() { close(done); <-finished }
}

// startProfile starts a CPU profile of this process into the file envProfile names, if
// any; the returned function stops it.
func startProfile(b *testing.B) (stop func()) {
	path := os.Getenv(envProfile)
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatalf("%s: %v (not with go test -cpuprofile)", envProfile, err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}

func envInt(b *testing.B, name string, def int) int {
	b.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		b.Fatalf("%s=%q: %v", name, s, err)
	}
	return v
}
