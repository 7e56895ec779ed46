package cli

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyturn/keyturn/internal/home"
)

// commandPrefix is how the user runs keyturn to reach this dev from another terminal, in
// any directory: the binary as it was invoked (made absolute), plus the flags that a
// command would not find by itself (a state directory given by flag or environment, a
// store elsewhere).
func (g *globals) commandPrefix(cmd *cobra.Command) string {
	bin := "keyturn"
	if a := os.Args[0]; strings.ContainsRune(a, '/') && filepath.Base(a) == "keyturn" {
		if abs, err := filepath.Abs(a); err == nil {
			bin = shellQuote(abs)
		}
	}
	if g.home != "" || os.Getenv(home.EnvVar) != "" {
		bin += " --home " + shellQuote(g.homeDir.String())
	}
	if cmd.Flags().Changed("store-dir") || os.Getenv("KEYTURN_STORE_DIR") != "" {
		bin += " --store-dir " + shellQuote(g.storeDir)
	}
	return bin
}

// runPrefix is how to run keyturn against the same Temporal in a printed command: the
// binary and state flags (commandPrefix), the address and namespace when they were given
// on this command line, and the inventory (-f or KEYTURN_INVENTORY), made absolute.
func (g *globals) runPrefix(cmd *cobra.Command) string {
	p := g.commandPrefix(cmd)
	if cmd.Flags().Changed("address") {
		p += " --address " + shellQuote(g.address)
	}
	if cmd.Flags().Changed("namespace") {
		p += " --namespace " + shellQuote(g.namespace)
	}
	if g.inventory != "" {
		inv := g.inventory
		if abs, err := filepath.Abs(inv); err == nil {
			inv = abs
		}
		p += " -f " + shellQuote(inv)
	}
	return p
}

// shellQuote quotes s for a POSIX shell when it holds anything but safe characters.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:=,@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
