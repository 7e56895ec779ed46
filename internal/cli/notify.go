package cli

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyturn/keyturn/internal/binding"
	"github.com/keyturn/keyturn/internal/home"
	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/stores/file"
)

func newNotifyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "notify",
		Short: "Check the inventory's notification routes",
	}
	cmd.AddCommand(newNotifyTestCmd(g))
	return cmd
}

func newNotifyTestCmd(g *globals) *cobra.Command {
	var route string
	cmd := &cobra.Command{
		Use:   "test [--route NAME] -f FILE",
		Short: "Send a sample event (type test) to each notification route and print what each receiver answered",
		Long: "Sends one sample event, signed like a real one, to every route of the inventory's\n" +
			"notifications block (or only --route), resolving each route's url and signing_key\n" +
			"references here, from this environment and the file store on --home. It prints, per\n" +
			"route, the HTTP status it was delivered with or why it was not, and exits 1 if any\n" +
			"route failed. Each run sends a new event ID, so deduplicating receivers show every test.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := g.inventoryPath()
			if path == "" {
				return fmt.Errorf("notify test reads the routes from the inventory, and none was found: pass -f FILE or set KEYTURN_INVENTORY")
			}
			inv, err := inventory.Load(path)
			if err != nil {
				return err
			}
			routes, err := selectRoutes(inv, route)
			if err != nil {
				return err
			}
			store, err := g.storeIfAny()
			if err != nil {
				return err
			}
			b := backends(store, g.logger(cmd.ErrOrStderr()), nil) // a one-off check: not traced
			if store == nil {
				b.File = nil // a nil *file.Store in the interface would look like a store
			}
			resolver := binding.New(inv, b)
			defer func() { _ = resolver.Close() }()

			sender := &notify.Sender{Revealer: resolver}
			event := notify.Sample(time.Now())
			deliveries := sender.SendAll(cmd.Context(), routes, event)
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "test event %s, %d route(s):\n", event.ID, len(routes))
			failed := 0
			for _, d := range deliveries {
				if d.Err != nil {
					failed++
					fmt.Fprintf(out, "  %s: FAILED: %v\n", d.Route, d.Err)
					continue
				}
				fmt.Fprintf(out, "  %s: delivered (%d %s, %d attempt(s))\n", d.Route, d.Status, http.StatusText(d.Status), d.Attempts)
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d notification route(s) failed", failed, len(routes))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&route, "route", "", "send to this route only")
	return cmd
}

// selectRoutes returns the route called name, or every route when name is empty.
func selectRoutes(inv *inventory.Inventory, name string) ([]inventory.NotifyRoute, error) {
	all := inv.Notifications.Routes
	if len(all) == 0 {
		return nil, fmt.Errorf("inventory %s has no notification routes; add a notifications.routes list (see the README's Notifications section)", inv.Path)
	}
	if name == "" {
		return all, nil
	}
	if r, ok := inv.Notifications.Route(name); ok {
		return []inventory.NotifyRoute{r}, nil
	}
	names := make([]string, len(all))
	for i, r := range all {
		names[i] = r.Name
	}
	return nil, fmt.Errorf("--route %q is not a route of %s; its routes: %s", name, inv.Path, strings.Join(names, ", "))
}

// storeIfAny opens the file store at --store-dir when there is one, for file:
// references; nil when there is none, which only file: references need.
func (g *globals) storeIfAny() (*file.Store, error) {
	if !home.Exists(filepath.Join(g.storeDir, "store.key")) {
		return nil, nil
	}
	store, err := file.Open(g.storeDir)
	if err != nil {
		return nil, fmt.Errorf("open file store %s: %w", g.storeDir, err)
	}
	return store, nil
}
