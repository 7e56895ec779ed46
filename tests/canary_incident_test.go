package tests

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/keyturn/keyturn/internal/harness/testenv"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/workflows"
)

// canaryIncidentApp is the application_name of the session an incident ends.
const canaryIncidentApp = "canary-incident-consumer"

// canaryIncident is what an incident over the canary's secret leaves to scan.
type canaryIncident struct {
	// cli is `keyturn incident start` and `incident status`, whose report lists the
	// sessions containment ended.
	cli string
	// histories are the incident workflow's and its contain-mode rotation's, decoded and
	// as stored.
	histories []byte
	// password is the version the incident made current: material to scan for.
	password string
}

// canaryIncidentID names the canary's incident.
const canaryIncidentID = "canary-drill"

// runCanaryIncident contains id in an incident (contain mode skips the revoke gate) with
// a consumer session open on its current version, and returns the report and the
// histories. The report must name the session it ended, or the scan proves nothing.
func runCanaryIncident(t *testing.T, env *testenv.Env, id secret.ID) canaryIncident {
	t.Helper()
	incidentID := canaryIncidentID
	v, m := current(t, env, id)
	role := v.Metadata["role"]
	openSession(t, env, role, m.Get("password"), canaryIncidentApp)
	var c canaryIncident
	var cli strings.Builder
	code, out := keyturn(t, env, "incident", "start", "--id", incidentID, "--select", "id="+string(id), "--mode", "contain", "--reason", "canary drill", "--yes")
	cli.WriteString(out)
	if code != 0 {
		t.Fatalf("incident exited %d:\n%s", code, out)
	}
	code, out = keyturn(t, env, "incident", "status", incidentID)
	cli.WriteString(out)
	if code != 0 || !strings.Contains(out, "sessions ended by containing "+string(id)) || !strings.Contains(out, role+" as "+canaryIncidentApp) {
		t.Fatalf("the incident report must name the session it ended (%s as %s): the scan would prove nothing; exited %d:\n%s", role, canaryIncidentApp, code, out)
	}
	c.cli = cli.String()
	nv, nm := current(t, env, id)
	if nv.Number <= v.Number {
		t.Fatalf("the incident made no new version of %s", id)
	}
	c.password = nm.Get("password").Reveal()
	for _, wid := range []string{workflows.IncidentWorkflowID(incidentID), workflows.RotateWorkflowID(id)} {
		for _, h := range []proto.Message{decodedHistory(t, env, wid, ""), history(t, env, wid, "")} {
			raw, err := proto.Marshal(h)
			if err != nil {
				t.Fatal(err)
			}
			c.histories = append(c.histories, raw...)
		}
	}
	if !strings.Contains(string(c.histories), canaryIncidentApp) {
		t.Fatal("the incident's histories do not name the session it ended: the scan would prove nothing")
	}
	return c
}
