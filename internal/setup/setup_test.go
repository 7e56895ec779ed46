package setup_test

import (
	"context"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/devserver"
	"github.com/keyturn/keyturn/internal/setup"
	"github.com/keyturn/keyturn/workflows"
)

// plainServer starts an embedded Temporal server whose namespace has none of Keyturn's
// search attributes, as a cluster a team already runs would, and dials it.
func plainServer(t *testing.T) (*devserver.Server, client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{FrontendAddr: "127.0.0.1:0", Namespace: "team", DisableUI: true})
	if err != nil {
		t.Fatalf("start Temporal: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddr(), Namespace: "team"})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(c.Close)
	return srv, c
}

func names(attrs []setup.Attribute) string {
	var out []string
	for _, a := range attrs {
		out = append(out, a.String())
	}
	return strings.Join(out, ",")
}

const allFive = "KeyturnIncidentID=Keyword,KeyturnKind=Keyword,KeyturnOutcome=Keyword,KeyturnSecretID=Keyword,KeyturnStep=Keyword"

func TestCheckNamesWhatIsMissingAndApplyAddsItOnce(t *testing.T) {
	srv, c := plainServer(t)
	ctx := context.Background()
	want := workflows.SearchAttributes()
	addr := srv.FrontendAddr()

	r, err := setup.Check(ctx, c, addr, "team", want)
	if err != nil {
		t.Fatal(err)
	}
	if r.Ready() || r.NoNamespace || names(r.Missing) != allFive || len(r.Conflicts) != 0 {
		t.Fatalf("report = %+v, want all five missing", r)
	}
	msg := r.Err().Error()
	for _, part := range []string{`namespace "team" on ` + addr, allFive[:len("KeyturnIncidentID=Keyword")], "KeyturnStep=Keyword", "keyturn setup --namespace team", "tcld"} {
		if !strings.Contains(msg, part) {
			t.Errorf("message lacks %q:\n%s", part, msg)
		}
	}

	res, err := setup.Apply(ctx, c, addr, "team", want, setup.Options{Wait: time.Minute})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if res.CreatedNamespace || names(res.Added) != allFive {
		t.Fatalf("apply = %+v, want the five added", res)
	}
	if r, err = setup.Check(ctx, c, addr, "team", want); err != nil || !r.Ready() || r.Err() != nil {
		t.Fatalf("after apply: %+v, %v", r, err)
	}
	// The frontend accepts a query on every attribute: Apply waited for it.
	if _, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
		Namespace: "team", Query: `KeyturnSecretID = "a" AND KeyturnStep = "b" AND KeyturnOutcome = "c"`,
	}); err != nil {
		t.Fatalf("query on the attributes after apply: %v", err)
	}
	res, err = setup.Apply(ctx, c, addr, "team", want, setup.Options{Wait: time.Minute})
	if err != nil || res.CreatedNamespace || len(res.Added) != 0 {
		t.Fatalf("second apply = %+v, %v; want nothing changed", res, err)
	}
}

func TestAMissingNamespaceIsNamedAndCreatedOnlyWhenAsked(t *testing.T) {
	srv, c := plainServer(t)
	ctx := context.Background()
	want := workflows.SearchAttributes()
	addr := srv.FrontendAddr()

	r, err := setup.Check(ctx, c, addr, "rotations", want)
	if err != nil || !r.NoNamespace || r.Ready() {
		t.Fatalf("check of a missing namespace = %+v, %v", r, err)
	}
	msg := r.Err().Error()
	for _, part := range []string{`namespace "rotations" on ` + addr + " does not exist", "keyturn setup --namespace rotations --create-namespace", "TEMPORAL_NAMESPACE"} {
		if !strings.Contains(msg, part) {
			t.Errorf("message lacks %q:\n%s", part, msg)
		}
	}
	// Without --create-namespace nothing is created.
	if _, err := setup.Apply(ctx, c, addr, "rotations", want, setup.Options{Wait: time.Minute}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("apply without create = %v, want the missing namespace named", err)
	}
	if r, _ := setup.Check(ctx, c, addr, "rotations", want); !r.NoNamespace {
		t.Fatal("apply without create created the namespace")
	}

	res, err := setup.Apply(ctx, c, addr, "rotations", want, setup.Options{CreateNamespace: true, Retention: 72 * time.Hour, Wait: time.Minute})
	if err != nil {
		t.Fatalf("apply with create: %v", err)
	}
	if !res.CreatedNamespace || names(res.Added) != allFive {
		t.Fatalf("apply with create = %+v", res)
	}
	if r, err := setup.Check(ctx, c, addr, "rotations", want); err != nil || !r.Ready() {
		t.Fatalf("after create: %+v, %v", r, err)
	}
}

func TestAnAttributeOfAnotherTypeStopsApplyBeforeAnythingIsAdded(t *testing.T) {
	srv, c := plainServer(t)
	ctx := context.Background()
	want := workflows.SearchAttributes()
	addr := srv.FrontendAddr()
	if _, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: "team", SearchAttributes: map[string]enumspb.IndexedValueType{"KeyturnStep": enumspb.INDEXED_VALUE_TYPE_TEXT},
	}); err != nil {
		t.Fatal(err)
	}
	_, err := setup.Apply(ctx, c, addr, "team", want, setup.Options{Wait: time.Minute})
	if err == nil {
		t.Fatal("apply succeeded over an attribute of another type")
	}
	for _, part := range []string{"KeyturnStep is Text, Keyturn needs Keyword", "cannot change in place", "search-attribute remove --namespace team --name NAME"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error lacks %q:\n%v", part, err)
		}
	}
	r, err := setup.Check(ctx, c, addr, "team", want)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Missing) != 4 || len(r.Conflicts) != 1 {
		t.Fatalf("after the refused apply: %+v; want the other four still missing (nothing added)", r)
	}
}
