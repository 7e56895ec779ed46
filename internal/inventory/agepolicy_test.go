package inventory

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseDurationDays(t *testing.T) {
	for text, want := range map[string]time.Duration{
		"90d": 90 * Day, "1d12h": 36 * time.Hour, "0d": 0, "-2d": -2 * Day, "2d30m": 2*Day + 30*time.Minute,
		"15m": 15 * time.Minute, "1h30m": 90 * time.Minute,
	} {
		got, err := ParseDuration(text)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", text, got, err, want)
		}
	}
	for _, bad := range []string{"d", "1.5d", "d12h", "1d-1h", "1d+1h", "+1d", "1dd", "1d2", "100001d", "1w"} {
		if got, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", bad, got)
		}
	}
}

// ageInventory is an inventory of secrets that exercise every source of an age policy.
const ageInventory = `version: 1
defaults:
  owner: platform
secrets:
  - id: own/max-age
    kind: postgres
    owner: payments
    schedule: "0 3 * * 1"
    max_age: 30d
    postgres: {host: localhost, sslmode: disable, role: a, database: d, admin: {username: k, password: "env:PW"}}
  - id: weekly/schedule
    kind: postgres
    schedule: "0 3 * * 1"
    window: 30m
    postgres: {host: localhost, sslmode: disable, role: b, database: d, admin: {username: k, password: "env:PW"}}
  - id: monthly/schedule
    kind: postgres
    schedule: "0 3 1 * *"
    postgres: {host: localhost, sslmode: disable, role: c, database: d, admin: {username: k, password: "env:PW"}}
  - id: yearly/schedule
    kind: postgres
    schedule: "@yearly"
    postgres: {host: localhost, sslmode: disable, role: d, database: d, admin: {username: k, password: "env:PW"}}
  - id: no/policy
    kind: postgres
    postgres: {host: localhost, sslmode: disable, role: e, database: d, admin: {username: k, password: "env:PW"}}
  - id: cert/lifetime
    kind: localca
    localca: {ca_cert: "file:ca#c", ca_key: "file:ca#k", crl_file: ca.crl, common_name: x.localhost, ttl: 30d}
  - id: cert/weekly
    kind: localca
    schedule: "@weekly"
    localca: {ca_cert: "file:ca#c", ca_key: "file:ca#k", crl_file: ca.crl, common_name: y.localhost, ttl: 90d}
`

func TestAgePolicy(t *testing.T) {
	inv, err := Load(writeTemp(t, ageInventory))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		owner  string
		maxAge time.Duration
		source string
	}{
		"own/max-age":      {"payments", 30 * Day, PolicyMaxAge},
		"weekly/schedule":  {"platform", 14*Day + 30*time.Minute, PolicySchedule},
		"monthly/schedule": {"platform", 62 * Day, PolicySchedule}, // July to August, 31 days
		"yearly/schedule":  {"platform", 2 * 366 * Day, PolicySchedule},
		"no/policy":        {"platform", 0, ""},
		// 30d, renewed at 2/3 (20d): overdue halfway to expiry, at 25d.
		"cert/lifetime": {"platform", 25 * Day, PolicyCertificate},
		// The shorter of the two: the weekly schedule's 14d, not the lifetime's 75d.
		"cert/weekly": {"platform", 14 * Day, PolicySchedule},
	}
	for _, s := range inv.Secrets {
		w := want[string(s.ID)]
		p := s.AgePolicy()
		if s.Owner != w.owner || p.MaxAge != w.maxAge || p.Source != w.source {
			t.Errorf("%s: owner %q, policy %v from %q (%s); want %q, %v from %q", s.ID, s.Owner, p.MaxAge, p.Source, p.Why, w.owner, w.maxAge, w.source)
		}
		if (p.Source == "") != (p.Why == "") {
			t.Errorf("%s: a policy says where it comes from, and only a policy: %+v", s.ID, p)
		}
	}
}

