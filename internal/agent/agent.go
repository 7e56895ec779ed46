package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/keyturn/keyturn/consumer"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// Agent renders a configuration's templates from a store. Build it with New; call Pass
// for one round, Once for `--once`, Run to keep going until the context ends.
type Agent struct {
	cfg   *Config
	cache *consumer.Cache
	log   *slog.Logger

	// rendered is, per template, the version its file holds (zero: none yet).
	rendered []secret.Version
	// held and prevHeld are, per template, the material of the version its file holds
	// and of the one before it: what a reload command may print even in a pass that
	// could not read the store, scrubbed from its output.
	held, prevHeld []secret.Material

	// reloadFailures counts reloads that failed in a row; skipPasses is how many passes
	// a pending reload waits before its next attempt (the backoff).
	reloadFailures, skipPasses int

	mu    sync.Mutex
	stale map[secret.ID]staleRead // reads that failed and were served stale this pass
}

// staleRead is what the cache reported when it served a secret's last good value.
type staleRead struct {
	age time.Duration
	err error
}

// PassResult says what one pass did.
type PassResult struct {
	// Written lists the files written, in template order.
	Written []string
	// Failed counts templates whose file could not be brought to the current version
	// (the store could not be read, or the render or write failed). Their files are as
	// they were.
	Failed int
	// Stale counts secrets the store could not be read for, whose files were kept.
	Stale int
	// ReloadErr is the reload's failure, when a reload ran and failed.
	ReloadErr error
	// ReloadPending is true when files are still waiting for a reload after this pass:
	// it failed, or a retry is waiting out its backoff.
	ReloadPending bool
}

// maxReloadBackoff bounds the wait between attempts of a reload that keeps failing. It
// is never given up: a file whose reload is lost serves an old credential until that is
// revoked, so the agent keeps trying (at most this often) and says so in its log.
const maxReloadBackoff = 5 * time.Minute

// New builds an agent over src (consumer.OpenFile, OpenVault or OpenAWS). cfg must come
// from Load or Parse. logger gets secret IDs, paths and versions, never material.
func New(cfg *Config, src consumer.Source, logger *slog.Logger) (*Agent, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n := len(cfg.Templates)
	a := &Agent{cfg: cfg, log: logger, rendered: make([]secret.Version, n), held: make([]secret.Material, n),
		prevHeld: make([]secret.Material, n), stale: map[secret.ID]staleRead{}}
	cache, err := consumer.New(src, consumer.Options{
		TTL:    cfg.Poll,
		Jitter: -1,
		// The agent's answer to an outage is to leave its files alone, which is what
		// serving the last good value amounts to; it never ages out.
		MaxStale:    time.Duration(math.MaxInt64),
		ReadTimeout: cfg.ReadTimeout,
		OnStale: func(id secret.ID, age time.Duration, err error) {
			a.mu.Lock()
			a.stale[id] = staleRead{age: age, err: err}
			a.mu.Unlock()
		},
	})
	if err != nil {
		return nil, err
	}
	a.cache = cache
	return a, nil
}

// Run passes at once and then every Poll until ctx ends, and returns nil then. Failures
// are logged and retried at the next pass; a failed reload is retried with a backoff
// (see Pass).
func (a *Agent) Run(ctx context.Context) error {
	a.start()
	t := time.NewTicker(a.cfg.Poll)
	defer t.Stop()
	for {
		a.Pass(ctx)
		select {
		case <-ctx.Done():
			a.log.Info("agent stopping", "reason", context.Cause(ctx).Error())
			return nil
		case <-t.C:
		}
	}
}

// Once passes once (for an init container, or cron) and returns an error when any file
// could not be brought to the current version or the reload failed. A reload left
// pending by an earlier run (its marker is on disk) is run even when no file changed,
// and its failure is an error again.
func (a *Agent) Once(ctx context.Context) error {
	a.start()
	r := a.Pass(ctx)
	var errs []error
	if r.Failed > 0 {
		errs = append(errs, fmt.Errorf("%d of %d file(s) could not be rendered at the current version; the log above says which and why", r.Failed, len(a.cfg.Templates)))
	}
	if r.ReloadErr != nil {
		errs = append(errs, r.ReloadErr)
	}
	return errors.Join(errs...)
}

// start removes what a crash may have left and logs what the agent does.
func (a *Agent) start() {
	for _, t := range a.cfg.Templates {
		removeStaleTemps(t.Destination)
	}
	reload := "none"
	if a.cfg.Reload != nil {
		reload = a.cfg.Reload.describe()
	}
	a.log.Info("agent started", "config", a.cfg.Path, "store", a.cfg.Store.Type, "templates", len(a.cfg.Templates), "poll", a.cfg.Poll.String(), "reload", reload)
}

