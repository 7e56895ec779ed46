// Package agent is `keyturn agent`: it renders the current version of chosen secrets to
// files for programs that are not written in Go (or cannot link consumer/), re-renders
// them when a rotation promotes a new version, then runs a reload command or signals a
// process, the way Vault Agent's templates work.
//
// It owns four concerns, a file each:
//
//   - config.go and decode.go: the agent's YAML file, decoded node by node with
//     internal/yamlfields (as the inventory is) so every problem is reported at once
//     with its line and field, and no value is echoed.
//   - render.go: the formats (raw, env, json, pem, template) that turn a consumer.Value
//     into bytes; errors name secrets and fields, never material.
//   - write.go: the atomic write (temporary file in the same directory, 0600 before any
//     material is written, fsync, rename, fsync of the directory), and the durable
//     reload-pending marker made before the rename and removed after a good reload.
//   - reload.go: the reload, a command run without a shell under a timeout and without
//     the store's credentials in its environment, or a signal to a process named by pid
//     or pid file.
//
// agent.go ties them together: one pass reads each secret once through a consumer.Cache,
// renders the templates whose version changed, and reloads once for the batch, or for
// the files whose reload is still pending (retried with a backoff; never dropped). When
// the store cannot be read, files are left as they are (never deleted) and the stale
// state is logged.
//
// Secrets are read only through the public consumer package (consumer.OpenFile,
// OpenVault, OpenAWS), so the agent needs read access to the store and nothing more.
//
// The package is internal: its contract with users is the command line and the YAML
// file (docs/agent.md); Go programs read secrets with consumer/ instead.
package agent
