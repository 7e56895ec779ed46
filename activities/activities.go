// Package activities adapts the rotation steps to Temporal: it resolves a secret ID to its
// rotator and store, runs one step, heartbeats while the step works, and maps errors to
// the types the workflow's retry policies know. Inputs and results are references only;
// material is read from and written to the store inside the activity and never returned.
package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/telemetry"
)

// Binding is what a secret ID resolves to on this worker.
type Binding struct {
	Kind string
	// Tags are the secret's tags in the inventory, for notification routing.
	Tags []string
	// Owner is the team or person the inventory names for the secret, for notification
	// routing; empty when it names none.
	Owner string
	Grace time.Duration
	// RevokeGate, when set, makes a rotation wait after the grace period until the target
	// shows the previous version unused (see RevokeGate); nil revokes when grace ends.
	RevokeGate *RevokeGate
	Steps      rotation.Steps
	// RecordCurrentFirst, when set, refuses a rotation while the store has no current
	// version, and says how to record the credential in use. A target whose one login is
	// changed in place (Postgres, single strategy) would otherwise be left unable to log
	// in by a failed first rotation: there would be nothing to restore.
	RecordCurrentFirst string
}

// Resolver finds the rotator and store of a secret, typically from the worker's inventory.
// It returns an error wrapping ErrUnknownSecret for an ID it does not manage.
type Resolver interface {
	Resolve(ctx context.Context, id secret.ID) (Binding, error)
}

// Activities are the rotation steps as Temporal activities.
type Activities struct {
	resolver Resolver
	// heartbeatEvery is how often a running step tells the server it is alive, so a worker
	// killed mid-step is noticed within the heartbeat timeout instead of the step timeout.
	heartbeatEvery time.Duration
	// instruments record each step's latency and result (never a secret or a token).
	instruments *telemetry.Instruments
	// notifier delivers events to the inventory's webhooks; nil sends none.
	notifier Notifier
	// auditor records every step and reported event; nil records none.
	auditor Auditor
	// urgent is held while a containment batch runs, so the worker's background work
	// stands aside; nil holds nothing.
	urgent Urgency
}

// NewActivities builds the activities over a resolver. Without WithInstruments they
// record no metrics.
func NewActivities(r Resolver, opts ...Option) *Activities {
	a := &Activities{resolver: r, heartbeatEvery: defaultHeartbeatEvery, instruments: telemetry.NoInstruments()}
	// The worker's resolver (binding.Resolver) also knows where to send notifications.
	a.notifier, _ = r.(Notifier)
	for _, o := range opts {
		o(a)
	}
	return a
}

// Option adjusts NewActivities. (Not a method: every exported method of Activities is
// registered as an activity.)
type Option func(*Activities)

// WithInstruments makes the activities record every step's latency and result on i.
func WithInstruments(i *telemetry.Instruments) Option {
	return func(a *Activities) {
		if i != nil {
			a.instruments = i
		}
	}
}

// PlanInput names the secret to rotate.
type PlanInput struct {
	SecretID secret.ID `json:"secretId"`
	// Cause is who asked for the rotation and why, for the audit trail.
	Cause *Cause `json:"cause,omitempty"`
}

// PlanResult is what the workflow needs to know before it starts changing things.
type PlanResult struct {
	Kind  string        `json:"kind"`
	Grace time.Duration `json:"grace"`
	// Current is the version consumers use now, nil when the secret has none yet.
	Current *secret.Version `json:"current,omitempty"`
	// PurgeAfter is set for kinds whose revocation is made final in a second step (an IAM
	// key is deactivated, then deleted): how long to wait between the two.
	PurgeAfter *time.Duration `json:"purgeAfter,omitempty"`
	// RevokeGate is the secret's revoke gate from the inventory; nil when it does not
	// wait for the previous version to be unused.
	RevokeGate *RevokeGate `json:"revokeGate,omitempty"`
}

