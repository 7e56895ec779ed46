package workflows

import (
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/keyturn/keyturn/activities"
)

// Search attributes Keyturn sets, so the Web UI's list shows what each run is and where
// it stands. They must be registered on the namespace (the dev server does it at start;
// on a cluster: `temporal operator search-attribute create`).
var (
	SearchAttrSecretID   = temporal.NewSearchAttributeKeyKeyword("KeyturnSecretID")
	SearchAttrKind       = temporal.NewSearchAttributeKeyKeyword("KeyturnKind")
	SearchAttrStep       = temporal.NewSearchAttributeKeyKeyword("KeyturnStep")
	SearchAttrIncidentID = temporal.NewSearchAttributeKeyKeyword("KeyturnIncidentID")
)

// SearchAttributes lists every custom search attribute Keyturn uses, with its type, for
// registration on a namespace.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		SearchAttrSecretID.GetName():   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SearchAttrKind.GetName():       enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SearchAttrStep.GetName():       enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SearchAttrIncidentID.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	}
}

// Every retry below is bounded: a rotation that cannot finish must end, roll back and say
// so, never retry forever with a credential that will not work.
var (
	planOptions = workflow.LocalActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second,
			MaximumAttempts: 5, NonRetryableErrorTypes: activities.NonRetryable,
		},
	}
	// Create talks to the target; the heartbeat timeout notices a dead worker quickly.
	// WaitForCancellation: on cancel the workflow waits for the step to stop before it rolls
	// back, so a rollback never races a step still changing the target.
	createOptions = workflow.ActivityOptions{
		WaitForCancellation: true,
		StartToCloseTimeout: 2 * time.Minute,
		HeartbeatTimeout:    10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
			MaximumAttempts: 5, NonRetryableErrorTypes: activities.NonRetryable,
		},
	}
	// Test retries absorb propagation delay (replicas, eventually consistent IAM), but a
	// credential that keeps failing is rejected after about a minute, not retried forever.
	testOptions = workflow.ActivityOptions{
		WaitForCancellation: true,
		StartToCloseTimeout: time.Minute,
		HeartbeatTimeout:    10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 15 * time.Second,
			MaximumAttempts: 6, NonRetryableErrorTypes: activities.NonRetryable,
		},
	}
	promoteOptions = workflow.ActivityOptions{
		WaitForCancellation: true,
		StartToCloseTimeout: time.Minute,
		HeartbeatTimeout:    10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
			MaximumAttempts: 6, NonRetryableErrorTypes: activities.NonRetryable,
		},
	}
	revokeOptions = promoteOptions
	// Rollback gets more patience than the steps: it is what keeps consumers working.
	rollbackOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		HeartbeatTimeout:    10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			MaximumAttempts: 10, NonRetryableErrorTypes: activities.NonRetryable,
		},
	}
)
