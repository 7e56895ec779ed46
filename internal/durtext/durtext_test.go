package durtext

import (
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/yamlfields"
)

func TestShortDuration(t *testing.T) {
	tests := map[string]struct {
		d    time.Duration
		want string
	}{
		"hours":   {168 * time.Hour, "168h"},
		"minutes": {5 * time.Minute, "5m"},
		"seconds": {10 * time.Second, "10s"},
		"mixed":   {90 * time.Minute, "1h30m"},
		"zero":    {0, "0s"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Short(tc.d); got != tc.want {
				t.Errorf("Short(%v) = %q, want %q", tc.d, got, tc.want)
			}
		})
	}
}

func TestDayAndRoughDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		14*day + 30*time.Minute: "14d30m", 90 * day: "90d", 6 * time.Hour: "6h", 45 * time.Second: "45s",
		day + 90*time.Minute: "1d1h30m",
	} {
		if got := Day(d); got != want {
			t.Errorf("Day(%v) = %q, want %q", d, got, want)
		}
		if back, err := yamlfields.ParseDuration(Day(d)); err != nil || back != d {
			t.Errorf("Day(%v) does not read back: %v %v", d, back, err)
		}
	}
	for d, want := range map[time.Duration]string{
		3*day + 4*time.Hour + 59*time.Minute: "3d4h", 4*time.Hour + 12*time.Minute + 59*time.Second: "4h12m",
		12*time.Minute + 30*time.Second + 900*time.Millisecond: "12m30s", 45 * time.Second: "45s",
		500 * time.Millisecond: "0s", 2 * day: "2d", 2*day + 30*time.Minute: "2d",
	} {
		if got := Rough(d); got != want {
			t.Errorf("Rough(%v) = %q, want %q", d, got, want)
		}
	}
}
