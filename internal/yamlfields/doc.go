// Package yamlfields decodes hand-written YAML files (the inventory, the agent's file)
// field by field, and holds the Problem type both report their mistakes with.
//
// Files are decoded by walking yaml.Node trees by hand rather than with yaml.Unmarshal
// into structs: that keeps the line of every field, reports every unknown field and wrong
// type instead of stopping at the first, and catches repeated keys, which struct decoding
// would silently resolve to the last one. Messages never echo a value from the file
// except through Quote, so a token pasted into the wrong field cannot reach a log or move
// the cursor of whoever reads the output.
package yamlfields