// StepInput names a secret and one of its versions.
type StepInput struct {
	SecretID secret.ID           `json:"secretId"`
	Token    secret.VersionToken `json:"token"`
	Cause    *Cause              `json:"cause,omitempty"`
}

func (in StepInput) ref() stepRef {
	return stepRef{secretID: in.SecretID, cause: in.Cause, token: in.Token}
}

// RevokeInput names the version to revoke and the one that must keep working.
type RevokeInput struct {
	SecretID secret.ID       `json:"secretId"`
	Version  secret.Version  `json:"version"`
	Keep     *secret.Version `json:"keep,omitempty"`
	Cause    *Cause          `json:"cause,omitempty"`
	// Finished, when the revoke is the rotation's last step, is the rotation's end as
	// the workflow would report it (Audit): recorded once the revoke has succeeded, so
	// the run needs no audit activity of its own to end.
	Finished *AuditInput `json:"finished,omitempty"`
}

func (in RevokeInput) ref() stepRef {
	return stepRef{secretID: in.SecretID, cause: in.Cause, version: &in.Version}
}

// RollbackInput names the failed version and the one to restore.
type RollbackInput struct {
	SecretID secret.ID           `json:"secretId"`
	Token    secret.VersionToken `json:"token"`
	// Failed is the new version as Create reported it; nil when Create did not finish.
	Failed  *secret.Version `json:"failed,omitempty"`
	Restore *secret.Version `json:"restore,omitempty"`
	// Since is when the rotation's Create step began (zero if it never did): a kind that
	// finds by age what a Create that gave up minted looks back to it (rotators.Sweeper).
	Since time.Time `json:"since,omitempty"`
	// Until is when the Create step ended, plus a margin: what was made after it is not
	// this rotation's (rotators.MintRequest.Until).
	Until time.Time `json:"until,omitempty"`
	Cause *Cause    `json:"cause,omitempty"`
}

func (in RollbackInput) ref() stepRef {
	return stepRef{secretID: in.SecretID, cause: in.Cause, token: in.Token, version: in.Failed}
}

// Plan resolves the secret and reads its current version.
func (a *Activities) Plan(ctx context.Context, in PlanInput) (PlanResult, error) {
	b, err := a.resolve(ctx, in.SecretID)
	if err != nil {
		return PlanResult{}, err
	}
	started := time.Now()
	current, err := b.Steps.Current(ctx)
	a.instruments.StepDone(ctx, b.Kind, stepName(ctx), time.Since(started), err)
	if err != nil {
		return PlanResult{}, classify(err)
	}
	if current == nil && b.RecordCurrentFirst != "" {
		return PlanResult{}, classify(fmt.Errorf("%w: %s has no current version in its store, and a failed first rotation would leave its login unusable with nothing to restore: %s", rotators.ErrInvalidConfig, in.SecretID, b.RecordCurrentFirst))
	}
	// The rotation's first record: who asked, why, and the version in use. Plan is a
	// local activity; its ID in the run is stable, and "rotation" names the event.
	ref := stepRef{secretID: in.SecretID, cause: in.Cause, version: current}
	if err := a.record(ctx, b, ref, audit.Record{ID: stepEventID(ctx, "rotation", "started"), Event: audit.EventRotationStarted}); err != nil {
		return PlanResult{}, err
	}
	res := PlanResult{Kind: b.Kind, Grace: b.Grace, Current: current, RevokeGate: b.RevokeGate}
	if after, ok := b.Steps.PurgeAfter(); ok {
		res.PurgeAfter = &after
	}
	return res, nil
}

