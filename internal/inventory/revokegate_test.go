package inventory

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

const localCAWith = "  - id: c/t\n    kind: localca\n%s    localca: {ca_cert: \"file:ca#c\", ca_key: \"file:ca#k\", crl_file: ca.crl, common_name: x.localhost, ttl: 30d}\n"

func TestRevokeGateDefaultsAndInheritance(t *testing.T) {
	inv, err := Load(writeTemp(t, "version: 1\ndefaults:\n  revoke_gate: {wait: until_unused, then: hold}\nsecrets:\n"+
		pgWith("a/b", "a", "    revoke_gate: {max_wait: 2h, poll: 1m}\n")+
		pgWith("c/d", "c", "    revoke_gate: {wait: \"no\"}\n")+
		pgWith("e/f", "e", "")+
		pgWith("g/h", "g", "    revoke_gate: {}\n")))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]RevokeGate{
		// Its own max_wait and poll, the defaults block's wait and then.
		"a/b": {Wait: GateWaitUntilUnused, MaxWait: 2 * time.Hour, Then: GateThenHold, Poll: time.Minute},
		// Its own wait: no; the rest is filled but means nothing.
		"c/d": {Wait: GateWaitNo, MaxWait: DefaultGateMaxWait, Then: GateThenHold, Poll: DefaultGatePoll},
		// Everything from the defaults block and the built-in defaults.
		"e/f": {Wait: GateWaitUntilUnused, MaxWait: DefaultGateMaxWait, Then: GateThenHold, Poll: DefaultGatePoll},
		"g/h": {Wait: GateWaitUntilUnused, MaxWait: DefaultGateMaxWait, Then: GateThenHold, Poll: DefaultGatePoll},
	}
	for _, s := range inv.Secrets {
		if got := s.RevokeGate; got != want[string(s.ID)] {
			t.Errorf("%s: gate %+v, want %+v", s.ID, got, want[string(s.ID)])
		}
	}
	if got := inv.Secrets[0].RevokeGate.String(); got != "until_unused, max 2h, then hold, poll 1m" {
		t.Errorf("String() = %q", got)
	}
	if !inv.Secrets[2].RevokeGate.Holds() || inv.Secrets[1].RevokeGate.Waits() {
		t.Errorf("Holds/Waits disagree with the gates: %+v", inv.Secrets)
	}

	// Without any revoke_gate the gate does not wait: the revoke follows the grace period.
	plain, err := Load(writeTemp(t, "version: 1\nsecrets:\n"+pgWith("a/b", "a", "")+pgWith("c/d", "c", "    revoke_gate: {}\n")))
	if err != nil {
		t.Fatal(err)
	}
	if g := plain.Secrets[0].RevokeGate; g != (RevokeGate{}) || g.Waits() || g.String() != "no" {
		t.Errorf("default gate %+v waits", g)
	}
	// An empty block is the built-in defaults in full: wait no, and the rest filled.
	if g := plain.Secrets[1].RevokeGate; g != (RevokeGate{Wait: GateWaitNo, MaxWait: DefaultGateMaxWait, Then: GateThenRevoke, Poll: DefaultGatePoll}) {
		t.Errorf("empty block gate %+v", g)
	}
}

func TestRevokeGateProblems(t *testing.T) {
	tests := map[string]struct {
		text string
		want []string // "line field: fragment"
	}{
		"values": {
			text: "version: 1\ndefaults:\n  revoke_gate: {poll: 1s}\nsecrets:\n" + pgWith("a/b", "a", "    revoke_gate:\n"+
				"      wait: always\n"+ // 8
				"      max_wait: 0s\n"+ // 9
				"      then: retry\n"+ // 10
				"      poll: 2h\n"), // 11
			want: []string{
				"3 defaults.revoke_gate.poll: must be between 5s and 1h",
				`8 secrets[0].revoke_gate.wait: "always" is not a revoke gate wait; allowed: "no", "until_unused"`,
				"9 secrets[0].revoke_gate.max_wait: must be between 1s and 7d",
				`10 secrets[0].revoke_gate.then: "retry" is not what the gate does after max_wait; allowed: "revoke", "hold"`,
				"11 secrets[0].revoke_gate.poll: must be between 5s and 1h",
			},
		},
		"poll longer than max_wait": {
			text: "version: 1\nsecrets:\n" + pgWith("a/b", "a", "    revoke_gate: {wait: until_unused, max_wait: 1m, poll: 5m}\n"),
			want: []string{"5 secrets[0].revoke_gate.poll: poll 5m is longer than max_wait 1m, so the gate would check only once"},
		},
		"certificate": {
			text: "version: 1\nsecrets:\n" + strings.Replace(localCAWith, "%s", "    revoke_gate:\n      wait: until_unused\n", 1),
			want: []string{`6 secrets[0].revoke_gate.wait: secret c/t: wait: until_unused needs a target that reports use, but a localca certificate cannot report whether it is still in use (nothing records who still presents the old one); set wait: no`},
		},
		"certificate inheriting the defaults": {
			text: "version: 1\ndefaults:\n  revoke_gate:\n    wait: until_unused\nsecrets:\n" + strings.Replace(localCAWith, "%s", "", 1),
			want: []string{`7 secrets[0].kind: secret c/t inherits revoke_gate wait: until_unused from the defaults block (line 4), but a localca certificate cannot report whether it is still in use (nothing records who still presents the old one); add revoke_gate: {wait: no} to this secret`},
		},
		"httpapi without a check": {
			text: "version: 1\nsecrets:\n  - id: h/k\n    kind: httpapi\n    revoke_gate: {wait: until_unused}\n" +
				"    httpapi: {admin: \"env:A\", key_id: id, key_secret: secret, create: {method: POST, url: \"https://x.example/keys\"}, test: {method: GET, url: \"https://x.example/me\"}, revoke: {method: DELETE, url: \"https://x.example/keys/{{.KeyID}}\"}}\n",
			want: []string{`5 secrets[0].revoke_gate.wait: secret h/k: wait: until_unused needs a target that reports use, but an httpapi secret without an in_use check cannot report whether an old key is still in use (declare httpapi.in_use if the API offers a last-used time); set wait: no`},
		},
		"unknown field": {
			text: "version: 1\nsecrets:\n" + pgWith("a/b", "a", "    revoke_gate: {wait: until_unused, timeout: 1h}\n"),
			want: []string{`5 secrets[0].revoke_gate.timeout: unknown field "timeout"; known fields here: wait, max_wait, then, poll`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Load(writeTemp(t, tc.text))
			if err == nil {
				t.Fatal("Load accepted the inventory")
			}
			var got []string
			for _, p := range problemsOf(t, err) {
				got = append(got, strconv.Itoa(p.Line)+" "+p.Field+": "+p.Message)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("problem %d:\n got %s\nwant %s...", i, got[i], w)
				}
			}
		})
	}
}

