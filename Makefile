# Keyturn's developer entry points. `make test` is what CI runs (.ci/run).
GO       ?= go
export GOTOOLCHAIN := local
export GOFLAGS     := -buildvcs=false

.PHONY: dev build build-prod tools test test-short vet bench bench-incident bench-incident-cli bench-incident-kill bench-incident-scale bench-scheduled bench-consumers record-histories clean

# TEMPORAL=postgres runs the benchmarks on the Temporal server's own binary persisted in
# PostgreSQL (built by `make tools`), the layout production uses, instead of the embedded
# server: `make bench-incident N=1000 TEMPORAL=postgres`. (CI runs the end-to-end check
# TestOnTemporalPersistedInPostgres on it; the rest of the suite uses the embedded one.)
ifdef TEMPORAL
export KEYTURN_TEST_TEMPORAL := $(TEMPORAL)
endif

build: ## the keyturn binary in ./bin
	$(GO) build -o bin/keyturn ./cmd/keyturn

# The production build, what deploy/Dockerfile builds: keyturn without `keyturn dev` (the
# embedded Temporal server and Web UI): 65 MB instead of 234 MB, and a worker whose
# peak resident memory is about 90 MiB lower.
build-prod:
	$(GO) build -tags nodev -o bin/keyturn-prod ./cmd/keyturn

# Test servers that are not part of the product, each from its own nested module: a real
# Vault (BUSL-licensed, never linked into bin/keyturn), and the Temporal server's own
# binaries, which tests and benchmarks run persisted in PostgreSQL as production does
# (internal/harness/temporalpg). The Go build cache makes rebuilds take seconds; the
# first build takes about 5 minutes.
tools:
	$(GO) build -C tools/vaultdev -o ../../bin/vaultdev .
	$(GO) build -C tools/temporalserver -o ../../bin/temporal-server go.temporal.io/server/cmd/server
	$(GO) build -C tools/temporalserver -o ../../bin/temporal-sql-tool go.temporal.io/server/cmd/tools/sql

vet:
	$(GO) vet ./...
	$(GO) vet -tags nodev ./internal/cli ./cmd/keyturn
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)

# Every test, against real servers: an embedded Temporal server and throwaway PostgreSQL
# clusters with scram-sha-256 started from the installed binaries. Under CI=true a missing
# dependency fails the run instead of skipping.
test: vet tools
	$(GO) test -count=1 -timeout 45m -p 2 ./...
	cd deploy/check && $(GO) vet ./... && $(GO) test -count=1 -timeout 10m ./...

# Unit tests only (no servers).
test-short:
	$(GO) test -count=1 -short ./...

# Benchmarks: a no-op 4-activity workflow against a real Postgres rotation in one process;
# the cost of telemetry: the same rotation with telemetry off and on, interleaved in one
# run, then `keyturn worker` processes with and without it for memory and CPU (the bench
# builds the binary). How to read the figures: README, "Development".
bench:
	$(GO) test -run '^$$' -bench . -benchtime 40x -timeout 20m ./tests/bench/

# The incident playbook in contain mode over N Postgres roles of a scram-sha-256 cluster:
# time until every old credential is refused and every new one promoted, wall time,
# history events, then a check on the server. `make bench-incident N=10000`; P sets the
# incident's parallelism; BENCH_FLAGS adds go test flags (e.g. -cpuprofile cpu.out).
N ?= $(or $(KEYTURN_BENCH_INCIDENT_N),1000)
P ?= $(KEYTURN_BENCH_INCIDENT_PARALLELISM)
bench-incident:
	KEYTURN_BENCH_INCIDENT_N=$(N) KEYTURN_BENCH_INCIDENT_PARALLELISM=$(P) \
		$(GO) test -run '^$$' -bench '^BenchmarkIncident$$' -benchtime 1x -count 1 -timeout 60m $(BENCH_FLAGS) ./tests/bench/

# The same incident as an operator runs it: `keyturn incident start` and one `keyturn
# worker` process, with the attackers; the worker's memory and CPU. CLI_N roles.
# CONTAIN_ONLY=1 stops once the scope is contained (the incident is terminated before its
# rotations, most of a 10,000-role run): `make bench-incident-cli CLI_N=10000 CONTAIN_ONLY=1`.
CLI_N ?= 1000
bench-incident-cli:
	KEYTURN_BENCH_CLI_N=$(CLI_N) KEYTURN_BENCH_CLI_CONTAIN_ONLY=$(CONTAIN_ONLY) \
		$(GO) test -run '^$$' -bench '^BenchmarkIncidentCLI$$' -benchtime 1x -count 1 -timeout 60m $(BENCH_FLAGS) ./tests/bench/

