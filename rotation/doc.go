// Package rotation sequences one secret's rotator and store through the steps of a
// rotation: Create, Test, Promote, Revoke, and Rollback when something fails. It is plain
// Go with no Temporal imports, so every step can be tested against real targets and stores
// with `go test`; the activities package makes each step a Temporal activity and the
// workflows package makes the sequence durable.
//
// Every step is idempotent and reads the state it acts on first, so a retry after a crash
// at any point converges on the same result:
//
//   - Create records the new material in the store (pending) before it touches the target,
//     so a retry reuses that material instead of minting a second credential.
//   - Promote of a version that is already current does nothing.
//   - Revoke of something already revoked, or never created, is success.
//   - Rollback looks at what is true now (which stage the failed version holds, whether the
//     version to keep still logs in) and only then acts.
package rotation
