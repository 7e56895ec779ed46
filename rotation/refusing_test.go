package rotation_test

import (
	"context"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/fake"
)

// refusingTarget accepts Apply calls but ignores them, like a target that silently fails.
type refusingTarget struct{ *fake.Rotator }

func (r *refusingTarget) Apply(context.Context, rotators.ApplyRequest) error { return nil }
