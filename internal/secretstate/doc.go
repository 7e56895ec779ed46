// Package secretstate owns what is true now of every secret in the inventory: its current
// version and that version's age, the maximum age its policy allows, whether it is
// overdue, its latest rotation and any revoke still outstanding, and when a schedule runs
// it next; and which incidents are running. An Observer reads it all from the places that
// hold it (each secret's store, Temporal's workflows and schedules) and returns it as an
// Observation, which the worker's sweep turns into metrics and notifications and
// `keyturn status` prints, so both say the same thing from the same reads.
//
// # Age
//
// A version's age is counted from its CreatedAt, the time the store recorded it (staged
// as pending). No store records when a version became current, so the age of a rotated
// secret includes the minutes between its Create and Promote steps, and the age of a
// version put by hand starts when it was put. A version without a creation time has an
// unknown age (never a zero time's 292 years), and with a policy an unknown verdict.
//
// # Overdue
//
// A secret is overdue when its current version is older than its maximum age
// (inventory.Secret.AgePolicy), or when its store holds no current version at all: a secret
// Keyturn manages but has never rotated, or been given, is of unknown age and is treated
// as the worst case ("never rotated" when the store holds no version at all, "no current
// version" when it holds earlier ones). A secret without a policy is never overdue by age.
//
// # Outstanding revokes
//
// The latest run of rotate/<secret-id> decides: a revoke or rollback it still retries
// while it runs, or a revoke_failed it ended with (a credential that should be revoked
// may still work, and nothing retries it), until a newer run takes its place.
//
// # Failures
//
// Each read fails on its own, under its own timeout. A store that cannot be read leaves that secret's age and
// overdue verdict unknown (nil), never zero or stale, and says why in StoreError; a
// Temporal call that fails leaves the rotation or schedule facts unknown likewise. No
// observation ever holds material: versions are read with ListVersions, which returns
// references and metadata only, and error text is cleaned before it is kept.
package secretstate
