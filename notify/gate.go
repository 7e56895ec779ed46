package notify

import (
	"fmt"
	"strings"
	"time"

	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/rotators"
)

// maxGateUses caps the uses a revoke gate event lists: enough to find the consumers that
// have not moved, a bound on what a chat message and a receiver are handed.
const maxGateUses = 20

// RevokeGate is what a revoke_held or revoke_released event says about the rotation's
// revoke gate: the uses of the previous version the target showed, named by handles
// (login, application name, client address, since when), never material.
type RevokeGate struct {
	// State is the gate's state: held in revoke_held; in revoke_released, how the hold
	// ended (idle, revoked_by_operator).
	State string `json:"state"`
	// Since is when the gate began waiting (the grace period's end); HeldSince when it
	// began to hold.
	Since     time.Time `json:"since"`
	HeldSince time.Time `json:"held_since,omitzero"`
	// Checked says what the target looked at (sessions of a role in pg_stat_activity).
	Checked string `json:"checked,omitempty"`
	// Uses are those the last check that worked showed, at most maxGateUses; UsesTotal
	// counts them all.
	Uses      []rotators.Use `json:"uses,omitempty"`
	UsesTotal int            `json:"uses_total"`
	// LastError is the last check's error when it failed, passed through ErrorText.
	LastError string `json:"last_error,omitempty"`
}

// sealed returns the gate with the target's words cleaned and capped: application names
// are chosen by clients, so they are treated as hostile text.
func (g RevokeGate) sealed() RevokeGate {
	g.UsesTotal = max(g.UsesTotal, len(g.Uses))
	if len(g.Uses) > maxGateUses {
		g.Uses = g.Uses[:maxGateUses]
	}
	uses := make([]rotators.Use, len(g.Uses))
	for i, u := range g.Uses {
		uses[i] = rotators.Use{
			User: inventory.Displayable(u.User, 64), Application: inventory.Displayable(u.Application, 64),
			Client: inventory.Displayable(u.Client, 64), Since: u.Since.UTC(), Detail: inventory.Displayable(u.Detail, 200),
		}
	}
	g.Uses = uses
	g.Checked = inventory.Displayable(g.Checked, maxReasonRunes)
	g.LastError = inventory.Displayable(g.LastError, maxErrorRunes)
	return g
}

// lines are the gate's details for a chat message, label and value.
func (g RevokeGate) lines() [][2]string {
	out := [][2]string{{"Gate", g.State}}
	if !g.HeldSince.IsZero() {
		out = append(out, [2]string{"Held since", g.HeldSince.UTC().Format("2006-01-02 15:04:05Z")})
	}
	out = append(out, [2]string{"Checked", g.Checked})
	for i, u := range g.Uses {
		if i == 5 {
			out = append(out, [2]string{"Uses", fmt.Sprintf("and %d more", g.UsesTotal-5)})
			break
		}
		var b strings.Builder
		b.WriteString(u.User)
		if u.Application != "" {
			b.WriteString(" as " + u.Application)
		}
		if u.Client != "" {
			b.WriteString(" from " + u.Client)
		}
		if !u.Since.IsZero() {
			b.WriteString(" since " + u.Since.UTC().Format("2006-01-02 15:04:05Z"))
		}
		if u.Detail != "" {
			b.WriteString(" (" + u.Detail + ")")
		}
		out = append(out, [2]string{"Use", b.String()})
	}
	if g.LastError != "" {
		out = append(out, [2]string{"Last check", g.LastError})
	}
	return out
}
