package workflows

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// changeRevokeGate: after the grace period, a rotation whose secret has a waiting
// revoke_gate waits for the previous version to go unused before revoking it.
const changeRevokeGate = "revoke-gate"

// The gate's checks: each one a short activity, retried a little (a target that does not
// answer for a minute is reported in the status and asked again at the next poll).
var gateCheckOptions = stepOptions(time.Minute, retryPolicy(3, 10*time.Second))

// A gate that holds for days must not fill its history: after gateSteadyChecks checks
// at the policy's poll interval, the interval doubles at each check up to gateMaxPoll
// (or the poll interval, if longer). A week held is then under 1,000 checks, about
// 6,000 history events.
const (
	gateSteadyChecks = 100
	gateMaxPoll      = 15 * time.Minute
)

// errGateStopped is how the gate reports that it stopped without revoking.
var errGateStopped = errors.New("the revoke gate was stopped")

// gated reports whether the rotation passes through the revoke gate: the secret's policy
// waits, there is a previous version to revoke, and containment is not what started it
// (an incident revokes now; that is the point of containment).
func (r *rotateRun) gated(ctx workflow.Context) bool {
	return r.plan.RevokeGate != nil && r.status.PreviousVersion != nil && !r.in.Contain && r.in.IncidentID == "" &&
		r.changed(ctx, changeRevokeGate)
}

