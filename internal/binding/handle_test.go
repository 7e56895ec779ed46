package binding

import (
	"strings"
	"testing"

	"github.com/keyturn/keyturn/internal/inventory"
)

func TestHandleProblem(t *testing.T) {
	redis := inventory.Secret{Kind: inventory.KindRedis, Redis: &inventory.Redis{User: "sessions"}}
	twins := inventory.Secret{Kind: inventory.KindMariaDB, MariaDB: &inventory.MariaDB{Strategy: inventory.StrategyAlternating, Twins: []string{"shop_a", "shop_b"}}}
	single := inventory.Secret{Kind: inventory.KindMariaDB, MariaDB: &inventory.MariaDB{Strategy: inventory.StrategySingle, User: "shop"}}
	for _, c := range []struct {
		s      inventory.Secret
		handle string
		want   string
	}{
		{redis, "sessions", ""},
		{redis, "session", "manages ACL user sessions"},
		{twins, "shop_b", ""},
		{twins, "shop", "name it as one of the twins"},
		{single, "shop", ""},
		{single, "shop_a", "manages account shop"},
		{inventory.Secret{Kind: inventory.KindPostgres, Postgres: &inventory.Postgres{}}, "anything", ""},
	} {
		got := HandleProblem(c.s, c.handle)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("HandleProblem(%s, %q) = %q, want one saying %q", c.s.Kind, c.handle, got, c.want)
		}
	}
}
