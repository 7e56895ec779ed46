// Package audit owns Keyturn's audit trail: one record for every change Keyturn makes and
// every operator action, hash-chained so an edited, deleted, swapped or truncated record
// shows, and signed checkpoints over the chain heads so a chain rewritten and rehashed
// from some point on shows too, in the manner of transparency logs.
//
// Records hold references only (secret ID, version token and number, non-secret handles
// such as a role name, a key ID or a serial), never material. A record's ID is the
// identity of the event it reports (workflow, run, activity, event), so a write retried
// by a retried activity or by a worker that took over from a dead one is a no-op: every
// event is recorded once.
//
// Chains are per secret ("secret/<id>"); events of an incident as a whole go to
// "incident/<id>". A secret's rotations never overlap (one workflow ID per secret), so
// appends to one chain are sequential in practice and appends to different chains never
// wait for each other: no global lock on the hot path. The evidence for one secret is one
// chain. A Sink stores records and checkpoints (FileSink for `keyturn dev`, the Postgres
// sink in production); a Log appends through a sink, mirrors records to a writer (stdout
// for log shippers) and signs checkpoints; Verify checks a sink's records and checkpoints.
package audit
