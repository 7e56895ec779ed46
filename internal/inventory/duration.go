package inventory

import (
	"time"

	"github.com/keyturn/keyturn/internal/yamlfields"
)

// Day is the inventory's day: 24 hours (see yamlfields.Day).
const Day = yamlfields.Day

// ParseDuration reads a duration as the inventory writes it: Go's syntax (90s, 15m,
// 1h30m), optionally after a whole number of days, "30d" or "1d12h". The grammar is owned
// by yamlfields, so the agent's file reads durations the same way.
func ParseDuration(s string) (time.Duration, error) { return yamlfields.ParseDuration(s) }
