// Command keyturn rotates credentials with durable Temporal workflows. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	// Schedules name IANA zones; embed the zone database so minimal images work too.
	_ "time/tzdata"

	"github.com/keyturn/keyturn/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
