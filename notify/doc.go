// Package notify owns event routing and signed webhook delivery: the events Keyturn
// reports (a failed or rolled-back rotation, an outstanding revoke, an overdue secret, an
// incident's progress), which of the inventory's routes each goes to (Router), and how it
// is sent (Sender): an HTTP POST of a generic JSON body or a Slack-compatible one, signed
// with HMAC-SHA256 over "<timestamp>.<body>", retried a bounded number of times within a
// deadline, so a dead webhook costs at most that deadline and never more.
//
// An event never carries material: it has no field that could hold a secret.Sensitive or
// secret.Material, and error text enters it through ErrorText, which removes the values
// it is given. The webhook URL (a Slack URL is itself a credential) and the signing key
// are config.Refs, resolved when an event is sent, and no error names the URL.
//
// Receivers check a delivery with Verify and deduplicate by the Keyturn-Event-Id header:
// an event's ID is derived from what happened (workflow, run, step, outcome), so a
// retried send, or a retried activity sending again, carries the same ID.
package notify
