// Package schedsource reads the schedules package's Source from the inventory: the one
// place that knows both, so schedules stays free of the inventory's format.
package schedsource

import (
	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/schedules"
)

// From is inv as the schedules package reads it: every secret in the file's order, with
// its cron spec, zone and window, certificates marked for their renewal check, and the
// inventory's catch-up window.
func From(inv *inventory.Inventory) schedules.Source {
	src := schedules.Source{Path: inv.Path, CatchupWindow: inv.Defaults.CatchupWindow}
	for _, s := range inv.Secrets {
		src.Secrets = append(src.Secrets, schedules.SourceSecret{
			ID: s.ID, Kind: s.Kind, Certificate: inventory.CertificateKind(s.Kind),
			Schedule: s.Schedule, Timezone: s.Timezone, Window: s.Window, Line: s.Line,
		})
	}
	return src
}