// revokeGate waits, after the grace period, until the target shows the previous version
// unused, asking every poll interval with a durable timer between checks. It returns nil
// when the revoke may proceed: the version is idle, max_wait passed and the policy
// revokes anyway, or an operator sent revoke-now. With a holding policy, max_wait
// passing with uses open holds the revoke (outcome revoke_held, a revoke_held
// notification) and the checks go on until one of those happens.
//
// An abort or give-up signal, or a cancellation, stops the gate and returns an error:
// the previous version is not revoked, and nothing is rolled back. The new version has
// been current since the promotion and consumers that moved use it; the gate exists
// because some have not, and restoring the old version would break the ones that moved.
// A check that fails (the target is down) counts as "still in use": the gate never
// revokes on a guess, and max_wait bounds the wait all the same. So does an idle answer
// given before the target's reporting delay has passed (rotators.Usage.NotBefore: IAM
// records a key's use up to hours late): it says only that no use was recorded yet. The
// gate asks again at NotBefore at the latest, and only an idle answer from then on
// releases it. A zero NotBefore, as every result before it existed, releases at once, so
// recorded histories replay unchanged.
func (r *rotateRun) revokeGate(ctx workflow.Context, p activities.RevokeGate) error {
	r.setStep(ctx, StepRevokeGate)
	started := workflow.Now(ctx)
	g := &RevokeGateStatus{State: GateWaiting, Since: started, Until: started.Add(p.MaxWait), Hold: p.Hold}
	r.status.RevokeGate = g
	defer func() {
		g.Ended, g.NextCheck = workflow.Now(ctx), time.Time{}
		r.status.Steps = append(r.status.Steps, StepTiming{Step: StepRevokeGate, Started: started, Duration: g.Ended.Sub(started), Error: g.LastError})
	}()

	revokeNowCh := workflow.GetSignalChannel(ctx, SignalRevokeNow)
	retryCh := workflow.GetSignalChannel(ctx, SignalRetryNow)
	abortCh := workflow.GetSignalChannel(ctx, SignalAbort)
	giveUpCh := workflow.GetSignalChannel(ctx, SignalGiveUp)
	// Signals sent before the gate began were about an earlier step: an operator acts on
	// the gate they saw.
	for _, ch := range []workflow.ReceiveChannel{revokeNowCh, retryCh, giveUpCh, workflow.GetSignalChannel(ctx, SignalSkipGrace)} {
		drain(ch)
	}

	in := activities.CheckUsageInput{SecretID: r.in.SecretID, Version: *r.status.PreviousVersion, Keep: r.status.NewVersion, Since: r.status.PromotedAt}
	delay := p.Poll
	for {
		// Check.
		var res activities.CheckUsageResult
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, gateCheckOptions), acts.CheckUsage, in).Get(ctx, &res)
		now := workflow.Now(ctx)
		g.Checks++
		g.LastCheck = now
		switch {
		case ctx.Err() != nil:
			return r.stopGate(ctx, g, "the rotation was cancelled")
		case err != nil:
			g.LastError = activities.ErrorMessage(err)
		case res.Unsupported:
			g.State, g.LastError, g.Uses = GateUnsupported, "", nil
			return nil
		case res.IdleAt(now):
			g.Checked, g.Uses, g.LastError, g.IdleFrom = res.Checked, nil, "", time.Time{}
			return r.releaseGate(ctx, g, GateIdle)
		case !res.InUse():
			// No use recorded, but the target records uses late (res.NotBefore, from
			// the activity's result, so replay sees the same): not yet evidence of idle.
			// It counts as a use would: wait, and max_wait decides as for one.
			g.Checked, g.Uses, g.LastError, g.IdleFrom = res.Checked, nil, "", res.NotBefore
		default:
			g.Checked, g.Uses, g.LastError, g.IdleFrom = res.Checked, res.Uses, "", time.Time{}
		}

		// Decide: max_wait has passed with the version in use (or unknown).
		if g.State == GateWaiting && !now.Before(g.Until) {
			if !p.Hold {
				g.State = GateRevokedAnyway
				return nil
			}
			g.State, g.HeldSince = GateHeld, now
			r.setOutcome(ctx, OutcomeRevokeHeld)
			r.notifyGate(ctx, notify.RevokeHeld)
		}

		// Wait for the next check, or an operator.
		if g.Checks > gateSteadyChecks {
			delay = min(2*delay, max(gateMaxPoll, p.Poll))
		}
		wait := delay
		if g.State == GateWaiting && g.Until.Sub(now) < wait {
			wait = g.Until.Sub(now) // decide at max_wait, not up to a poll interval later
		}
		if g.IdleFrom.After(now) && g.IdleFrom.Sub(now) < wait {
			wait = g.IdleFrom.Sub(now) // ask again when an idle answer begins to count
		}
		g.NextCheck = now.Add(wait)
		workflow.SetCurrentDetails(ctx, r.details())
		var stop, revokeNow string
		timerCtx, cancelTimer := workflow.WithCancel(ctx)
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(workflow.NewTimer(timerCtx, wait), func(workflow.Future) {})
		sel.AddReceive(retryCh, func(c workflow.ReceiveChannel, _ bool) { r.took(ctx, c, SignalRetryNow) })
		sel.AddReceive(revokeNowCh, func(c workflow.ReceiveChannel, _ bool) { r.took(ctx, c, SignalRevokeNow); revokeNow = SignalRevokeNow })
		sel.AddReceive(abortCh, func(c workflow.ReceiveChannel, _ bool) { r.took(ctx, c, SignalAbort); stop = "an operator aborted" })
		sel.AddReceive(giveUpCh, func(c workflow.ReceiveChannel, _ bool) { r.took(ctx, c, SignalGiveUp); stop = "an operator gave up" })
		sel.Select(ctx)
		cancelTimer()
		switch {
		case ctx.Err() != nil:
			return r.stopGate(ctx, g, "the rotation was cancelled")
		case stop != "":
			return r.stopGate(ctx, g, stop)
		case revokeNow != "":
			return r.releaseGate(ctx, g, GateRevokedByOperator)
		}
	}
}

// releaseGate ends the gate with the revoke proceeding; a held revoke is announced.
func (r *rotateRun) releaseGate(ctx workflow.Context, g *RevokeGateStatus, state string) error {
	held := g.State == GateHeld
	g.State = state
	if held {
		r.status.Outcome = ""
		_ = workflow.UpsertTypedSearchAttributes(ctx, SearchAttrOutcome.ValueUnset())
		r.notifyGate(ctx, notify.RevokeReleased)
	}
	return nil
}