# Containment when a worker dies: two `keyturn worker` processes, a contain incident over
# KILL_N roles twice, the second time with the worker running a ContainBatch SIGKILLed;
# the time until every old credential is refused each way and the ratio.
KILL_N ?= 300
bench-incident-kill:
	KEYTURN_BENCH_KILL_N=$(KILL_N) \
		$(GO) test -run '^$$' -bench '^BenchmarkIncidentWorkerKilled$$' -benchtime 1x -count 1 -timeout 30m $(BENCH_FLAGS) ./tests/bench/

# Temporal's per-workflow limits at scale (issue 14): a contain incident over SCALE_N
# secrets of the in-memory fake kind on the embedded server; the largest payload against
# the 2 MiB limit, each run's history against 51,200 events and 50 MiB, and the times.
# `make bench-incident-scale SCALE_N=50000`.
SCALE_N ?= 10000
bench-incident-scale:
	KEYTURN_BENCH_SCALE_N=$(SCALE_N) \
		$(GO) test -run '^$$' -bench '^BenchmarkIncidentScale$$' -benchtime 1x -count 1 -timeout 180m $(BENCH_FLAGS) ./tests/bench/

# Sustained scheduled rotations: SCHEDULED_N ScheduledRotate runs (the workflow each
# schedule starts), one per Postgres secret, SCHEDULED_INFLIGHT open at once, against the
# same closed loop of bare parent-and-child workflows; prints rotations per second and the
# ratio to the floor's rate (target at least 0.8). `make bench-scheduled SCHEDULED_N=1000`.
SCHEDULED_N ?= 1000
SCHEDULED_INFLIGHT ?= 100
bench-scheduled:
	KEYTURN_BENCH_SCHEDULED_N=$(SCHEDULED_N) KEYTURN_BENCH_SCHEDULED_INFLIGHT=$(SCHEDULED_INFLIGHT) \
		$(GO) test -run '^$$' -bench '^BenchmarkScheduledSustained$$' -benchtime 1x -count 1 -timeout 60m $(BENCH_FLAGS) ./tests/bench/

# Consumer safety across real rotations (tests/consumerbench, docs/pgbouncer.md): a service
# using consumer/pgxconsumer queries at 200/s directly and through PgBouncer (transaction
# pooling) while ROTATIONS rotations with a 3s grace run back to back, then a naive consumer
# that read its password once across NAIVE_ROTATIONS rotations of its own secret, with
# NAIVE_REVOKE_GATE as that secret's revoke_gate policy (YAML; empty: the benchmark's
# '{wait: until_unused, max_wait: 5s, then: hold, poll: 5s}', which holds each revoke until
# the naive session closes; none: no gate, the control that shows the breakage). Prints a
# table.
ROTATIONS ?= 100
NAIVE_ROTATIONS ?= 3
NAIVE_REVOKE_GATE ?=
bench-consumers:
	KEYTURN_BENCH_CONSUMERS_ROTATIONS=$(ROTATIONS) KEYTURN_BENCH_CONSUMERS_NAIVE_ROTATIONS=$(NAIVE_ROTATIONS) \
	KEYTURN_BENCH_CONSUMERS_NAIVE_REVOKE_GATE='$(NAIVE_REVOKE_GATE)' \
		$(GO) test -run '^$$' -bench '^BenchmarkConsumers$$' -benchtime 1x -count 1 -timeout 60m $(BENCH_FLAGS) ./tests/consumerbench/

# Re-record the workflow histories that the replay tests check determinism against.
record-histories:
	KEYTURN_RECORD_HISTORIES=1 $(GO) test -count=1 -run 'TestRotateThroughCLI|TestFailedTestRollsBack|TestWorkerKilledMidCreate|TestCanaryNeverLeaks|TestSingleStrategy|TestAdoptLegacyLogin|TestCLINeverReportsASuccessItDidNotGet|TestWrongAdminPasswordRollbackTellsTheTruth|TestIncidentNotifiesAndMeasures|TestRevokeGateHoldsOnARealSession|TestAuditTrailOfRotations|TestScheduledPathsReplay|TestIncidentRotateModeReplays|TestGiveUpOnOutstandingRevokeTellsTheTruth|TestIncidentCancelledWhileRotating|TestIncidentHedgesAStuckContainBatch|TestRotateEachKind' ./tests/

clean:
	rm -rf bin

# Run Keyturn on its embedded defaults: Temporal server + Web UI + worker + file store + demo Postgres.
dev: build
	./bin/keyturn dev
