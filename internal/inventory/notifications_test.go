package inventory

import (
	"strings"
	"testing"
)

const notifySecrets = `version: 1
secrets:
  - id: prod/orders-db/app
    kind: awsiam
    tags: [prod]
    awsiam:
      user: orders-app
`

func TestNotificationRoutesLoad(t *testing.T) {
	inv, err := Load(writeTemp(t, notifySecrets+`notifications:
  routes:
    - name: security
      url: env:SECURITY_WEBHOOK_URL
      format: json
      signing_key: file:notify/security#key
      events: [rotation_failed, revoke_outstanding, incident_started]
      match: {tags: [prod], secrets: [prod/orders-db/app], owners: [payments]}
    - name: chat
      url: file:notify/slack#url
      format: slack
`))
	if err != nil {
		t.Fatal(err)
	}
	routes := inv.Notifications.Routes
	if len(routes) != 2 {
		t.Fatalf("want 2 routes, got %d", len(routes))
	}
	sec := routes[0]
	if sec.Name != "security" || sec.URL != "env:SECURITY_WEBHOOK_URL" || sec.SigningKey != "file:notify/security#key" || sec.Format != NotifyFormatJSON {
		t.Errorf("security route decoded wrong: %+v", sec)
	}
	if len(sec.Events) != 3 || sec.Match.Tags[0] != "prod" || sec.Match.Secrets[0] != "prod/orders-db/app" || sec.Match.Owners[0] != "payments" || sec.Line != 10 {
		t.Errorf("security route lists decoded wrong: %+v", sec)
	}
	if r, ok := inv.Notifications.Route("chat"); !ok || r.Format != NotifyFormatSlack || r.SigningKey != "" || !r.Match.Empty() {
		t.Errorf("chat route: %+v %v", r, ok)
	}
}

func TestNotificationFormatDefaultsToJSON(t *testing.T) {
	inv, err := Load(writeTemp(t, notifySecrets+`notifications:
  routes:
    - name: ops
      url: env:OPS_URL
      signing_key: env:OPS_KEY
`))
	if err != nil {
		t.Fatal(err)
	}
	if f := inv.Notifications.Routes[0].Format; f != NotifyFormatJSON {
		t.Fatalf("format %q, want json", f)
	}
}

// Every problem of the block is reported at once, each at its line, and a literal
// webhook URL is never repeated.
func TestNotificationProblemsAreAllReportedWithLines(t *testing.T) {
	const slackURL = "https://hooks.slack.com/services/T000/B000/CANARYsecretPATH"
	_, err := Load(writeTemp(t, notifySecrets+`notifications:
  routes:
    - name: Security Team
      url: `+slackURL+`
      format: xml
      events: [rotation_failed, rotation_faild, rotation_failed]
      match:
        tags: [Prod]
        secrets: [prod/nope, Not/Valid]
        owners: ["pay ments"]
    - url: env:X
      signing_key: literal-key-here
    - name: dup
      url: env:A
      signing_key: env:K
    - name: dup
      url: env:B
      format: slack
      colour: red
    - name: nokey
      url: env:C
`))
	if err == nil {
		t.Fatal("want problems")
	}
	msg := err.Error()
	for _, want := range []string{
		`inventory.yaml:10: notifications.routes[0].name: "Security Team" is not a valid route name`,
		`inventory.yaml:11: notifications.routes[0].url: is written out (value hidden)`,
		`inventory.yaml:12: notifications.routes[0].format: unknown format "xml"`,
		`inventory.yaml:27: notifications.routes[4].signing_key: required for format "json"`,
		`inventory.yaml:13: notifications.routes[0].events[1]: unknown event "rotation_faild" (did you mean "rotation_failed"?)`,
		`inventory.yaml:13: notifications.routes[0].events[2]: event "rotation_failed" is listed twice`,
		`inventory.yaml:15: notifications.routes[0].match.tags[0]: tag "Prod" is not valid`,
		`inventory.yaml:16: notifications.routes[0].match.secrets[0]: secret "prod/nope" is not in this inventory`,
		`inventory.yaml:16: notifications.routes[0].match.secrets[1]: "Not/Valid" is not a valid secret id`,
		`inventory.yaml:17: notifications.routes[0].match.owners[0]: "pay ments" is not a valid owner`,
		`inventory.yaml:18: notifications.routes[1].name: required`,
		`inventory.yaml:19: notifications.routes[1].signing_key: not a reference (value hidden)`,
		`inventory.yaml:23: notifications.routes[3].name: route name "dup" is already used at line 20`,
		`inventory.yaml:26: notifications.routes[3].colour: unknown field "colour"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing problem %q in:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "CANARY") || strings.Contains(msg, "literal-key-here") {
		t.Errorf("a problem repeats a secret value:\n%s", msg)
	}
}

func TestNotificationsWrongShapes(t *testing.T) {
	for name, tc := range map[string]struct{ block, want string }{
		"routes not a list": {"notifications:\n  routes: {name: x}\n", "inventory.yaml:9: notifications.routes: must be a list of routes"},
		"unknown key":       {"notifications:\n  route: []\n", `inventory.yaml:9: notifications.route: unknown field "route" (did you mean "routes"?)`},
		"events not a list": {"notifications:\n  routes:\n    - name: x\n      url: env:X\n      signing_key: env:K\n      events: rotation_failed\n", "inventory.yaml:13: notifications.routes[0].events: must be a list"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(writeTemp(t, notifySecrets+tc.block))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want %q, got:\n%v", tc.want, err)
			}
		})
	}
}

func TestLoopbackHostIsTheOneRule(t *testing.T) {
	for host, want := range map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true, "127.8.9.1": true, "example.com": false, "10.0.0.1": false, "": false} {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}
