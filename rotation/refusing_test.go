package rotation_test

import (
	"context"

	"github.com/keyturn/keyturn/rotators"
)

// refusingTarget accepts Apply calls but ignores them, like a target that silently fails.
type refusingTarget struct{ *fakeTarget }

func (r *refusingTarget) Apply(context.Context, rotators.ApplyRequest) error { return nil }
