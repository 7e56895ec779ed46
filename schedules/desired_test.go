package schedules

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDesire(t *testing.T) {
	inv := Source{
		Path:          "inv.yaml",
		CatchupWindow: 20 * time.Minute,
		Secrets: []SourceSecret{
			{ID: "prod/db", Kind: "postgres", Schedule: "0 3 * * 1", Timezone: "Europe/Berlin", Window: 30 * time.Minute, Line: 4},
			{ID: "prod/none", Kind: "postgres", Line: 9},
			{ID: "prod/cert", Kind: "localca", Certificate: true, Line: 12},
			{ID: "prod/cert-cron", Kind: "vaultpki", Certificate: true, Schedule: "@monthly", Line: 16},
		},
	}
	got, err := Desire(inv)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range got {
		ids = append(ids, d.ScheduleID)
	}
	want := []string{"keyturn/prod/db", "keyturn-renew/prod/cert", "keyturn/prod/cert-cron", "keyturn-renew/prod/cert-cron"}
	if strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Fatalf("schedules %v, want %v", ids, want)
	}
	db := got[0]
	if db.Window != 30*time.Minute || db.CatchupWindow != 20*time.Minute || db.Timezone != "Europe/Berlin" || db.spec.GetJitter().AsDuration() != 30*time.Minute {
		t.Errorf("cron schedule: %+v", db)
	}
	if db.spec.GetTimezoneName() != "Europe/Berlin" || len(db.spec.GetStructuredCalendar()) != 1 || db.spec.GetStructuredCalendar()[0].GetComment() != "0 3 * * 1" {
		t.Errorf("cron spec: %v", db.spec)
	}
	renew := got[1]
	if !renew.RenewalCheck || renew.Kind != "localca" || len(renew.spec.GetInterval()) != 1 || renew.spec.GetInterval()[0].GetInterval().AsDuration() != RenewalCheckEvery {
		t.Errorf("renewal check: %+v %v", renew, renew.spec)
	}
	if renew.Window != 0 {
		t.Errorf("a renewal check has no jitter, got %s", renew.Window)
	}
	if id, ok := Managed(renew.ScheduleID); !ok || id != "prod/cert" {
		t.Errorf("Managed(%q) = %q, %v", renew.ScheduleID, id, ok)
	}
}

func TestDesireRefusesBadSpecsWithTheirPlace(t *testing.T) {
	inv := Source{Path: "inv.yaml", CatchupWindow: 15 * time.Minute, Secrets: []SourceSecret{
		{ID: "a", Kind: "postgres", Schedule: "*/5 * * * *", Line: 3},
		{ID: "b", Kind: "postgres", Schedule: "0 3 1 * 1", Line: 7},
		{ID: "c", Kind: "postgres", Schedule: "0 3 * * *", Line: 11},
	}}
	got, err := Desire(inv)
	var problems SpecProblems
	if !errors.As(err, &problems) || len(problems) != 2 || got != nil {
		t.Fatalf("want two problems and nothing desired, got %v, %v", got, err)
	}
	msg := err.Error()
	for _, w := range []string{"inv.yaml:3: secrets[0].schedule", "at most once an hour", "inv.yaml:7: secrets[1].schedule", "restrict only one"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q:\n%s", w, msg)
		}
	}
}

func TestRecordHashFollowsWhatApplyDecides(t *testing.T) {
	base := Desired{SecretID: "a", Kind: "postgres", Spec: "0 3 * * 1", Timezone: "UTC", CatchupWindow: 15 * time.Minute}
	if base.record().Hash != base.record().Hash {
		t.Fatal("the hash must be stable")
	}
	for name, change := range map[string]func(*Desired){
		"spec":     func(d *Desired) { d.Spec = "0 4 * * 1" },
		"timezone": func(d *Desired) { d.Timezone = "Europe/Berlin" },
		"window":   func(d *Desired) { d.Window = time.Minute },
		"catch-up": func(d *Desired) { d.CatchupWindow = time.Hour },
		"kind":     func(d *Desired) { d.Kind = "localca" },
	} {
		d := base
		change(&d)
		was, now := base.record(), d.record()
		if was.Hash == now.Hash {
			t.Errorf("%s: hash unchanged", name)
		}
		if ch := now.changes(was); len(ch) != 1 || !strings.Contains(ch[0], "changed from") {
			t.Errorf("%s: changes %v", name, ch)
		}
	}
	d := base
	d.Spec = "@weekly"
	if got := d.record().changes(base.record()); got[0] != `spec changed from "0 3 * * 1" to "@weekly"` {
		t.Errorf("spec change reads %q", got[0])
	}
}

func TestRenewalNextMatchesTheInterval(t *testing.T) {
	d := Desired{SecretID: "prod/cert", RenewalCheck: true}
	from := time.Date(2026, 11, 23, 10, 59, 0, 0, time.UTC)
	next, err := d.Next(from, 3)
	if err != nil {
		t.Fatal(err)
	}
	phase := renewalPhase("prod/cert")
	for i, n := range next {
		if !n.After(from) || n.Sub(next[0]) != time.Duration(i)*RenewalCheckEvery || n.Sub(n.Truncate(time.Hour)) != phase {
			t.Fatalf("next %v: want hourly times at minute %v after %v", next, phase, from)
		}
	}
	if next[0].Sub(from) > RenewalCheckEvery {
		t.Fatalf("first check %v is more than an hour after %v", next[0], from)
	}
}