func TestDefaultsMaxAge(t *testing.T) {
	inv, err := Load(writeTemp(t, `version: 1
defaults:
  max_age: 90d
secrets:
  - id: a/b
    kind: postgres
    postgres: {host: localhost, sslmode: disable, role: a, database: d, admin: {username: k, password: "env:PW"}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if p := inv.Secrets[0].AgePolicy(); p.MaxAge != 90*Day || p.Source != PolicyDefaults {
		t.Errorf("policy %+v, want 90d from the defaults block", p)
	}
}

func TestAgePolicyProblems(t *testing.T) {
	pg := func(id, role, extra string) string {
		return "  - id: " + id + "\n    kind: postgres\n" + extra +
			"    postgres: {host: localhost, sslmode: disable, database: d, role: " + role + ", admin: {username: k, password: \"env:PW\"}}\n"
	}
	tests := map[string]struct {
		text string
		want []string // "line field: fragment"
	}{
		"owner with a space, and not displayable": {
			text: "version: 1\ndefaults:\n  owner: \"bad\\u0007owner\"\nsecrets:\n" + pg("a/b", "a", "    owner: team payments\n"),
			want: []string{`3 defaults.owner: "badowner" is not a valid owner`, `7 secrets[0].owner: "team payments" is not a valid owner; use a team or person name without spaces`},
		},
		"bare number, zero, too short": {
			text: "version: 1\ndefaults:\n  max_age: 0s\nsecrets:\n" + pg("a/b", "a", "    max_age: 30\n") + pg("c/d", "c", "    max_age: 10m\n"),
			want: []string{"3 defaults.max_age: must be a positive duration", "7 secrets[0].max_age: a bare number has no unit", "11 secrets[1].max_age: must be at least 1h"},
		},
		"shorter than the schedule allows": {
			text: "version: 1\nsecrets:\n" + pg("a/b", "a", "    schedule: \"0 3 * * 1\"\n    window: 30m\n    max_age: 7d\n"),
			want: []string{"7 secrets[0].max_age: max_age 7d is shorter than the 7d between two scheduled runs plus the 30m window, so the secret would be overdue before every run; set max_age on this secret to at least 7d30m, or remove it to derive 14d30m from the schedule"},
		},
		"inherited, shorter than the schedule allows": {
			text: "version: 1\ndefaults:\n  max_age: 2d\nsecrets:\n" + pg("a/b", "a", "    schedule: \"@weekly\"\n"),
			want: []string{"7 secrets[0].schedule: max_age 2d (from the defaults block, line 3) is shorter than the 7d between two scheduled runs, so"},
		},
		"longer than the certificate lives": {
			text: "version: 1\nsecrets:\n  - id: c/t\n    kind: localca\n    max_age: 60d\n    localca: {ca_cert: \"file:ca#c\", ca_key: \"file:ca#k\", crl_file: ca.crl, common_name: x.localhost, ttl: 30d}\n",
			want: []string{"5 secrets[0].max_age: max_age 60d is longer than the certificate's ttl 30d, so it would expire before it counts as overdue; set max_age on this secret to at most 30d"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Load(writeTemp(t, tc.text))
			if err == nil {
				t.Fatal("Load accepted the inventory")
			}
			probs := problemsOf(t, err)
			var got []string
			for _, p := range probs {
				got = append(got, strconv.Itoa(p.Line)+" "+p.Field+": "+p.Message)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("problem %d:\n got %s\nwant %s...", i, got[i], w)
				}
			}
		})
	}
}

func TestLongestGap(t *testing.T) {
	for spec, want := range map[string]time.Duration{
		"0 * * * 1-5": 49 * time.Hour,          // Friday 23:00 to Monday 00:00
		"@yearly":     366 * Day,               // across a 29th of February
		"0 * 29 2 *":  4*365*Day + 1*time.Hour, // 2028-02-29 23:00 to 2032-02-29 00:00, minus the 23 hours
		"0 3 * * 1":   7 * Day,
		"0 * * 1-6 *": 184*Day + time.Hour, // 30 June 23:00 to 1 January 00:00
	} {
		s := Secret{Schedule: spec, Timezone: "UTC"}
		start := time.Now()
		gap, ok := s.scheduleGap()
		if !ok || gap != want {
			t.Errorf("longest gap of %q = %v, %v; want %v", spec, gap, ok, want)
		}
		if took := time.Since(start); took > time.Second {
			t.Logf("longest gap of %q took %v", spec, took)
		}
	}
}
