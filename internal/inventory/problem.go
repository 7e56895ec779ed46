package inventory

import (
	"github.com/keyturn/keyturn/internal/yamlfields"
)

// Problem is one thing wrong with an inventory file, placed so an editor can jump to it.
// File is the inventory's path; a SeverityWarning problem is one Load accepts (see
// Inventory.Warnings). The type is owned by yamlfields, which the agent's file shares.
type Problem = yamlfields.Problem

// Severity says whether a problem refuses the inventory.
type Severity = yamlfields.Severity

const (
	// SeverityError: the inventory is refused until it is fixed.
	SeverityError = yamlfields.SeverityError
	// SeverityWarning: the inventory works as written, but likely not as meant; it is
	// printed by `keyturn config validate` and at the start of `keyturn dev` and
	// `keyturn worker`, and never refuses the inventory.
	SeverityWarning = yamlfields.SeverityWarning
)

// Errors is every problem found in one inventory file. It is the error Parse, Validate
// and Load return, so callers can print it whole or walk the problems with errors.As.
type Errors []Problem

// Error lists the problems, one a line under a header, in file order.
func (e Errors) Error() string {
	return yamlfields.Summary("inventory", e)
}

// sorted returns a copy ordered by line; problems on the same line keep the order they
// were found in, which follows the file.
func (e Errors) sorted() Errors {
	return yamlfields.Sorted(e)
}

// orNil returns nil for an empty list so a function returning error never returns a
// non-nil interface holding no problems.
func (e Errors) orNil() error {
	if len(e) == 0 {
		return nil
	}
	return e.sorted()
}

// report collects problems for one file.
type report = yamlfields.Report

// decoder turns YAML nodes into inventory values and collects decode problems; the
// inventory's own blocks (secrets, kinds, notifications) are its methods.
type decoder struct {
	*yamlfields.Decoder
}

// block is one decoded mapping of the inventory.
type block = yamlfields.Block
