package workflows_test

import (
	"os"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/workflows"
)

func clientOptions() client.StartWorkflowOptions {
	return client.StartWorkflowOptions{ID: workflows.RotateWorkflowID(id)}
}

func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}
