package cli

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyturn/keyturn/internal/home"
	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/stores/file"
)

func newGetCmd(g *globals) *cobra.Command {
	var (
		reveal bool
		stage  string
		output string
	)
	cmd := &cobra.Command{
		Use:   "get <secret-id>",
		Short: "Show a secret's versions in the dev file store; the value only with --reveal",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := secret.ID(args[0])
			if err := id.Validate(); err != nil {
				return err
			}
			st := secret.Stage(stage)
			if !st.Valid() {
				return fmt.Errorf("--stage %q: use current, previous or pending", stage)
			}
			store, err := g.openExistingStore()
			if err != nil {
				return err
			}
			id, err = g.storePath(id)
			if err != nil {
				return err
			}
			v, material, err := store.Read(cmd.Context(), id, st)
			if errors.Is(err, stores.ErrNotFound) {
				return fmt.Errorf("%s has no %s version in the file store %s (has it been rotated yet? `keyturn status %s`)", id, st, g.storeDir, id)
			}
			if err != nil {
				return err
			}
			all, err := store.ListVersions(cmd.Context(), id)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				view := map[string]any{"version": v, "versions": all}
				if reveal {
					view["value"] = revealAll(material)
				}
				return writeJSON(out, view)
			}
			printVersion(out, v, all)
			if reveal {
				for _, k := range sortedKeys(material) {
					fmt.Fprintf(out, "%s: %s\n", k, material[k].Reveal())
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&reveal, "reveal", false, "also print the secret value (it will be on your screen and in your terminal's scrollback)")
	cmd.Flags().StringVar(&stage, "stage", string(secret.StageCurrent), "which stage to show: current, previous or pending")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

func printVersion(w io.Writer, v secret.Version, all []secret.Version) {
	fmt.Fprintf(w, "secret:  %s\nversion: %d\ntoken:   %s\ncreated: %s\n", v.SecretID, v.Number, v.Token, v.CreatedAt.Local().Format(time.DateTime))
	for _, k := range slices.Sorted(mapKeys(v.Metadata)) {
		fmt.Fprintf(w, "%s: %s\n", k, v.Metadata[k])
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nVERSION\tSTAGES\tCREATED")
	for _, x := range all {
		var stages []string
		for _, s := range x.Stages {
			stages = append(stages, string(s))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", x.Number, strings.Join(stages, ","), x.CreatedAt.Local().Format(time.DateTime))
	}
	_ = tw.Flush()
}

func revealAll(m secret.Material) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v.Reveal()
	}
	return out
}

func sortedKeys(m secret.Material) []string {
	return slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// managedKind reports whether the inventory (-f, or the running dev's) names the secret,
// and its kind.
func (g *globals) managedKind(id secret.ID) (string, bool) {
	s, ok := g.managedSecret(id)
	return s.Kind, ok
}

// managedSecret returns the inventory's secret id, when there is an inventory that
// lists it.
func (g *globals) managedSecret(id secret.ID) (inventory.Secret, bool) {
	path := g.inventoryPath()
	if path == "" {
		return inventory.Secret{}, false
	}
	inv, err := inventory.Load(path)
	if err != nil {
		return inventory.Secret{}, false
	}
	return inv.Lookup(id)
}

// openExistingStore opens the file store at --store-dir, refusing to create one: a
// mistyped directory must not look like an empty store.
func (g *globals) openExistingStore() (*file.Store, error) {
	// A directory with neither a key nor secrets is no store (a mistyped path, say); one
	// with secrets but no key is a store that lost its key, which Open explains.
	if !home.Exists(filepath.Join(g.storeDir, "store.key")) && !home.Exists(filepath.Join(g.storeDir, "secrets")) {
		return nil, fmt.Errorf("no file store at %s: pass --store-dir, KEYTURN_STORE_DIR or --home; `keyturn dev` keeps one in <home>/store (%s) and `keyturn put` creates one", g.storeDir, g.homeDir.Store())
	}
	store, err := file.Open(g.storeDir)
	if err != nil {
		return nil, fmt.Errorf("open file store %s: %w", g.storeDir, err)
	}
	return store, nil
}

// storePath maps a managed secret's ID to its store path when an inventory is given;
// other IDs (an admin password, say) are store paths already.
func (g *globals) storePath(id secret.ID) (secret.ID, error) {
	path := g.inventoryPath()
	if path == "" {
		return id, nil
	}
	inv, err := inventory.Load(path)
	if err != nil {
		return "", err
	}
	if s, ok := inv.Lookup(id); ok && s.Store.Path != "" {
		return secret.ID(s.Store.Path), nil
	}
	return id, nil
}
