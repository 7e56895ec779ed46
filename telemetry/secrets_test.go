package telemetry

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestSecretAgeAtCollection: the age gauge is the time of the collection minus the
// version's creation time, not the age the sweep saw: it keeps counting between sweeps.
// A version without a creation time has no age series. The outstanding revokes carry
// their state label.
func TestSecretAgeAtCollection(t *testing.T) {
	reg := prometheus.NewRegistry()
	tel, err := Setup(context.Background(), Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	g, err := NewSecretGauges(tel)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	g.Publish(SweepSample{At: created.Add(time.Hour), Secrets: []SecretSample{
		{ID: "a/dated", Kind: "postgres", Created: &created, RevokesOutstanding: map[string]int{"retrying": 0, "failed": 1}},
		{ID: "a/undated", Kind: "postgres"},
	}})
	g.now = func() time.Time { return created.Add(3 * time.Hour) }
	fs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	ages, revokes := map[string]float64{}, map[string]float64{}
	for _, f := range fs {
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			switch f.GetName() {
			case "keyturn_secret_age_seconds":
				ages[l["secret_id"]] = m.GetGauge().GetValue()
			case "keyturn_revokes_outstanding":
				revokes[l["secret_id"]+"/"+l["state"]] = m.GetGauge().GetValue()
			}
		}
	}
	if len(ages) != 1 || ages["a/dated"] != 3*3600 {
		t.Errorf("want the age at collection, 3h, of a/dated alone; got %v", ages)
	}
	if len(revokes) != 2 || revokes["a/dated/failed"] != 1 || revokes["a/dated/retrying"] != 0 {
		t.Errorf("want one series per state given: %v", revokes)
	}
}
