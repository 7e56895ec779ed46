package tests

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/devserver"
	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/harness/testenv"
)

// TestFirstRotationOnAClusterOfItsOwnAfterTheDocumentedSteps plays a team adopting
// Keyturn on a Temporal server it already runs: a namespace of its own, none of Keyturn's
// search attributes. The worker refuses to start and says what to run; `keyturn setup`
// refuses a mistyped namespace and changes nothing there, registers the attributes in the
// right one, and changes nothing the second time; then the first rotation runs and is
// listed by its secret.
func TestFirstRotationOnAClusterOfItsOwnAfterTheDocumentedSteps(t *testing.T) {
	env := testenv.New(t, testenv.Options{NoWorker: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cluster, err := devserver.Start(ctx, devserver.Options{FrontendAddr: "127.0.0.1:0", Namespace: "team-secrets", DisableUI: true, Logger: env.Logger})
	if err != nil {
		t.Fatalf("start the team's Temporal server: %v", err)
	}
	t.Cleanup(func() { _ = cluster.Stop() })
	at := []string{"--address", cluster.FrontendAddr(), "--namespace", "team-secrets"}
	attrs := []string{"KeyturnIncidentID=Keyword", "KeyturnKind=Keyword", "KeyturnOutcome=Keyword", "KeyturnSecretID=Keyword", "KeyturnStep=Keyword"}

	// The worker refuses, naming every missing attribute and the command.
	var out testenv.SyncBuffer
	args := append([]string{"worker", "-f", env.InventoryPath, "--store-dir", env.StoreDir, "--codec-key-file", env.CodecKeyFile}, at...)
	if code := cli.Execute(ctx, args, strings.NewReader(""), &out, &out); code != 1 {
		t.Fatalf("worker on a namespace without the attributes exited %d, want 1:\n%s", code, out.String())
	}
	for _, part := range append(attrs, `namespace "team-secrets" on `+cluster.FrontendAddr(), "keyturn setup --namespace team-secrets", "the worker did not start") {
		if !strings.Contains(out.String(), part) {
			t.Errorf("worker's refusal lacks %q:\n%s", part, out.String())
		}
	}
	if strings.Contains(out.String(), "worker started") {
		t.Errorf("the refused worker says it started:\n%s", out.String())
	}

	code, got := keyturn(t, env, append(at, "setup", "--check")...)
	if code != 1 || !strings.Contains(got, "lacks Keyturn's search attributes") {
		t.Fatalf("setup --check before setup exited %d:\n%s", code, got)
	}

	// A mistyped namespace is named, and nothing is created.
	code, got = keyturn(t, env, "--address", cluster.FrontendAddr(), "--namespace", "team-secret", "setup")
	if code != 1 || !strings.Contains(got, `namespace "team-secret" on `+cluster.FrontendAddr()+" does not exist") || !strings.Contains(got, "--create-namespace") {
		t.Fatalf("setup on a mistyped namespace exited %d:\n%s", code, got)
	}
	if strings.Contains(got, "Registered") || strings.Contains(got, "Created") {
		t.Fatalf("setup on a mistyped namespace claims a change:\n%s", got)
	}
	code, got = keyturn(t, env, "--address", cluster.FrontendAddr(), "--namespace", "team-secret", "setup", "--check")
	if code != 1 || !strings.Contains(got, "does not exist") {
		t.Fatalf("the mistyped namespace exists after setup without --create-namespace (exit %d):\n%s", code, got)
	}

	code, got = keyturn(t, env, append(at, "setup")...)
	if code != 0 || !strings.Contains(got, "Registered search attributes in \"team-secrets\": "+strings.Join(attrs, ", ")) {
		t.Fatalf("setup exited %d:\n%s", code, got)
	}
	code, got = keyturn(t, env, append(at, "setup")...)
	if code != 0 || !strings.Contains(got, "was already ready for Keyturn; nothing changed") {
		t.Fatalf("second setup exited %d:\n%s", code, got)
	}
	code, got = keyturn(t, env, append(at, "setup", "--check")...)
	if code != 0 || !strings.Contains(got, "ready for Keyturn: 5 search attributes registered") {
		t.Fatalf("setup --check after setup exited %d:\n%s", code, got)
	}

	// The first rotation runs, and the Web UI's list finds it by its secret.
	startWorker(t, env, at...)
	if code, got := keyturn(t, env, append(at, "rotate", "e2e/app", "--wait")...); code != 0 {
		t.Fatalf("first rotation exited %d:\n%s", code, got)
	}
	c, err := client.Dial(client.Options{HostPort: cluster.FrontendAddr(), Namespace: "team-secrets"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, 30*time.Second, "the rotation listed by KeyturnSecretID", func() bool {
		resp, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Namespace: "team-secrets", Query: `KeyturnSecretID = "e2e/app" AND KeyturnOutcome = "rotated"`,
		})
		return err == nil && resp.GetCount() == 1
	})
}
