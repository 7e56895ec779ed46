package tests

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	sdkpb "go.temporal.io/api/sdk/v1"

	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// canaryGateApp is the application_name of the canary's consumer session, which keeps the
// canary password in use so the revoke gate holds.
const canaryGateApp = "canary-consumer"

// heldGate is what each channel shows of a revoke the gate holds.
type heldGate struct {
	// query is the status query's answer as JSON; details the Web UI's current details.
	query   []byte
	details string
	// cli is `keyturn status`, `status ID`, `status ID -o json` and `status --secrets -o json`.
	cli string
}

// captureHeldGate waits until id's rotation holds its revoke with the canary's session
// among the uses, and returns what the status query, the UI's details and `keyturn
// status` show of it. Each must name the session, or the scan of it proves nothing.
func captureHeldGate(t *testing.T, env *testenv.Env, id secret.ID, user string) heldGate {
	t.Helper()
	ctx := context.Background()
	wid := workflows.RotateWorkflowID(id)
	var st workflows.RotateStatus
	var h heldGate
	waitFor(t, time.Minute, "the revoke gate to hold with the canary's session", func() bool {
		v, err := env.Client.QueryWorkflow(ctx, wid, "", workflows.QueryStatus)
		if err != nil || v.Get(&st) != nil {
			return false
		}
		var raw json.RawMessage
		if v.Get(&raw) != nil {
			return false
		}
		h.query = raw
		return st.Outcome == workflows.OutcomeRevokeHeld
	})
	g := st.RevokeGate
	if st.Step != workflows.StepRevokeGate || g == nil || g.State != workflows.GateHeld || !namesUse(g.Uses, user) {
		t.Fatalf("the held status does not name the canary's session (%s as %s): the scan would prove nothing: %+v", user, canaryGateApp, st)
	}
	md, err := env.Client.QueryWorkflow(ctx, wid, "", "__temporal_workflow_metadata")
	if err != nil {
		t.Fatal(err)
	}
	var metadata sdkpb.WorkflowMetadata
	if err := md.Get(&metadata); err != nil {
		t.Fatal(err)
	}
	h.details = metadata.GetCurrentDetails()
	if !strings.Contains(h.details, canaryGateApp) {
		t.Fatalf("the UI's details of the held revoke do not name the session: the scan would prove nothing: %s", h.details)
	}
	var cli strings.Builder
	for _, args := range [][]string{{"status"}, {"status", string(id)}, {"status", string(id), "-o", "json"}, {"status", "--secrets", "-o", "json"}} {
		code, out := keyturn(t, env, args...)
		if code != 0 || !strings.Contains(out, canaryGateApp) {
			t.Fatalf("keyturn %s exited %d and must name the held revoke's session: the scan would prove nothing:\n%s", strings.Join(args, " "), code, out)
		}
		cli.WriteString(out)
	}
	if !strings.Contains(cli.String(), "held: 1 session ("+user+" as "+canaryGateApp+" from 127.0.0.1") {
		t.Fatalf("keyturn status does not show the revoke held: the scan would prove nothing:\n%s", cli.String())
	}
	h.cli = cli.String()
	return h
}

// namesUse says whether uses hold a session of user as the canary's consumer.
func namesUse(uses []rotators.Use, user string) bool {
	for _, u := range uses {
		if u.User == user && u.Application == canaryGateApp && strings.HasPrefix(u.Client, "127.0.0.1:") {
			return true
		}
	}
	return false
}

// gateEvent waits for the webhook to accept an event of type typ for id and returns it;
// it must be in state and name the canary's session, or the scan of its body proves
// nothing.
func gateEvent(t *testing.T, rc *receiver, id secret.ID, typ notify.Type, state, user string) notify.Event {
	t.Helper()
	var found *notify.Event
	waitFor(t, time.Minute, "the "+string(typ)+" notification", func() bool {
		events, _, _ := rc.received()
		for i := range events {
			if events[i].Type == typ && events[i].SecretID == id {
				found = &events[i]
				return true
			}
		}
		return false
	})
	if found.RevokeGate == nil || found.RevokeGate.State != state || !namesUse(found.RevokeGate.Uses, user) {
		t.Fatalf("the %s notification does not name the canary's session: the scan would prove nothing: %+v", typ, found)
	}
	return *found
}
