package workflows

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/keyturn/keyturn/secret"
)

// TaskQueue is the task queue Keyturn's workflows and activities run on.
const TaskQueue = "keyturn"

// RotateStartOptions are the options every starter of a rotation uses (the CLI, and later
// schedules and the incident playbook), so a rotation looks the same in the Web UI
// whoever started it. kind may be empty when the caller does not know it; the workflow
// sets it once it has resolved the secret.
func RotateStartOptions(id secret.ID, kind string) client.StartWorkflowOptions {
	attrs := []temporal.SearchAttributeUpdate{
		SearchAttrSecretID.ValueSet(string(id)),
		SearchAttrStep.ValueSet(StepRunning),
	}
	summary := "Rotate " + string(id)
	if kind != "" {
		attrs = append(attrs, SearchAttrKind.ValueSet(kind))
		summary += " (" + kind + ")"
	}
	return client.StartWorkflowOptions{
		ID:        RotateWorkflowID(id),
		TaskQueue: TaskQueue,
		// One rotation per secret at a time: a second start fails instead of joining or
		// replacing the running one (and the client says so instead of handing back the
		// running run as if it were new). A closed rotation's ID may be reused.
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes:                    temporal.NewSearchAttributes(attrs...),
		StaticSummary:                            summary,
	}
}
