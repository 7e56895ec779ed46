package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// Notifier delivers an event to the routes that take it (the worker's binding.Resolver,
// over the inventory's notifications block).
type Notifier interface {
	Notify(ctx context.Context, e notify.Event) []notify.Delivery
}

// NotifyInput is what a rotation reports: references and words, never material.
type NotifyInput struct {
	// Type is the event type (notify.RotationFailed, ...).
	Type     string    `json:"type"`
	SecretID secret.ID `json:"secretId"`
	Kind     string    `json:"kind,omitempty"`
	Step     string    `json:"step,omitempty"`
	Outcome  string    `json:"outcome,omitempty"`
	// Error is the rotation's error as the workflow already shows it (material-free).
	Error string `json:"error,omitempty"`
	// Gate is the revoke gate's state, for revoke_held and revoke_released.
	Gate *GateNotice `json:"gate,omitempty"`
}

// GateNotice is what the workflow tells a revoke gate event: the uses by handles only.
type GateNotice struct {
	State     string         `json:"state"`
	Since     time.Time      `json:"since"`
	HeldSince time.Time      `json:"heldSince,omitzero"`
	Checked   string         `json:"checked,omitempty"`
	Uses      []rotators.Use `json:"uses,omitempty"`
	LastError string         `json:"lastError,omitempty"`
}

// NotifyResult says how the event fared on each route that took it.
type NotifyResult struct {
	// EventID is the event's ID, derived from the workflow, run, step and outcome, so a
	// retried activity sends the same ID and receivers can drop the duplicate.
	EventID   string   `json:"eventId,omitempty"`
	Delivered []string `json:"delivered,omitempty"`
	// Failed names each route that did not take it, with the reason (no URL, no key).
	Failed []string `json:"failed,omitempty"`
}

// Notify sends a rotation's event to the inventory's webhooks. A webhook that is down is
// reported in the result, never as an error: a notification must not fail or hold up the
// rotation it reports on (the sender's own retries and deadline bound it).
func (a *Activities) Notify(ctx context.Context, in NotifyInput) (NotifyResult, error) {
	if a.notifier == nil {
		return NotifyResult{}, nil
	}
	info := activity.GetInfo(ctx)
	e := notify.Event{
		Type: notify.Type(in.Type), Time: info.StartedTime,
		SecretID: in.SecretID, Kind: in.Kind, Step: in.Step, Outcome: in.Outcome,

		WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
	}
	if in.Error != "" {
		e.ErrorMessage = notify.ErrorText(errors.New(in.Error))
	}
	if g := in.Gate; g != nil {
		e.RevokeGate = &notify.RevokeGate{State: g.State, Since: g.Since, HeldSince: g.HeldSince, Checked: g.Checked, Uses: g.Uses, UsesTotal: len(g.Uses),
			LastError: notify.ErrorText(errorOrNil(g.LastError))}
	}
	if b, err := a.resolve(ctx, in.SecretID); err == nil {
		e.Tags, e.Owner = b.Tags, b.Owner
		if e.Kind == "" {
			e.Kind = b.Kind
		}
	}
	return a.deliver(ctx, e), nil
}

// errorOrNil makes an error of a message, nil for "".
func errorOrNil(msg string) error {
	if msg == "" {
		return nil
	}
	return errors.New(msg)
}

// deliver seals e and sends it to the routes that take it, reporting each route's fate.
func (a *Activities) deliver(ctx context.Context, e notify.Event) NotifyResult {
	e = e.Seal()
	res := NotifyResult{EventID: e.ID}
	for _, d := range a.notifier.Notify(ctx, e) {
		if d.Err != nil {
			res.Failed = append(res.Failed, fmt.Sprintf("%s: %v", d.Route, d.Err))
			continue
		}
		res.Delivered = append(res.Delivered, d.Route)
	}
	return res
}
