package pgsink

import (
	"testing"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/audit/audittest"
)

// TestConformance runs the sink suite with every handle a separate pool over one schema,
// as separate workers would be.
func TestConformance(t *testing.T) {
	audittest.Run(t, func(t *testing.T) audittest.Open {
		schema := freshSchema(t)
		return func(t *testing.T) audit.Sink { return openWriter(t, schema) }
	})
}
