package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/secret"
)

// leaked is one password the attackers hold: a secret's current or previous version.
type leaked struct {
	id    secret.ID
	stage secret.Stage
	credential
}

// attack is attackers logging in with leaked passwords over and over while an incident
// runs, the way a leaked credential is abused: each password is tried until the server
// refuses it. A refused password stays refused (containment removes it; the incident's
// rotation sets new ones), so it is then dropped from the round.
//
// The attackers' rounds are slow on a busy machine (every login is a backend start), so
// their first refusal of a password can come long after the password stopped working. A
// catalog watch beside them (catalogWatch) reads, every 50 ms, whether the server would
// still accept any of the passwords; the attackers' logins then confirm it: none that
// began after that moment may get in.
type attack struct {
	start time.Time
	creds []leaked
	mu    sync.Mutex
	// lastAccepted is when the last login with a leaked password succeeded, and
	// lastAcceptedBegan when that attempt began: the server took its decision in between,
	// so every password was refused from some moment after lastAcceptedBegan. refusedBy is
	// when every leaked password had been refused at least once: the other bound.
	lastAccepted      time.Duration
	lastAcceptedBegan time.Duration
	refusedBy         time.Duration
	accepted          int
	attempts          int
	// endedLoggingIn counts the accepted logins the server ended before the session was
	// ready for queries.
	endedLoggingIn int
	// round is how long one attacker took for a round over the passwords left, at most:
	// the attackers' own resolution of refusedBy.
	round time.Duration
	// acceptedBegan is when each accepted login began.
	acceptedBegan []time.Duration
	// catalogAt is when the catalog watch first read that no leaked password could log
	// in (0 if it never did), catalogErr why it stopped otherwise.
	catalogAt  time.Duration
	catalogErr error
	// err is a login that failed otherwise than by refusal (the server down, a timeout).
	err  error
	done chan struct{}
}

// checkLeaked fails unless every password in creds logs in: an attack on passwords that
// never worked would prove nothing.
func checkLeaked(ctx context.Context, b *testing.B, env *testenv.Env, creds []leaked) {
	b.Helper()
	for _, c := range creds {
		if err := login(ctx, env, c.role, c.password); err != nil {
			b.Fatalf("%s %s (version %d, role %s) does not log in before the incident: %v", c.id, c.stage, c.version, c.role, err)
		}
	}
}

// startAttack starts attackers goroutines that share the passwords in creds and try them
// until each has been refused or ctx ends, and the catalog watch; times are counted from
// start.
func startAttack(ctx context.Context, env *testenv.Env, creds []leaked, attackers int, start time.Time) *attack {
	a := &attack{start: start, creds: creds, done: make(chan struct{})}
	// Each attacker owns a share of the passwords, so every one is tried again as soon as
	// its attacker has gone round the others.
	shares := make([][]int, attackers)
	for i := range creds {
		shares[i%attackers] = append(shares[i%attackers], i)
	}
	var wg sync.WaitGroup
	for _, share := range shares {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.run(ctx, env, share)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		w := &catalogWatch{verdicts: map[verdictKey]bool{}}
		at, err := w.refusedAt(ctx, env, creds, start)
		a.mu.Lock()
		defer a.mu.Unlock()
		a.catalogAt, a.catalogErr = at, err
	}()
	go func() { wg.Wait(); close(a.done) }()
	return a
}

func (a *attack) run(ctx context.Context, env *testenv.Env, left []int) {
	for len(left) > 0 && ctx.Err() == nil {
		roundStart := time.Now()
		kept := left[:0]
		for _, i := range left {
			if o := a.try(ctx, env, i); o == outcomeAccepted || o == outcomeFailed {
				kept = append(kept, i)
			}
		}
		left = kept
		a.mu.Lock()
		a.round = max(a.round, time.Since(roundStart))
		a.mu.Unlock()
	}
}

// outcome is what one try of a password found.
type outcome int

const (
	outcomeAccepted outcome = iota // the login got in
	outcomeRefused                 // the server refused the password
	outcomeFailed                  // failed otherwise (the server down, a timeout)
)

