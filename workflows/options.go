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
// on a cluster, `keyturn setup`, and the worker checks at start: package internal/setup).
var (
	SearchAttrSecretID   = temporal.NewSearchAttributeKeyKeyword("KeyturnSecretID")
	SearchAttrKind       = temporal.NewSearchAttributeKeyKeyword("KeyturnKind")
	SearchAttrStep       = temporal.NewSearchAttributeKeyKeyword("KeyturnStep")
	SearchAttrIncidentID = temporal.NewSearchAttributeKeyKeyword("KeyturnIncidentID")
	// SearchAttrOutcome is how a rotation ended (rotated, rolled_back, aborted, ...), or
	// an outstanding state while it keeps trying; unset while it runs normally.
	SearchAttrOutcome = temporal.NewSearchAttributeKeyKeyword("KeyturnOutcome")
)

// SearchAttributes lists every custom search attribute Keyturn uses, with its type, for
// registration on a namespace.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		SearchAttrSecretID.GetName():   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SearchAttrKind.GetName():       enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SearchAttrStep.GetName():       enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SearchAttrIncidentID.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SearchAttrOutcome.GetName():    enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	}
}

// Every retry below is bounded: a rotation that cannot finish must end, roll back and say
// so, never retry forever with a credential that will not work. Invalid configuration,
// permission denied, an unknown secret and a failed check are never retried.
var (
	planOptions = workflow.LocalActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         retryPolicy(5, 10*time.Second),
	}
	// A quick step's first attempt, a local activity (genLocal): one try, bounded well
	// inside the workflow task's timeout. A step still running after five seconds is not
	// quick; its retry runs as the regular activity, which the Web UI lists as pending.
	quickOptions = workflow.LocalActivityOptions{
		StartToCloseTimeout: 5 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	}
	// Create talks to the target. The heartbeat timeout notices a dead worker within
	// seconds. WaitForCancellation: on cancel the workflow waits for the step to stop
	// before it rolls back, so a rollback never races a step still changing the target.
	createOptions = stepOptions(2*time.Minute, retryPolicy(5, 30*time.Second))
	// Test retries absorb propagation delay (replicas, eventually consistent IAM), but a
	// credential that keeps failing is rejected after about a minute, not retried forever.
	testOptions    = stepOptions(time.Minute, retryPolicy(6, 15*time.Second))
	promoteOptions = stepOptions(time.Minute, retryPolicy(6, 30*time.Second))
	revokeOptions  = promoteOptions
	// Containment is the step an incident is timed by: short attempts, retried often, and
	// a dead worker noticed within seconds.
	containOptions = forContainment(stepOptions(time.Minute, retryPolicy(8, 5*time.Second)))
	// Rollback gets more patience than the steps: it is what keeps consumers working.
	rollbackOptions = stepOptions(2*time.Minute, retryPolicy(10, time.Minute))
	// An outstanding revoke or rollback is one attempt (with the step's own bounded
	// retries) every few minutes, backing off to once an hour: a durable timer between
	// attempts, so it survives worker restarts and costs nothing while it waits. An hour
	// apart, a week of attempts is about 1,700 history events, far below the limit.
	// A notification is bounded by its sender (15 s for every route at once); the
	// activity gets one retry, for a worker lost while sending. Its failure is ignored.
	notifyOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 2},
	}
	// auditOptions bound the local activity that appends a workflow's own audit records:
	// appending is fast, and a trail that is down is retried a few times, then reported in
	// the workflow's log (the rotation's outcome does not depend on it).
	auditOptions = workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 5 * time.Second, MaximumAttempts: 5,
		},
	}
	outstandingFirstDelay = 30 * time.Second
	outstandingMaxDelay   = time.Hour
)

func stepOptions(startToClose time.Duration, retry *temporal.RetryPolicy) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		StartToCloseTimeout: startToClose,
		HeartbeatTimeout:    10 * time.Second,
		WaitForCancellation: true,
		RetryPolicy:         retry,
	}
}

// containHeartbeatTimeout is how soon a containment step on a worker that died is given
// up and retried elsewhere. The activities beat four times as often, but the SDK sends
// at most one heartbeat per 0.8 timeout, so a shorter timeout would leave too little
// room for a heartbeat slowed by a loaded machine.
// containFirstRetry is how soon it is retried then: a leaked credential that still logs
// in is not left waiting out the usual one-second backoff.
const (
	containHeartbeatTimeout = 2 * time.Second
	containFirstRetry       = 100 * time.Millisecond
)

// forContainment is o for a containment step: a short heartbeat timeout and a first retry
// at once, so a worker that dies mid-step costs containment seconds, not tens of seconds.
// Four more attempts keep the retries' whole window at least as long as with a
// one-second start: after 0.1, 0.2, 0.4 and 0.8 s the backoffs are 1.6, 3.2... where
// they were 1, 2..., so a short outage of the server is outlasted as before.
func forContainment(o workflow.ActivityOptions) workflow.ActivityOptions {
	o.HeartbeatTimeout = containHeartbeatTimeout
	retry := *o.RetryPolicy
	retry.InitialInterval = containFirstRetry
	retry.MaximumAttempts += 4
	o.RetryPolicy = &retry
	return o
}

// retryPolicy backs off from one second, doubling up to maxInterval, for at most
// attempts tries.
func retryPolicy(attempts int32, maxInterval time.Duration) *temporal.RetryPolicy {
	return &temporal.RetryPolicy{
		InitialInterval:        time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        maxInterval,
		MaximumAttempts:        attempts,
		NonRetryableErrorTypes: activities.NonRetryable,
	}
}
