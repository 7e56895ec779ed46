// Package grafana builds Keyturn's Grafana dashboard, deploy/grafana/keyturn.json, with
// the Grafana Foundation SDK. The JSON file is what operators load; this code is where
// it is edited: `go test ./deploy/grafana -run TestDashboardFile -update` writes the file
// again, and the same test fails while the file and the code disagree. Nothing in the
// keyturn binary imports this package.
//
// Every query reads the metrics a Keyturn worker exports on /metrics (README,
// "Telemetry"); tests/dashboard_test.go checks each one with promtool and against the
// metric names a real worker exports.
package grafana

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// UID is the dashboard's fixed UID, so links to it survive a re-import.
const UID = "keyturn"

// Variables every query may use. The datasource is chosen on the dashboard, so one file
// fits every Grafana; job is the scrape job of the workers ("keyturn", as the alert rules
// expect).
const (
	varDatasource = "datasource"
	varJob        = "job"
	varInstance   = "instance"
	varKind       = "kind"
	varSecret     = "secret"
)

// Label matchers of the queries. The per-secret and per-incident gauges come from every
// worker alike, so they are not filtered by worker and are taken as the max over workers.
const (
	job             = `job="$job"`
	jobInstance     = `job="$job", instance=~"$instance"`
	jobInstanceKind = `job="$job", instance=~"$instance", kind=~"$kind"`
)

// Dashboard builds the dashboard.
func Dashboard() (dashboard.Dashboard, error) {
	b := &builder{}
	d := dashboard.NewDashboardBuilder("Keyturn").
		Uid(UID).
		Description("Keyturn credential rotation: rotations by outcome, secret age against policy, overdue secrets, outstanding revokes, step latency, incidents and worker health.").
		Tags([]string{"keyturn"}).
		Editable().
		Refresh("1m").
		Time("now-24h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		WithVariable(dashboard.NewDatasourceVariableBuilder(varDatasource).Label("Data source").Type("prometheus")).
		WithVariable(dashboard.NewTextBoxVariableBuilder(varJob).Label("Job").
			Description("The scrape job of the Keyturn workers (the alert rules expect keyturn).").
			DefaultValue(str("keyturn")).Current(option("keyturn"))).
		WithVariable(b.queryVariable(varInstance, "Worker", `label_values(up{job="$job"}, instance)`)).
		WithVariable(b.queryVariable(varKind, "Kind", `label_values(keyturn_rotation_step_duration_seconds_count{job="$job"}, kind)`)).
		WithVariable(b.queryVariable(varSecret, "Secret", `label_values(keyturn_secret_age_seconds{job="$job"}, secret_id)`))

	for _, row := range []struct {
		title  string
		panels func() []cog.Builder[dashboard.Panel]
	}{
		{"Overview", b.overview},
		{"Rotations", b.rotations},
		{"Secrets", b.secrets},
		{"Steps", b.stepPanels},
		{"Incidents", b.incidents},
		{"Workers", b.workers},
	} {
		d.WithRow(dashboard.NewRowBuilder(row.title).Id(b.id()))
		for _, p := range row.panels() {
			d.WithPanel(p)
		}
	}
	out, err := d.Build()
	if err != nil {
		return dashboard.Dashboard{}, fmt.Errorf("build the Keyturn dashboard: %w", err)
	}
	return out, nil
}

// overview: one number each, red or orange when someone should look.
func (b *builder) overview() []cog.Builder[dashboard.Panel] {
	return []cog.Builder[dashboard.Panel]{
		b.stat("Workers up", "Workers Prometheus scrapes successfully (alert KeyturnWorkerDown).", "none", steps(red, level{1, green}),
			instant("A", `sum(up{job="$job"})`)),
		b.stat("Overdue secrets", "Secrets older than their policy's maximum age, or with no current version (alert KeyturnSecretOverdue).", "none", steps(green, level{1, red}),
			instant("A", `count(max by (secret_id) (keyturn_secret_overdue{job="$job"}) == 1) or vector(0)`)),
		b.stat("Revokes outstanding", "Secrets with a version that should be revoked and may still work: a revoke or rollback a rotation retries, or a rotation that ended revoke_failed (alert KeyturnRevokeOutstanding).", "none", steps(green, level{1, orange}),
			instant("A", `sum(max by (secret_id) (keyturn_revokes_outstanding{job="$job"})) or vector(0)`)),
		b.stat("Incidents running", "Incidents in progress (alert KeyturnIncidentRunning).", "none", steps(green, level{1, red}),
			instant("A", `count(max by (incident_id) (keyturn_incident_running{job="$job"}) == 1) or vector(0)`)),
		b.stat("Failed rotations", "Rotations that ended failed or revoke_failed in the time range (alert KeyturnRotationFailed). "+firstCount, "none", steps(green, level{1, red}),
			instant("A", `round(sum(increase(keyturn_rotations_total{job="$job", outcome=~"failed|revoke_failed"}[$__range]))) or vector(0)`)),
		b.stat("Since the last sweep", "Time since a worker last finished the secret sweep that sets age, overdue and outstanding revokes (alert KeyturnSweepFailing).", "s", steps(green, level{3600, red}),
			instant("A", `time() - max(keyturn_sweep_last_success_timestamp_seconds{job="$job"} > 0)`)),
	}
}

func (b *builder) rotations() []cog.Builder[dashboard.Panel] {
	return []cog.Builder[dashboard.Panel]{
		b.timeseries("Rotations by outcome", "Rotations finished, by outcome, per interval.", "none", 14,
			query("A", `sum by (outcome) (increase(keyturn_rotations_total{`+jobInstance+`}[$__rate_interval]))`, "{{outcome}}")).
			DrawStyle(common.GraphDrawStyleBars).FillOpacity(80).
			Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).
			Overrides(outcomeColors()),
		b.table("Rotations in the time range", "By kind, trigger and outcome. "+firstCount, 10,
			tableQuery("A", `round(sum by (kind, trigger, outcome) (increase(keyturn_rotations_total{`+jobInstance+`}[$__range]))) > 0`)).
			WithTransformation(organize(map[string]string{"kind": "Kind", "trigger": "Trigger", "outcome": "Outcome", "Value": "Rotations"}, "Time")),
	}
}

