package cli

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/secret"
)

// inventoryPath is the inventory a command checks its arguments against: -f (or
// KEYTURN_INVENTORY), else the one the `keyturn dev` using the state directory serves.
// Empty when there is neither.
func (g *globals) inventoryPath() string {
	if g.inventory != "" {
		return g.inventory
	}
	if dev, ok := g.homeDir.RunningDev(); ok {
		return dev.Inventory
	}
	return ""
}

// loadGCPercent is the GC percent while an inventory loads (see requireInventory).
const loadGCPercent = 400

// requireInventory loads the inventory a command needs before it may start anything, so
// a mistyped ID or scope is refused on the spot instead of leaving a failed workflow.
func (g *globals) requireInventory(what string) (*inventory.Inventory, error) {
	path := g.inventoryPath()
	if path == "" {
		return nil, fmt.Errorf("%s checks the secret IDs against the inventory before it starts anything, and none was found: pass -f FILE or set KEYTURN_INVENTORY (with `keyturn dev` running, its inventory is found in %s)", what, g.homeDir)
	}
	// Loading 10,000 secrets allocates about 125 MB that is garbage almost at once. A
	// command that exits soon after collects less often meanwhile, unless GOGC says
	// otherwise: `incident start --dry-run` over 10,000 secrets used 0.79 s of CPU
	// instead of 0.95, at the same peak. That CPU is an incident's start on a machine the
	// incident keeps busy. The old setting is put back unless it was this one: two loads
	// that overlap (commands run in one test process) then still end on the default.
	if os.Getenv("GOGC") == "" {
		if old := debug.SetGCPercent(loadGCPercent); old != loadGCPercent {
			defer debug.SetGCPercent(old)
		}
	}
	return inventory.Load(path)
}

// lookupSecret finds id in the inventory, or says how to find the right one.
func lookupSecret(inv *inventory.Inventory, id secret.ID) (inventory.Secret, error) {
	s, ok := inv.Lookup(id)
	if !ok {
		return inventory.Secret{}, fmt.Errorf("secret %q is not in inventory %s: check the id (the inventory has %d secret(s))", id, inv.Path, len(inv.Secrets))
	}
	return s, nil
}