// Create makes (or finds, on a retry) the pending version for the token. For a kind whose
// target mints the credential, the rotator finds on the target what an earlier attempt
// of this rotation minted but never got into the store, and removes it before it mints
// (rotators.MintRequest.Known and Since). Since is the time the workflow first scheduled
// this activity, which the server records once for all its attempts, so every attempt
// of one rotation looks back to the same instant; it is passed from the second attempt
// on.
//
// The new credential's handles (never its material) also go into the heartbeat the
// moment the target has made it, and the next attempt passes them on as Abandoned. That
// is only a hint: the SDK throttles heartbeats, and a worker killed right after the
// target answered never sends one.
func (a *Activities) Create(ctx context.Context, in StepInput) (rotation.CreateResult, error) {
	return run(ctx, a, in.ref(), func(ctx context.Context, s rotation.Steps, hb *beat) (rotation.CreateResult, error) {
		var minted MintedRecord
		if activity.HasHeartbeatDetails(ctx) {
			_ = activity.GetHeartbeatDetails(ctx, &minted)
		}
		abandoned := minted.Minted
		if len(abandoned) > 0 {
			// Carry the record on: this attempt's heartbeats replace it, and if this attempt
			// dies too, the next one must still know what the first one minted.
			hb.record(minted)
		}
		onMinted := func(md map[string]string) {
			minted.Minted = append(minted.Minted, md)
			hb.record(minted)
		}
		opts := []rotation.CreateOption{rotation.WithMintHooks(abandoned, onMinted)}
		// The first attempt of the step has no earlier attempt to clean up after, so it
		// is spared the search (a list of every certificate on a Vault mount) and its
		// risk (taking a credential made by someone else during the rotation for an
		// orphan).
		if activity.IsActivity(ctx) && activity.GetInfo(ctx).Attempt > 1 {
			opts = append(opts, rotation.WithMintSince(activity.GetInfo(ctx).ScheduledTime))
		}
		return s.Create(ctx, in.Token, opts...)
	})
}

// MintedRecord is the heartbeat of a Create step: the metadata of every credential a
// target minted for the token so far, oldest first. Metadata holds handles (a key ID, a
// certificate serial), never material. It is a hint the next attempt passes on; the
// target's own state is what decides (see Create).
type MintedRecord struct {
	Minted []map[string]string `json:"minted,omitempty"`
}

// Test proves the version works against the target.
func (a *Activities) Test(ctx context.Context, in StepInput) error {
	_, err := run(ctx, a, in.ref(), func(ctx context.Context, s rotation.Steps, _ *beat) (struct{}, error) {
		return struct{}{}, s.Test(ctx, in.Token)
	})
	return err
}

// Promote makes the version current.
func (a *Activities) Promote(ctx context.Context, in StepInput) (rotation.PromoteResult, error) {
	return run(ctx, a, in.ref(), func(ctx context.Context, s rotation.Steps, _ *beat) (rotation.PromoteResult, error) {
		return s.Promote(ctx, in.Token)
	})
}

// RevokeResult says what a Revoke did besides revoking.
type RevokeResult struct {
	// EndRecorded: the activity recorded RevokeInput.Finished. A worker older than the
	// field returns no result, so the workflow records the end itself.
	EndRecorded bool `json:"endRecorded,omitempty"`
}

// Revoke disables the old version on the target, and then records in.Finished, if set.
func (a *Activities) Revoke(ctx context.Context, in RevokeInput) (RevokeResult, error) {
	_, err := run(ctx, a, in.ref(), func(ctx context.Context, s rotation.Steps, _ *beat) (struct{}, error) {
		return struct{}{}, s.Revoke(ctx, in.Version, in.Keep)
	})
	if err != nil || in.Finished == nil || a.auditor == nil {
		return RevokeResult{}, err
	}
	// The revoke is done: a trail that cannot take the record now does not undo it or
	// fail the step. The workflow is told, and records the end itself as it would
	// have without this field (Audit, bounded and only logged on failure).
	hb := a.heartbeat(ctx)
	defer hb.stop()
	if err := a.recordEvent(ctx, *in.Finished); err != nil {
		activity.GetLogger(ctx).Warn("rotation end not recorded with the revoke; the workflow records it", "error", ErrorMessage(err))
		return RevokeResult{}, nil
	}
	return RevokeResult{EndRecorded: activity.IsActivity(ctx)}, nil
}