func (b *builder) secrets() []cog.Builder[dashboard.Panel] {
	onlyOverdue := `and on (secret_id) (max by (secret_id) (keyturn_secret_overdue{job="$job"}) == 1)`
	return []cog.Builder[dashboard.Panel]{
		b.table("Overdue secrets", "Secrets older than their policy's maximum age, or with no current version (no age). `keyturn status <secret-id>` shows the last rotation.", 12,
			tableQuery("A", `max by (secret_id, kind, owner) (keyturn_secret_overdue{job="$job"}) == 1`),
			tableQuery("B", `max by (secret_id, kind, owner) (keyturn_secret_age_seconds{job="$job"}) `+onlyOverdue),
			tableQuery("C", `max by (secret_id, kind, owner) (keyturn_secret_max_age_seconds{job="$job"}) `+onlyOverdue)).
			Unit("s").
			WithTransformation(dashboard.DataTransformerConfig{Id: "merge", Options: map[string]any{}}).
			WithTransformation(organize(map[string]string{"secret_id": "Secret", "kind": "Kind", "owner": "Owner", "Value #B": "Age", "Value #C": "Maximum age"}, "Time", "Value #A")),
		b.bargauge("Age against maximum age", "The 20 secrets closest to (or past) their policy's maximum age, as a share of it. Secrets without a policy are not shown.", 12,
			instant("A", `topk(20, max by (secret_id) (keyturn_secret_age_seconds{job="$job"}) / max by (secret_id) (keyturn_secret_max_age_seconds{job="$job"}))`).LegendFormat("{{secret_id}}")).
			Unit("percentunit").Min(0).Max(1.2).
			Thresholds(thresholds(steps(green, level{0.8, yellow}, level{1, red}))),
		b.timeseries("Secret age against maximum age", "Each secret's age (solid) and its policy's maximum age (dashed); the Secret variable picks the secrets.", "s", 16,
			query("A", `max by (secret_id) (keyturn_secret_age_seconds{job="$job", secret_id=~"$secret"})`, "{{secret_id}} age"),
			query("B", `max by (secret_id) (keyturn_secret_max_age_seconds{job="$job", secret_id=~"$secret"})`, "{{secret_id}} maximum age")).
			OverrideByQuery("B", dashed()),
		b.table("Revokes outstanding", "Secrets with a version that should be revoked and may still work, by state: retrying (a rotation retries the revoke: `keyturn retry-now <secret-id>` tries at once), rollback (it retries a rollback), failed (it ended revoke_failed and nothing retries it: contain the secret with an incident). `keyturn status <secret-id>` names the version.", 8,
			tableQuery("A", `max by (secret_id, kind, owner, state) (keyturn_revokes_outstanding{job="$job"}) > 0`)).
			WithTransformation(organize(map[string]string{"secret_id": "Secret", "kind": "Kind", "owner": "Owner", "state": "State"}, "Time", "Value")),
	}
}

