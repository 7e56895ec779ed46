package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/audit/pgsink"
	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/telemetry"
)

// The audit benchmark's sides: a namespace and a secret (with a group role) each, so no
// worker ever takes another side's task.
const (
	fileNamespace = "bench-audit-file"
	pgNamespace   = "bench-audit-pg"
	noAuditSecret = secret.ID("bench/audit-off")
	fileSecret    = secret.ID("bench/audit-file")
	pgSecret      = secret.ID("bench/audit-pg")
)

// BenchmarkAuditOverhead measures what the audit trail costs a real Postgres rotation, in
// one run on one embedded Temporal server: a worker without an audit trail, one writing
// the file sink (`keyturn dev`'s, a flock and an fsync per record) and one writing the
// Postgres sink (production's, one transaction per record on the test cluster, fsync
// off as the test cluster runs). Each iteration runs the bare 4-activity workflow (the
// engine's floor), then one rotation on each side, the order turned every iteration, so
// drift on a loaded machine hits all sides alike.
//
// Figures are reported, never asserted; what is asserted is that the audited sides wrote
// every record of every rotation (ten each, eight for the first) and that their trails
// verify.
func BenchmarkAuditOverhead(b *testing.B) {
	ctx := context.Background()
	env := testenv.New(b, testenv.Options{
		NoWorker:        true,
		ExtraNamespaces: []string{fileNamespace, pgNamespace},
		Secrets: []demo.Secret{
			{ID: noAuditSecret, Strategy: "alternating", Grace: "0s", Target: demo.Target{Role: "bench_audit_off"}},
			{ID: fileSecret, Strategy: "alternating", Grace: "0s", Target: demo.Target{Role: "bench_audit_file"}},
			{ID: pgSecret, Strategy: "alternating", Grace: "0s", Target: demo.Target{Role: "bench_audit_pg"}},
		},
	})
	dsn := env.Cluster.SuperDSN()
	if err := pgsink.Install(ctx, dsn, "", ""); err != nil {
		b.Fatal(err)
	}
	pg, err := pgsink.Open(ctx, dsn, "")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = pg.Close() })
	fileLog, pgLog := env.Audit, &audit.Log{Sink: pg, Signer: env.Audit.Signer}

	off := telemetry.Disabled()
	clients := map[secret.ID]*struct{ run func() time.Duration }{}
	for _, side := range []struct {
		id        secret.ID
		namespace string
		log       *audit.Log
	}{{noAuditSecret, env.Server.Namespace(), nil}, {fileSecret, fileNamespace, fileLog}, {pgSecret, pgNamespace, pgLog}} {
		c := env.DialWith(b, side.namespace, off)
		env.Audit = side.log // StartWorkerOn records to env.Audit, none when nil
		env.StartWorkerOn(b, c, off)
		id := side.id
		clients[id] = &struct{ run func() time.Duration }{func() time.Duration { d, _ := rotateOnce(b, c, id); return d }}
	}
	env.Audit = fileLog
	startNoopWorker(b, env.Client)

	order := []secret.ID{noAuditSecret, fileSecret, pgSecret}
	for range 3 { // warm up connections, caches and the task queues
		runNoop(b, env.Client, noopWorkflow)
		for _, id := range order {
			clients[id].run()
		}
	}
	var noops []time.Duration
	took := map[secret.ID][]time.Duration{}
	iteration := 0
	b.ResetTimer()
	for b.Loop() {
		noops = append(noops, runNoop(b, env.Client, noopWorkflow))
		for i := range order {
			id := order[(i+iteration)%len(order)]
			took[id] = append(took[id], clients[id].run())
		}
		iteration++
	}
	b.StopTimer()

	rotations := iteration + 3
	perRotation := map[secret.ID]float64{}
	for _, side := range []struct {
		id  secret.ID
		log *audit.Log
	}{{fileSecret, fileLog}, {pgSecret, pgLog}} {
		recs, err := side.log.Sink.Records(ctx, audit.Filter{SecretID: side.id})
		if err != nil {
			b.Fatal(err)
		}
		// Ten records a rotation (its start and end, each step's start and success), but
		// eight for the first, which has no previous version to revoke.
		if want := 10*rotations - 2; len(recs) != want {
			b.Fatalf("%s: %d audit records for %d rotations, want %d", side.id, len(recs), rotations, want)
		}
		if rep := audit.Verify(recs, nil, nil, nil); !rep.OK() {
			b.Fatalf("%s: the trail does not verify: %v", side.id, rep.Problems)
		}
		perRotation[side.id] = float64(len(recs)) / float64(rotations)
	}

	floor := summarize(noops)
	writeAuditOverhead(os.Stdout, floor, took, perRotation)
	b.ReportMetric(ms(floor.p50), "noop-p50-ms")
	for id, unit := range map[secret.ID]string{noAuditSecret: "off", fileSecret: "file", pgSecret: "postgres"} {
		b.ReportMetric(ms(summarize(took[id]).p50), unit+"-p50-ms")
	}
	b.ReportMetric(0, "ns/op") // the per-op time mixes four workflows; the metrics above are the figures
}

func writeAuditOverhead(w io.Writer, floor summary, took map[secret.ID][]time.Duration, perRotation map[secret.ID]float64) {
	off := summarize(took[noAuditSecret])
	fmt.Fprintf(w, "\nAudit trail overhead per rotation (%d rotations per side, one run):\n", len(took[noAuditSecret]))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tp50\tp95\tmean\tp50/floor\tp50 - no audit\trecords/rotation\t")
	row := func(name string, s summary, records string) {
		fmt.Fprintf(tw, "%s\t%.1f ms\t%.1f ms\t%.1f ms\t%.2f\t%+.1f ms\t%s\t\n", name, ms(s.p50), ms(s.p95), ms(s.mean),
			float64(s.p50)/float64(floor.p50), ms(s.p50)-ms(off.p50), records)
	}
	row("bare 4-activity workflow (floor)", floor, "")
	row("rotation, no audit trail", off, "0")
	row("rotation, file sink", summarize(took[fileSecret]), fmt.Sprintf("%.1f", perRotation[fileSecret]))
	row("rotation, Postgres sink", summarize(took[pgSecret]), fmt.Sprintf("%.1f", perRotation[pgSecret]))
	_ = tw.Flush()
}