// Pass reads every secret once, renders the templates whose version changed (or whose
// file went missing), and runs the reload once when any file was written or a reload is
// pending.
//
// A reload is pending for a file from just before the file is renamed into place until a
// reload succeeds, and that is recorded on disk (pendingMarker), so neither a failed
// reload nor an agent stopped between the write and the reload loses it: the next pass,
// or the next agent, runs it. A failed reload is retried at the next pass, then after 2,
// 4, 8... passes, never more than maxReloadBackoff apart; a new change runs it at once.
func (a *Agent) Pass(ctx context.Context) PassResult {
	var res PassResult
	values, failed := a.read(ctx, &res)
	var b batch
	written := make([]bool, len(a.cfg.Templates))
	for i := range a.cfg.Templates {
		t := &a.cfg.Templates[i]
		if failed[t.Secret] {
			res.Failed++
			continue
		}
		v := values[t.Secret]
		wrote, err := a.renderOne(i, v)
		if err != nil {
			res.Failed++
			a.log.Error("file not rendered; it keeps what it held", "secret", t.Secret, "path", t.Destination,
				"version", v.Version.Number, "file_version", a.rendered[i].Number, "error", err.Error())
			continue
		}
		if wrote {
			written[i] = true
			res.Written = append(res.Written, t.Destination)
			b.add(t)
		}
	}
	if a.cfg.Reload == nil {
		return res
	}
	changed := len(b.files) > 0
	// Files written before (by this agent or one before it) whose reload has not yet
	// succeeded join the batch: the command is told every file it has not yet seen.
	for i := range a.cfg.Templates {
		if t := &a.cfg.Templates[i]; !written[i] && reloadPending(t.Destination) {
			b.add(t)
		}
	}
	switch {
	case len(b.files) == 0:
		a.reloadFailures, a.skipPasses = 0, 0
	case !changed && a.skipPasses > 0:
		a.skipPasses--
		res.ReloadPending = true
		a.log.Warn("reload still pending after a failure; waiting before the next attempt", "reload", a.cfg.Reload.describe(),
			"files", strings.Join(b.files, ","), "failures", a.reloadFailures, "passes_to_wait", a.skipPasses+1)
	default:
		if !changed {
			a.log.Info("reload pending from an earlier attempt; running it", "reload", a.cfg.Reload.describe(), "files", strings.Join(b.files, ","))
		}
		res.ReloadErr = a.reload(ctx, b, values)
		res.ReloadPending = res.ReloadErr != nil
	}
	return res
}

// backoffPasses is how many passes to skip after the nth failure in a row: 0, 1, 3, 7...
// so attempts come 1, 2, 4, 8... polls apart, at most maxReloadBackoff apart.
func (a *Agent) backoffPasses(failures int) int {
	limit := int(maxReloadBackoff/a.cfg.Poll) - 1
	skip := 0
	for n := 1; n < failures && skip < limit; n++ {
		skip = 2*skip + 1
	}
	return max(0, min(skip, limit))
}

// read reads each distinct secret once. A secret that cannot be read is logged with the
// files that keep their content; failed holds the ones that have no value to render.
func (a *Agent) read(ctx context.Context, res *PassResult) (map[secret.ID]consumer.Value, map[secret.ID]bool) {
	values, failed := map[secret.ID]consumer.Value{}, map[secret.ID]bool{}
	a.mu.Lock()
	clear(a.stale)
	a.mu.Unlock()
	for _, t := range a.cfg.Templates {
		id := t.Secret
		if _, done := values[id]; done || failed[id] {
			continue
		}
		// Each pass reads the store: the cache is for sharing one read between the
		// templates of a secret and for its last good value, not for skipping polls.
		a.cache.Invalidate(id)
		v, err := a.cache.Get(ctx, id)
		a.mu.Lock()
		st, wasStale := a.stale[id]
		a.mu.Unlock()
		switch {
		case err != nil:
			failed[id] = true
			msg := "cannot read the secret; its files keep what they held"
			if errors.Is(err, stores.ErrNotFound) {
				msg = "the store has no current version of the secret (check the template's secret: the ID, or the inventory's store.path); its files keep what they held"
			}
			a.log.Error(msg, "secret", id, "paths", a.paths(id), "error", err.Error())
		case wasStale:
			// The last good value is what the files hold already, so nothing is
			// rendered; the files are as old as that read.
			res.Stale++
			a.log.Warn("cannot read the store; files are kept at the last version read", "secret", id, "paths", a.paths(id),
				"version", v.Version.Number, "stale_for", st.age.Round(time.Second).String(), "error", st.err.Error())
			values[id] = v
		default:
			values[id] = v
		}
	}
	return values, failed
}

