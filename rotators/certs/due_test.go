package certs

import (
	"testing"
	"time"

	"github.com/keyturn/keyturn/secret"
)

func TestDue(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	v := secret.Version{Metadata: map[string]string{
		MetadataNotBefore: start.Format(time.RFC3339),
		MetadataNotAfter:  start.Add(90 * time.Hour).Format(time.RFC3339),
	}}
	twoThirds := start.Add(60 * time.Hour)
	for name, c := range map[string]struct {
		now   time.Time
		share float64
		due   bool
		at    time.Time
	}{
		"fresh":                  {start, DefaultRenewAt, false, twoThirds},
		"a second before 2/3":    {twoThirds.Add(-time.Second), DefaultRenewAt, false, twoThirds},
		"exactly at 2/3":         {twoThirds, DefaultRenewAt, true, twoThirds},
		"after 2/3":              {twoThirds.Add(time.Second), DefaultRenewAt, true, twoThirds},
		"expired":                {start.Add(100 * time.Hour), DefaultRenewAt, true, twoThirds},
		"half":                   {start.Add(45 * time.Hour), 0.5, true, start.Add(45 * time.Hour)},
		"invalid share defaults": {twoThirds.Add(-time.Second), 1.5, false, twoThirds},
		"zero share defaults":    {twoThirds, 0, true, twoThirds},
	} {
		t.Run(name, func(t *testing.T) {
			due, at := Due(v, c.now, c.share)
			if due != c.due || !at.Equal(c.at) {
				t.Fatalf("Due = %v, %s; want %v, %s", due, at, c.due, c.at)
			}
		})
	}
}

func TestDueWithoutMetadata(t *testing.T) {
	now := time.Date(2026, 5, 5, 12, 0, 0, 0, time.UTC)
	for name, md := range map[string]map[string]string{
		"none":         nil,
		"no not_after": {MetadataNotBefore: now.Format(time.RFC3339)},
		"garbled":      {MetadataNotBefore: "yesterday", MetadataNotAfter: "tomorrow"},
		"empty window": {MetadataNotBefore: now.Format(time.RFC3339), MetadataNotAfter: now.Format(time.RFC3339)},
		"reversed":     {MetadataNotBefore: now.Format(time.RFC3339), MetadataNotAfter: now.Add(-time.Hour).Format(time.RFC3339)},
	} {
		t.Run(name, func(t *testing.T) {
			due, at := Due(secret.Version{Metadata: md}, now, DefaultRenewAt)
			if !due || !at.Equal(now) {
				t.Fatalf("Due = %v, %s; want due now", due, at)
			}
		})
	}
}