// stopGate ends the gate without revoking: the previous version still works.
func (r *rotateRun) stopGate(ctx workflow.Context, g *RevokeGateStatus, why string) error {
	g.State = GateStopped
	return fmt.Errorf("%w: %s at the revoke gate with %s; nothing was rolled back (the new version is current), and the previous version %d was not revoked: revoke it by hand, or rotate again",
		errGateStopped, why, usesSummary(g), r.status.PreviousVersion.Number)
}

// notifyGate sends a revoke gate event naming the uses, like r.notify sends the others.
func (r *rotateRun) notifyGate(ctx workflow.Context, eventType notify.Type) {
	g := r.status.RevokeGate
	in := activities.NotifyInput{Type: string(eventType), SecretID: r.in.SecretID, Kind: r.status.Kind, Step: StepRevokeGate, Outcome: r.status.Outcome,
		Gate: &activities.GateNotice{State: g.State, Since: g.Since, HeldSince: g.HeldSince, Checked: g.Checked, Uses: g.Uses, LastError: g.LastError}}
	_ = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, notifyOptions), acts.Notify, in).Get(ctx, nil)
}

// usesSummary says what the gate last saw, in words: "2 uses open (app_b from
// 10.0.0.5:5432 since 12:01:05Z, ...)", "no use seen", "no use seen yet; the target
// reports uses late, so idle counts from 16:05:00Z" or "use unknown (last check: ...)".
func usesSummary(g *RevokeGateStatus) string {
	if len(g.Uses) == 0 {
		switch {
		case g.LastError != "":
			return "use unknown (last check failed: " + g.LastError + ")"
		case !g.IdleFrom.IsZero():
			return "no use seen yet; the target reports uses late, so idle counts from " + g.IdleFrom.UTC().Format("2006-01-02 15:04:05Z")
		}
		return "no use seen"
	}
	return fmt.Sprintf("%d use(s) open (%s)", len(g.Uses), DescribeUses(g.Uses, 3))
}

// DescribeUses names up to limit uses in a line: "app_b as orders-api from 10.0.0.5:41000
// since 12:01:05Z", then "and N more".
func DescribeUses(uses []rotators.Use, limit int) string {
	var parts []string
	for i, u := range uses {
		if i == limit {
			parts = append(parts, fmt.Sprintf("and %d more", len(uses)-limit))
			break
		}
		var b strings.Builder
		b.WriteString(cmp.Or(u.User, "unknown user"))
		if u.Application != "" {
			b.WriteString(" as " + u.Application)
		}
		if u.Client != "" {
			b.WriteString(" from " + u.Client)
		}
		if !u.Since.IsZero() {
			b.WriteString(" since " + u.Since.UTC().Format("15:04:05Z"))
		}
		parts = append(parts, b.String())
	}
	return strings.Join(parts, ", ")
}

// gateDetails is the Web UI's line for a waiting or held gate, with the uses named.
func gateDetails(g *RevokeGateStatus, id secret.ID) string {
	var b strings.Builder
	switch g.State {
	case GateHeld:
		why := "with the previous version still in use"
		if len(g.Uses) == 0 {
			why = "before the target showed the previous version idle"
		}
		fmt.Fprintf(&b, "revoke held since %s: max wait ended %s %s", g.HeldSince.UTC().Format("2006-01-02 15:04:05Z"), g.Until.UTC().Format("15:04:05Z"), why)
	default:
		then := "revoke anyway"
		if g.Hold {
			then = "hold"
		}
		fmt.Fprintf(&b, "revoke gate: waiting until the previous version is unused, at most until %s (then %s)", g.Until.UTC().Format("2006-01-02 15:04:05Z"), then)
	}
	fmt.Fprintf(&b, "; %s", usesSummary(g))
	if g.Checked != "" {
		fmt.Fprintf(&b, " in %s", g.Checked)
	}
	if !g.NextCheck.IsZero() {
		fmt.Fprintf(&b, "; next check at %s", g.NextCheck.UTC().Format("15:04:05Z"))
	}
	fmt.Fprintf(&b, " (`keyturn revoke-now %s` revokes at once, `keyturn abort %s` stops without revoking)", id, id)
	return b.String()
}
