// Package secret holds the contracts every other layer shares: references to secrets and
// their versions, which may travel anywhere (workflow payloads, logs, the Web UI), and the
// Sensitive type, which carries credential material and refuses to travel at all.
//
// The split is the first wall that keeps secret material out of Temporal: a workflow input
// or result is built only from the reference types here, and any Sensitive value that
// reaches a JSON payload fails to marshal instead of leaking.
package secret
