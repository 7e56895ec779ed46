package notify

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	body := []byte(`{"id":"evt_1","type":"rotation_failed"}`)
	now := time.Unix(1_800_000_000, 0)
	header := Sign(key, now, body)
	if !strings.HasPrefix(header, "t=1800000000,v1=") {
		t.Fatalf("header %q", header)
	}
	for name, tc := range map[string]struct {
		key    []byte
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		"genuine":                {key, header, body, now, nil},
		"genuine, 4 min later":   {key, header, body, now.Add(4 * time.Minute), nil},
		"body changed":           {key, header, []byte(`{"id":"evt_1","type":"rotation_rolled_back"}`), now, ErrForged},
		"wrong key":              {[]byte("another-key-of-enough-length"), header, body, now, ErrForged},
		"replayed 6 min later":   {key, header, body, now.Add(6 * time.Minute), ErrStale},
		"from the future":        {key, header, body, now.Add(-6 * time.Minute), ErrStale},
		"timestamp changed":      {key, strings.Replace(header, "t=1800000000", "t=1800000300", 1), body, now.Add(5 * time.Minute), ErrForged},
		"no header":              {key, "", body, now, ErrNoSignature},
		"garbage":                {key, "nonsense", body, now, ErrBadSignature},
		"no v1":                  {key, "t=1800000000", body, now, ErrBadSignature},
		"no key":                 {nil, header, body, now, ErrNoKey},
		"old and new key signed": {key, Sign([]byte("the-old-key-0123456789"), now, body) + "," + header[strings.Index(header, "v1="):], body, now, nil},
	} {
		t.Run(name, func(t *testing.T) {
			if err := Verify(tc.key, tc.header, tc.body, tc.now, 0); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}
