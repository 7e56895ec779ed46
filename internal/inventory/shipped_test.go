package inventory

import "testing"

// TestShippedInventoriesAreValid: the inventories the repository ships for users to
// start from load without a problem, as `keyturn config validate` and the worker read
// them.
func TestShippedInventoriesAreValid(t *testing.T) {
	for _, path := range []string{"../../deploy/compose/inventory.yaml"} {
		inv, err := Load(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if len(inv.Secrets) == 0 {
			t.Errorf("%s holds no secret", path)
		}
	}
}
