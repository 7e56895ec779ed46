package audit_test

import (
	"testing"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/audit/audittest"
)

func TestFileSinkConformance(t *testing.T) {
	audittest.Run(t, func(t *testing.T) audittest.Open {
		dir := t.TempDir()
		return func(t *testing.T) audit.Sink {
			s, err := audit.OpenFile(dir)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}
