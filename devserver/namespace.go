package devserver

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	sqliteschema "go.temporal.io/server/schema/sqlite"

	"github.com/keyturn/keyturn/internal/setup"
)

// Registration happens in two places because neither covers every case:
//
//   - Before the server starts, the namespace is written straight into the
//     database together with its search attributes. That is the only way to
//     have both in place the moment the frontend answers, but the write is
//     skipped when the namespace already exists, so on a restart it adds
//     nothing.
//   - After the server is up, the operator service lists the namespace's
//     attributes and adds the missing ones. That covers attributes added to
//     Options since the database was created.

// registerNamespace creates the namespace with its search attributes unless a
// namespace of that name already exists.
func registerNamespace(sql *config.SQL, namespace string, attrs map[string]enums.IndexedValueType) error {
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, namespace, false, attrs)
	if err != nil {
		return fmt.Errorf("prepare namespace %s: %w", namespace, err)
	}
	if err := sqliteschema.CreateNamespaces(sql, ns); err != nil {
		return fmt.Errorf("register namespace %s: %w", namespace, err)
	}
	return nil
}

// searchAttributeRefreshWindow is how long forced search attribute reads stay
// on after attributes are added to a running server. Every service caches
// namespaces, attribute aliases included, and refreshes the cache every
// system.namespaceCacheRefreshInterval (2 s by default); until then a
// service may reject the new names. Forced reads cost one small SQLite query
// per lookup, so the window is generous for a loaded machine.
const searchAttributeRefreshWindow = 10 * time.Second

// ensureSearchAttributes adds the attributes in want that the namespace lacks
// and reports whether it added any. An attribute registered with another type
// is an error: the server cannot change the type of an attribute in place.
func ensureSearchAttributes(
	ctx context.Context,
	c client.Client,
	addr, namespace string,
	want map[string]enums.IndexedValueType,
) (added bool, err error) {
	if len(want) == 0 {
		return false, nil
	}
	r, err := setup.Check(ctx, c, addr, namespace, want)
	if err != nil {
		return false, err
	}
	if r.NoNamespace {
		return false, r.Err() // registered before the start; its absence is a bug to report
	}
	if len(r.Conflicts) > 0 {
		var conflicts []string
		for _, c := range r.Conflicts {
			conflicts = append(conflicts, fmt.Sprintf("%s is %s, want %s", c.Name, c.Have, c.Want))
		}
		return false, fmt.Errorf("search attributes registered with another type (%s): remove the dev server's state directory to start over",
			strings.Join(conflicts, "; "))
	}
	if len(r.Missing) == 0 {
		return false, nil
	}
	missing := make(map[string]enums.IndexedValueType, len(r.Missing))
	for _, a := range r.Missing {
		missing[a.Name] = a.Type
	}
	if _, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        namespace,
		SearchAttributes: missing,
	}); err != nil {
		return false, fmt.Errorf("add search attributes: %w", err)
	}
	return true, nil
}

// forceSearchAttributeReads makes every service read search attributes from
// the database instead of its namespace cache until the returned stop is
// called or the refresh window has passed, whichever comes first.
func forceSearchAttributeReads(dc *dynamicconfig.MemoryClient) (stop func()) {
	remove := dc.OverrideSetting(dynamicconfig.ForceSearchAttributesCacheRefreshOnRead, true)
	timer := time.AfterFunc(searchAttributeRefreshWindow, remove)
	return func() {
		timer.Stop()
		remove() // idempotent
	}
}
