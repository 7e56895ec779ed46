package workflows_test

import (
	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/workflows"
)

func clientOptions() client.StartWorkflowOptions {
	return client.StartWorkflowOptions{ID: workflows.RotateWorkflowID(id)}
}