func (b *builder) stepPanels() []cog.Builder[dashboard.Panel] {
	buckets := `keyturn_rotation_step_duration_seconds_bucket{` + jobInstanceKind + `}[$__rate_interval]`
	return []cog.Builder[dashboard.Panel]{
		b.timeseries("Step latency, p50 and p95", "One attempt of each rotation step (a retry is another attempt), for the kinds chosen; p50 dashed.", "s", 12,
			query("A", `histogram_quantile(0.5, sum by (step, le) (rate(`+buckets+`)))`, "{{step}} p50"),
			query("B", `histogram_quantile(0.95, sum by (step, le) (rate(`+buckets+`)))`, "{{step}} p95")).
			OverrideByQuery("A", dashed()),
		b.timeseries("Failed step attempts", "Attempts of a step that returned an error, per interval (alert KeyturnStepErrorsHigh).", "none", 12,
			query("A", `sum by (kind, step) (increase(keyturn_rotation_step_duration_seconds_count{`+jobInstanceKind+`, result="error"}[$__rate_interval]))`, "{{kind}} {{step}}")),
	}
}

func (b *builder) incidents() []cog.Builder[dashboard.Panel] {
	containment := `keyturn_incident_containment_duration_seconds_bucket{job="$job"}[$__range]`
	return []cog.Builder[dashboard.Panel]{
		b.table("Running incidents", "`keyturn incident status <incident-id>` follows one (alert KeyturnIncidentRunning).", 6,
			tableQuery("A", `max by (incident_id) (keyturn_incident_running{job="$job"}) == 1`)).
			WithTransformation(organize(map[string]string{"incident_id": "Incident"}, "Time", "Value")),
		b.stat("Incidents by outcome", "Incidents finished in the time range (alert KeyturnIncidentFailed). "+firstCount, "none", steps(blue),
			instant("A", `round(sum by (outcome) (increase(keyturn_incidents_total{job="$job"}[$__range])))`).LegendFormat("{{outcome}}")).
			Span(6).Height(6).TextMode(common.BigValueTextModeValueAndName),
		b.stat("Incident secrets by state", "Secrets incidents contained, rotated or failed to handle in the time range. "+firstCount, "none", steps(blue),
			instant("A", `round(sum by (state) (increase(keyturn_incident_secrets_total{job="$job"}[$__range])))`).LegendFormat("{{state}}")).
			Span(6).Height(6).TextMode(common.BigValueTextModeValueAndName).
			OverrideByName("failed", []dashboard.DynamicConfigValue{{Id: "color", Value: map[string]any{"mode": "fixed", "fixedColor": red}}}),
		b.stat("Containment time, p50 and p95", "How long containment took, over the incidents of the time range.", "s", steps(blue),
			instant("A", `histogram_quantile(0.5, sum by (le) (increase(`+containment+`)))`).LegendFormat("p50"),
			instant("B", `histogram_quantile(0.95, sum by (le) (increase(`+containment+`)))`).LegendFormat("p95")).
			Span(6).Height(6).TextMode(common.BigValueTextModeValueAndName),
	}
}

func (b *builder) workers() []cog.Builder[dashboard.Panel] {
	return []cog.Builder[dashboard.Panel]{
		b.timeseries("Pollers", "Poll requests in flight per worker and task type; 0 means the worker cannot reach Temporal or every slot is busy (alert KeyturnNoWorkerPolling).", "none", 8,
			query("A", `sum by (instance, poller_type) (temporal_num_pollers{`+jobInstance+`})`, "{{instance}} {{poller_type}}")),
		b.timeseries("Free task slots", "Free task slots per worker and worker type; 0 for long means new rotations wait (alert KeyturnWorkerSaturated).", "none", 8,
			query("A", `min by (instance, worker_type) (temporal_worker_task_slots_available{`+jobInstance+`})`, "{{instance}} {{worker_type}}")),
		b.timeseries("Sweep errors", "Reads the secret sweep could not make, by source, per interval (alert KeyturnSweepFailing).", "none", 8,
			query("A", `sum by (source) (increase(keyturn_sweep_errors_total{`+job+`}[$__rate_interval]))`, "{{source}}")),
	}
}

// firstCount is said under every panel that counts events with increase().
const firstCount = "A worker's first count of a series (after a start) is not seen by increase()."