// ContainInput names the secret to contain.
type ContainInput struct {
	SecretID secret.ID `json:"secretId"`
	Cause    *Cause    `json:"cause,omitempty"`
}

func (in ContainInput) ref() stepRef { return stepRef{secretID: in.SecretID, cause: in.Cause} }

// ContainResult reports a containment and when it finished: from then on every version
// that existed is refused by the target.
type ContainResult struct {
	rotation.ContainResult
	ContainedAt time.Time `json:"containedAt"`
}

// Contain revokes every version of the secret on the target, current included, and ends
// their sessions.
func (a *Activities) Contain(ctx context.Context, in ContainInput) (ContainResult, error) {
	return run(ctx, a, in.ref(), func(ctx context.Context, s rotation.Steps, _ *beat) (ContainResult, error) {
		res, err := s.Contain(ctx)
		return ContainResult{ContainResult: res, ContainedAt: time.Now()}, err
	})
}

// Supersede cleans up after a rotation an incident stopped: its pending version and the
// previous version are revoked, keeping current, and nothing is promoted.
func (a *Activities) Supersede(ctx context.Context, in ContainInput) error {
	_, err := run(ctx, a, in.ref(), func(ctx context.Context, s rotation.Steps, _ *beat) (struct{}, error) {
		return struct{}{}, s.Supersede(ctx)
	})
	return err
}

// Purge makes the revocation of the old version final (deletes a deactivated key).
func (a *Activities) Purge(ctx context.Context, in RevokeInput) error {
	_, err := run(ctx, a, in.ref(), func(ctx context.Context, s rotation.Steps, _ *beat) (struct{}, error) {
		return struct{}{}, s.Purge(ctx, in.Version, in.Keep)
	})
	return err
}

// Rollback undoes a failed or aborted rotation from observed state. Before it changes
// anything it records the failed version in its heartbeat, so a retry still knows what
// to revoke once the pending stage has been discarded. When the store never got the
// failed version, what its Create minted is swept from the target, looking back to
// in.Since.
func (a *Activities) Rollback(ctx context.Context, in RollbackInput) (rotation.RollbackResult, error) {
	var failed *secret.Version
	res, err := run(ctx, a, in.ref(), func(ctx context.Context, s rotation.Steps, hb *beat) (rotation.RollbackResult, error) {
		failed = in.Failed
		var recorded secret.Version
		if activity.HasHeartbeatDetails(ctx) && activity.GetHeartbeatDetails(ctx, &recorded) == nil && recorded.Token != "" {
			failed = &recorded
		}
		if failed == nil {
			observed, err := s.Inspect(ctx, in.Token)
			if err != nil {
				return rotation.RollbackResult{}, err
			}
			failed = observed
		}
		if failed != nil {
			hb.record(*failed)
		}
		return s.Rollback(ctx, in.Token, failed, in.Restore, rotation.WithSweepSince(in.Since), rotation.WithSweepUntil(in.Until))
	})
	if err != nil && failed != nil {
		// The heartbeat keeps the failed version across this activity's retries; the
		// error's details keep it for the workflow, whose next rollback is a new activity
		// and would otherwise find nothing once the pending stage was discarded.
		return res, withFailedVersion(err, *failed)
	}
	return res, err
}

// withFailedVersion attaches the version a rollback was undoing to its error, keeping
// the error's type and retryability.
func withFailedVersion(err error, failed secret.Version) error {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		return err
	}
	return temporal.NewApplicationErrorWithOptions(appErr.Message(), appErr.Type(), temporal.ApplicationErrorOptions{
		NonRetryable: appErr.NonRetryable(),
		Details:      []any{failed},
	})
}