// try logs in once with password i and records what the server said.
func (a *attack) try(ctx context.Context, env *testenv.Env, i int) outcome {
	c := a.creds[i]
	began := time.Since(a.start)
	in, err := tryLogin(ctx, env, c.role, c.password)
	at := time.Since(a.start)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.attempts++
	switch {
	case in || endedByServer(err):
		// In, even if containment ended the session a moment later. A session ended while
		// it was logging in was in as well: the sessions Keyturn ends are found by user
		// name, which a backend shows only once its password was accepted.
		if !in {
			a.endedLoggingIn++
		}
		a.accepted++
		a.lastAccepted = max(a.lastAccepted, at)
		a.lastAcceptedBegan = max(a.lastAcceptedBegan, began)
		a.acceptedBegan = append(a.acceptedBegan, began)
		return outcomeAccepted
	case refused(err):
		a.refusedBy = max(a.refusedBy, at)
		return outcomeRefused
	case ctx.Err() == nil && a.err == nil:
		a.err = fmt.Errorf("%s %s (role %s): %w", c.id, c.stage, c.role, err)
	}
	return outcomeFailed
}

// wait waits until every password has been refused, or until timeout, and reports
// whether every one was.
func (a *attack) wait(timeout time.Duration) bool {
	select {
	case <-a.done:
		return a.err == nil
	case <-time.After(timeout):
		return false
	}
}

// refused reports a login the server refused: a wrong password (28P01) or a role that
// may not log in (28000).
func refused(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000")
}

// endedByServer reports a session the server ended (an administrator's
// pg_terminate_backend: 57P01), after its password was accepted.
func endedByServer(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "57P01"
}

// seedInGrace rotates every secret once more with the engine's own steps (create, test,
// promote), without revoking the version it replaces: the state of secrets in their
// grace period, where the previous password still logs in too. It is the worst case for
// containment, which must refuse both.
func seedInGrace(ctx context.Context, r activities.Resolver, ids []secret.ID, parallel int) error {
	sem := make(chan struct{}, parallel)
	errs := make(chan error, len(ids))
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs <- rotateWithoutRevoke(ctx, r, id)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func rotateWithoutRevoke(ctx context.Context, r activities.Resolver, id secret.ID) error {
	bind, err := r.Resolve(ctx, id)
	if err != nil {
		return err
	}
	s := bind.Steps
	token := secret.VersionToken("seed-grace/" + string(id))
	for _, step := range []func() error{
		func() error { _, err := s.Create(ctx, token); return err },
		func() error { return s.Test(ctx, token) },
		func() error { _, err := s.Promote(ctx, token); return err },
	} {
		if err := step(); err != nil {
			return fmt.Errorf("seed %s: %w", id, err)
		}
	}
	return nil
}

// leakedOf reads the current and previous passwords of ids.
func leakedOf(b *testing.B, env *testenv.Env, ids []secret.ID) []leaked {
	b.Helper()
	var out []leaked
	for _, id := range ids {
		for _, stage := range []secret.Stage{secret.StageCurrent, secret.StagePrevious} {
			out = append(out, leaked{id: id, stage: stage, credential: credentialAt(b, env, id, stage)})
		}
	}
	return out
}

// acceptedAfterCatalog counts the logins that got in although they began after the
// catalog watch read that none could: each would contradict it. Call it once the attack
// is done.
func (a *attack) acceptedAfterCatalog() int {
	k := 0
	for _, began := range a.acceptedBegan {
		if a.catalogAt > 0 && began > a.catalogAt {
			k++
		}
	}
	return k
}

// refusedFrom is the moment from which every leaked password was refused, as well as the
// benchmark can tell: the catalog watch's, when it read one and no later login
// contradicted it, else the attackers' own bound. Call it once the attack is done.
func (a *attack) refusedFrom() time.Duration {
	if a.catalogAt > 0 && a.acceptedAfterCatalog() == 0 {
		return a.catalogAt
	}
	return a.refusedBy
}