// An httpapi secret that declares in_use can report use, so its gate may wait.
func TestRevokeGateOnHTTPAPIWithInUse(t *testing.T) {
	inv, err := Load(writeTemp(t, `version: 1
secrets:
  - id: a/api
    kind: httpapi
    revoke_gate: {wait: until_unused, then: hold}
    httpapi:
      admin: env:ADMIN
      create: {method: POST, url: "https://x.example/keys"}
      test: {method: GET, url: "https://x.example/whoami"}
      revoke: {method: DELETE, url: "https://x.example/keys/{{.KeyID}}"}
      in_use: {url: "https://x.example/keys/{{.KeyID}}", last_used: data.last_used}
      key_id: id
      key_secret: secret
`))
	if err != nil {
		t.Fatal(err)
	}
	if !inv.Secrets[0].RevokeGate.Holds() {
		t.Fatalf("gate %+v", inv.Secrets[0].RevokeGate)
	}
}

// A gate that ends before its target's reporting delay (AWS: awsiam.LastUsedDelay; an
// API's declared in_use.delay) can never count an idle answer: a warning naming the
// secret, the numbers and the fix, never a problem. Enough grace plus max_wait, or a
// gate that does not wait, warns nothing.
func TestRevokeGateReportingDelayWarning(t *testing.T) {
	iam := func(id, user, extra string) string {
		return "  - id: " + id + "\n    kind: awsiam\n" + extra + "    awsiam: {user: " + user + "}\n"
	}
	inv, err := Load(writeTemp(t, `version: 1
secrets:
`+iam("a/short", "a", "    grace: 1h\n    revoke_gate: {wait: until_unused, max_wait: 1h, then: hold}\n")+ // 3-7
		iam("b/enough", "b", "    grace: 1h\n    revoke_gate: {wait: until_unused, max_wait: 3h}\n")+ // 8-12
		iam("c/nowait", "c", "    grace: 1h\n")+ // 13-16
		`  - id: d/api
    kind: httpapi
    grace: 10m
    revoke_gate: {wait: until_unused, max_wait: 20m}
    httpapi:
      admin: env:ADMIN
      create: {method: POST, url: "https://x.example/keys"}
      test: {method: GET, url: "https://x.example/whoami", headers: {Authorization: "Bearer {{.Secret}}"}}
      revoke: {method: DELETE, url: "https://x.example/keys/{{.KeyID}}"}
      in_use: {url: "https://x.example/keys/{{.KeyID}}", last_used: data.last_used, delay: 1h}
      key_id: id
      key_secret: secret
`))
	if err != nil {
		t.Fatalf("a warning refused the inventory: %v", err)
	}
	w := inv.Warnings()
	if len(w) != 2 {
		t.Fatalf("got %d warnings, want 2: %v", len(w), w)
	}
	for i, want := range []struct {
		line  int
		field string
		text  []string
	}{
		{6, "secrets[0].revoke_gate.max_wait", []string{"secret a/short: AWS records an access key's use up to 4h late", "ends 2h after the promotion (grace 1h plus max_wait 1h)",
			"always holds the revoke", "raise revoke_gate.max_wait to at least 3h (or grace to at least 3h)"}},
		{20, "secrets[3].revoke_gate.max_wait", []string{"secret d/api: the API shows a key's use up to 1h late (httpapi.in_use.delay)", "always revokes anyway",
			"raise revoke_gate.max_wait to at least 50m (or grace to at least 40m)"}},
	} {
		if w[i].Line != want.line || w[i].Field != want.field || w[i].Severity != SeverityWarning {
			t.Errorf("warning %d: %d %s (severity %d), want %d %s", i, w[i].Line, w[i].Field, w[i].Severity, want.line, want.field)
		}
		for _, text := range want.text {
			if !strings.Contains(w[i].Message, text) {
				t.Errorf("warning %d: %q\nwant it to contain %q", i, w[i].Message, text)
			}
		}
	}
}
