package inventory

import (
	"fmt"
	"sync"
	"time"

	"github.com/keyturn/keyturn/internal/durtext"
	"github.com/keyturn/keyturn/schedules/cronspec"
)

// Where a secret's age policy comes from (AgePolicy.Source).
const (
	// PolicyMaxAge: the secret's own max_age.
	PolicyMaxAge = "max_age"
	// PolicyDefaults: max_age of the defaults block.
	PolicyDefaults = "defaults.max_age"
	// PolicySchedule: derived from the schedule, twice the longest gap between two of its
	// runs plus the window.
	PolicySchedule = "schedule"
	// PolicyCertificate: derived from the certificate's lifetime, halfway between its
	// renewal point (renew_at) and its expiry (ttl).
	PolicyCertificate = "certificate"
)

// MinMaxAge is the shortest max_age accepted: rotations are at least cronspec.MinInterval
// apart, so anything shorter would make a secret overdue between any two of them.
const MinMaxAge = cronspec.MinInterval

// AgePolicy is how old a secret's current version may get before the secret is overdue.
type AgePolicy struct {
	// MaxAge is zero when the secret has no policy: nothing says how old it may get, so it
	// is never overdue by age (it still is when it has no current version at all).
	MaxAge time.Duration
	// Source is one of the Policy constants; empty when there is no policy.
	Source string
	// Why says in words how MaxAge was found, for `keyturn config validate`.
	Why string
}

// AgePolicy returns the secret's policy, after ApplyDefaults:
//   - max_age as the secret or the defaults block writes it, else
//   - the shorter of what the schedule and the certificate's lifetime give:
//     a schedule allows twice the longest gap between two consecutive runs plus the
//     window, so one missed or failed run is tolerated and two in a row are not;
//     a certificate allows half the way from its renewal point (renew_at of ttl) to its
//     expiry, so there is time to act before it expires;
//   - else no policy.
func (s *Secret) AgePolicy() AgePolicy {
	if s.MaxAge > 0 {
		if s.pos.has("max_age") {
			return AgePolicy{MaxAge: s.MaxAge, Source: PolicyMaxAge, Why: "max_age"}
		}
		return AgePolicy{MaxAge: s.MaxAge, Source: PolicyDefaults, Why: "max_age of the defaults block"}
	}
	var p AgePolicy
	if gap, ok := s.scheduleGap(); ok {
		p = AgePolicy{MaxAge: 2*gap + s.Window, Source: PolicySchedule,
			Why: fmt.Sprintf("schedule: 2 × %s between runs + %s window", durtext.Day(gap), durtext.Day(s.Window))}
	}
	if c := s.certificate(); c != nil && c.TTL > 0 && c.RenewAt > 0 && c.RenewAt < 1 {
		d := time.Duration(float64(c.TTL) * (1 + c.RenewAt) / 2).Round(time.Minute)
		if p.MaxAge == 0 || d < p.MaxAge {
			p = AgePolicy{MaxAge: d, Source: PolicyCertificate,
				Why: fmt.Sprintf("certificate: halfway from renewal (%.0f%% of ttl %s) to expiry", c.RenewAt*100, durtext.Day(c.TTL))}
		}
	}
	return p
}

// certificate is the certificate block of a certificate kind, nil for other kinds.
func (s *Secret) certificate() *Certificate {
	switch {
	case s.VaultPKI != nil:
		return &s.VaultPKI.Certificate
	case s.LocalCA != nil:
		return &s.LocalCA.Certificate
	}
	return nil
}

// scheduleGap is the longest time between two consecutive runs of the secret's schedule;
// false without a schedule or with one that does not parse (Validate reports that).
func (s *Secret) scheduleGap() (time.Duration, bool) {
	if s.Schedule == "" {
		return 0, false
	}
	key := s.Schedule + "\x00" + s.Timezone
	if g, ok := gapCache.Load(key); ok {
		return g.(time.Duration), true
	}
	sched, err := cronspec.Parse(s.Schedule, s.Timezone)
	if err != nil {
		return 0, false
	}
	g, ok := cronspec.LongestGap(sched)
	if ok {
		gapCache.Store(key, g)
	}
	return g, ok
}

// gapCache remembers cronspec.LongestGap per spec and zone: it walks up to a year of runs, and the
// sweep asks for every secret's policy on every pass.
var gapCache sync.Map