// FailedVersionOf returns the version a failed Rollback activity was undoing, if its error
// carries one.
func FailedVersionOf(err error) (secret.Version, bool) {
	v, ok := DetailsOf[secret.Version](err)
	return v, ok && v.Token != ""
}

func (a *Activities) resolve(ctx context.Context, id secret.ID) (Binding, error) {
	if err := id.Validate(); err != nil {
		return Binding{}, classify(fmt.Errorf("%w: %w", ErrUnknownSecret, err))
	}
	b, err := a.resolver.Resolve(ctx, id)
	if err != nil {
		return Binding{}, classify(err)
	}
	return b, nil
}

// run resolves the secret and runs one step while heartbeating, so a worker that dies
// mid-step is detected by the heartbeat timeout and the step retried elsewhere. Each
// attempt's latency and result is recorded by kind and step.
//
// Each step leaves audit records: started before it changes anything, then succeeded, or
// failed for each failed attempt. A start or success that cannot be recorded fails the
// attempt (retried): the step is idempotent, and nothing is changed unrecorded.
func run[T any](ctx context.Context, a *Activities, ref stepRef, step func(context.Context, rotation.Steps, *beat) (T, error)) (T, error) {
	var zero T
	b, err := a.resolve(ctx, ref.secretID)
	if err != nil {
		return zero, err
	}
	if err := a.stepStarted(ctx, b, ref); err != nil {
		return zero, err
	}
	hb := a.heartbeat(ctx)
	defer hb.stop()
	started := time.Now()
	out, err := step(ctx, b.Steps, hb)
	a.instruments.StepDone(ctx, b.Kind, stepName(ctx), time.Since(started), err)
	if err != nil {
		err = classify(err)
		a.stepFailed(ctx, b, ref, err)
		return zero, err
	}
	if err := a.stepSucceeded(ctx, b, ref, out); err != nil {
		return zero, err
	}
	return out, nil
}

// stepName is the step a running activity performs, as the step label shows it: its
// activity type in lower case ("create", "revoke").
func stepName(ctx context.Context) string {
	if !activity.IsActivity(ctx) {
		return "unknown"
	}
	return strings.ToLower(activity.GetInfo(ctx).ActivityType.Name)
}

// beat heartbeats a running step every heartbeatEvery, always with the latest progress
// details, since each heartbeat replaces the details the server keeps.
type beat struct {
	ctx     context.Context
	mu      sync.Mutex
	details []any
	done    chan struct{}
}

func (a *Activities) heartbeat(ctx context.Context) *beat { return startBeat(ctx, a.heartbeatEvery) }

// defaultHeartbeatEvery is how often a running activity heartbeats when its heartbeat
// timeout does not ask for more often.
const defaultHeartbeatEvery = 2 * time.Second

// startBeat heartbeats the activity of ctx every `every`, or more often when its
// heartbeat timeout needs it, until stop; outside an activity it does nothing.
func startBeat(ctx context.Context, every time.Duration) *beat {
	b := &beat{ctx: ctx, done: make(chan struct{})}
	if !activity.IsActivity(ctx) {
		close(b.done)
		return b
	}
	// Beat at least four times per heartbeat timeout: a step whose timeout is short (an
	// incident's containment, so a dead worker's share is retried within seconds) must
	// not be taken for dead while it works.
	if timeout := activity.GetInfo(ctx).HeartbeatTimeout; timeout > 0 && timeout/4 < every {
		every = timeout / 4
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-b.done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				b.mu.Lock()
				details := b.details
				b.mu.Unlock()
				activity.RecordHeartbeat(ctx, details...)
			}
		}
	}()
	return b
}

// record sets the progress details and sends them at once.
func (b *beat) record(details ...any) {
	if !activity.IsActivity(b.ctx) {
		return
	}
	b.mu.Lock()
	b.details = details
	b.mu.Unlock()
	activity.RecordHeartbeat(b.ctx, details...)
}

func (b *beat) stop() {
	select {
	case <-b.done:
	default:
		close(b.done)
	}
}
