// Package inventory owns the inventory: the YAML file that lists every secret Keyturn manages,
// how each one is rotated and where its new versions are written.
//
// Reading an inventory is a pipeline. Parse turns the file into an Inventory, keeping the
// line of every field it read; ApplyDefaults fills what the file left empty; Validate
// reports every problem at once, each with its file and line, the field, what is wrong and
// what to do about it. Load runs all three and returns either a valid inventory or an
// Errors value listing everything that must be fixed, so an operator fixes a file in one
// pass instead of one error per run, and a bad file never replaces a good one. The
// node-by-node YAML decoding and the Problem type are shared with the agent's file
// through internal/yamlfields.
//
// The inventory never holds secret material. Credentials the rotators need (the admin
// password of a database, for instance) are written as references (Ref) to a store or an
// environment variable, and a value that does not look like a reference is rejected
// without being echoed, because it is most likely a pasted password.
package inventory
