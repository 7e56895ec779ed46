package redisspans_test

import (
	"os"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/keyturn/keyturn/internal/harness/redistest"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/redisacl"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/telemetry/redisspans"
)

var servers []*redistest.Server

func TestMain(m *testing.M) { os.Exit(redistest.Main(m, &servers, 1)) }

func TestOperation(t *testing.T) {
	for _, c := range []struct {
		args []any
		want string
	}{
		{[]any{"acl", "setuser", "app", "#abc"}, "ACL SETUSER"},
		{[]any{"client", "kill", "user", "app"}, "CLIENT KILL"},
		{[]any{"auth", "app", "hunter2"}, "AUTH"},
		{[]any{"get", "k"}, "GET"},
		{[]any{"acl", "hunter2!"}, "ACL"},
		{[]any{"hunter2!"}, "redis"},
		{nil, "redis"},
	} {
		if got := redisspans.Operation(c.args); got != c.want {
			t.Errorf("Operation(%v) = %q, want %q", c.args, got, c.want)
		}
	}
}

// TestSpansOfARotation runs a rotator's steps against a real node with a recording
// tracer: there is a span for each connection and command, named by the command, and no
// attribute or event holds a password, its hash or the admin password.
func TestSpansOfARotation(t *testing.T) {
	s := redistest.Need(t, servers)[0]
	const adminPass = "Spans-Admin-Password-3c1d"
	if err := s.CreateAdmin(t.Context(), "keyturn", adminPass); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUser(t.Context(), "app", "on", "+ping"); err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	r, err := redisacl.New(redisacl.Config{Nodes: []string{s.Addr}, User: "app", AdminUser: "keyturn", AdminPassword: secret.NewSensitive(adminPass), TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := r.Generate(t.Context(), rotators.GenerateRequest{})
	v := secret.Version{Number: 1, Metadata: g.Metadata}
	if err := r.Apply(t.Context(), rotators.ApplyRequest{Version: v, Material: g.Material}); err != nil {
		t.Fatal(err)
	}
	if err := r.Test(t.Context(), rotators.TestRequest{Version: v, Material: g.Material}); err != nil {
		t.Fatal(err)
	}
	if err := r.Revoke(t.Context(), rotators.RevokeRequest{Version: v}); err != nil {
		t.Fatal(err)
	}
	bad := secret.Material{redisacl.FieldPassword: secret.NewSensitive("Wrong-Password-In-Spans")}
	if err := r.Test(t.Context(), rotators.TestRequest{Version: v, Material: bad}); err == nil {
		t.Fatal("Test with a wrong password passed")
	}
	password := g.Material.Get(redisacl.FieldPassword).Reveal()
	hidden := []string{password, redisacl.PasswordID(password), adminPass, "Wrong-Password-In-Spans"}
	names := map[string]bool{}
	codes := map[string]bool{}
	for _, sp := range rec.Ended() {
		names[sp.Name()] = true
		var text strings.Builder
		text.WriteString(sp.Name() + " " + sp.Status().Description)
		for _, kv := range sp.Attributes() {
			text.WriteString(" " + string(kv.Key) + "=" + kv.Value.Emit())
			if kv.Key == attribute.Key("db.response.status_code") {
				codes[kv.Value.AsString()] = true
			}
		}
		for _, e := range sp.Events() {
			text.WriteString(" " + e.Name)
			for _, kv := range e.Attributes {
				text.WriteString(" " + kv.Value.Emit())
			}
		}
		for _, h := range hidden {
			if strings.Contains(text.String(), h) {
				t.Errorf("span %q holds a password or its hash", sp.Name())
			}
		}
	}
	for _, want := range []string{redisspans.ConnectSpanName, "ACL GETUSER", "ACL SETUSER", "ACL SAVE", "PING"} {
		if !names[want] {
			t.Errorf("no span %q among %v", want, names)
		}
	}
	if !codes["WRONGPASS"] {
		t.Errorf("the refused login's span has no db.response.status_code WRONGPASS: %v", codes)
	}
}