// paths lists the destinations rendered from id, for log lines.
func (a *Agent) paths(id secret.ID) string {
	var out []string
	for _, t := range a.cfg.Templates {
		if t.Secret == id {
			out = append(out, t.Destination)
		}
	}
	return strings.Join(out, ",")
}

// renderOne brings template i's file to v, reporting whether it wrote it. A version it
// rendered before is not rendered again unless the file has gone; content already on
// disk (an agent restarted over its own files) is not rewritten.
func (a *Agent) renderOne(i int, v consumer.Value) (bool, error) {
	t := &a.cfg.Templates[i]
	prev := a.rendered[i]
	if prev.Number == v.Version.Number && prev.Token == v.Version.Token && prev.Token != "" {
		if _, err := os.Lstat(t.Destination); err == nil {
			return false, nil
		}
		a.log.Warn("file has gone; rendering it again", "secret", t.Secret, "path", t.Destination, "version", v.Version.Number)
	}
	data, err := t.render(v)
	if err != nil {
		return false, err
	}
	if upToDate(t.Destination, data, t.Mode, t.UID, t.GID) {
		a.holds(i, v)
		a.log.Info("file is up to date", "secret", t.Secret, "path", t.Destination, "version", v.Version.Number, "token", string(v.Version.Token))
		return false, nil
	}
	if err := writeAtomic(t.Destination, data, t.Mode, t.UID, t.GID, a.cfg.Reload != nil); err != nil {
		return false, err
	}
	a.log.Info("rendered", "secret", t.Secret, "path", t.Destination, "format", t.Format, "mode", fmt.Sprintf("%04o", t.Mode),
		"version", v.Version.Number, "token", string(v.Version.Token), "previous_version", prev.Number)
	a.holds(i, v)
	return true, nil
}

// holds records that template i's file holds v, keeping the material it held before for
// scrubbing: during the grace period the old credential still works and is worth hiding.
func (a *Agent) holds(i int, v consumer.Value) {
	if prev := a.rendered[i]; (prev.Number != v.Version.Number || prev.Token != v.Version.Token) && a.held[i] != nil {
		a.prevHeld[i] = a.held[i]
	}
	a.held[i] = v.Material
	a.rendered[i] = v.Version
}

// reload runs the reload once for the batch and logs how it went. On success the batch's
// pending markers are removed; on a failure they stay, and the next attempt waits
// backoffPasses passes: running a failing command every poll helps no one, while never
// running it again would leave the service on a credential about to be revoked.
func (a *Agent) reload(ctx context.Context, b batch, values map[secret.ID]consumer.Value) error {
	r := a.cfg.Reload
	start := time.Now()
	out, err := r.run(ctx, b)
	// The command's output is the command's: scrub any value it may have echoed before
	// logging, from this pass's reads and from what every file holds or held before.
	known := make([]secret.Material, 0, len(values)+2*len(a.held))
	for _, v := range values {
		known = append(known, v.Material)
	}
	known = append(append(known, a.held...), a.prevHeld...)
	out = strings.TrimSpace(scrub(out, known...))
	if err != nil {
		a.reloadFailures++
		a.skipPasses = a.backoffPasses(a.reloadFailures)
		a.log.Error("reload failed; the files stay marked and it is tried again (at the next change, a later poll or the next start)",
			"reload", r.describe(), "files", strings.Join(b.files, ","), "failures", a.reloadFailures,
			"next_attempt_in_polls", a.skipPasses+1, "error", err.Error(), "output", out)
		return &ReloadError{What: r.describe(), Err: err, Output: out}
	}
	a.reloadFailures, a.skipPasses = 0, 0
	a.log.Info("reloaded", "reload", r.describe(), "files", strings.Join(b.files, ","), "took", time.Since(start).Round(time.Millisecond).String())
	if out != "" {
		a.log.Debug("reload output", "output", out)
	}
	if err := clearReloadPending(b.files); err != nil {
		// The reload happened; a marker left behind costs one more reload, no more.
		a.log.Warn("reloaded, but a reload-pending marker could not be removed; the next pass reloads again", "error", err.Error())
	}
	return nil
}
