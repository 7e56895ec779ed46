package cli

import "testing"

func TestHandleOf(t *testing.T) {
	for _, c := range []struct {
		md   map[string]string
		want string
	}{
		{map[string]string{"role": "app_a", "username": "app_a"}, "role app_a"},
		{map[string]string{"password_id": "2c82aabcfc613c64", "user": "sessions"}, "password_id 2c82aabcfc613c64"},
		{map[string]string{"user": "shop_b", "username": "shop_b", "host_pattern": "%"}, "user shop_b"},
		{map[string]string{"serial": "0a:1b"}, "serial 0a:1b"},
		{map[string]string{"username": "x"}, "no handle recorded"},
	} {
		if got := handleOf(c.md); got != c.want {
			t.Errorf("handleOf(%v) = %q, want %q", c.md, got, c.want)
		}
	}
}
