// Package setup checks and prepares the Temporal namespace Keyturn runs in: the namespace
// exists, and it holds Keyturn's custom search attributes with their types. A worker
// checks at start, so a missing piece stops it with the names and the fix instead of
// failing the first rotation; `keyturn setup` makes the namespace ready.
package setup

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Attribute is a custom search attribute and its type.
type Attribute struct {
	Name string
	Type enumspb.IndexedValueType
}

// String is the name=Type form Temporal's tools take ("KeyturnStep=Keyword").
func (a Attribute) String() string { return a.Name + "=" + typeName(a.Type) }

// Attributes lists the attributes of want (name to type), by name.
func Attributes(want map[string]enumspb.IndexedValueType) []Attribute {
	out := make([]Attribute, 0, len(want))
	for _, name := range sortedNames(want) {
		out = append(out, Attribute{Name: name, Type: want[name]})
	}
	return out
}

// List writes attributes as Temporal's tools take them: "A=Keyword, B=Keyword".
func List(attrs []Attribute) string {
	names := make([]string, len(attrs))
	for i, a := range attrs {
		names[i] = a.String()
	}
	return strings.Join(names, ", ")
}

// Conflict is an attribute registered with another type than Keyturn's. The server cannot
// change a type in place.
type Conflict struct {
	Name       string
	Have, Want enumspb.IndexedValueType
}

// Report is what a namespace lacks for Keyturn.
type Report struct {
	// Address and Namespace say where the check ran, for messages.
	Address   string
	Namespace string
	// NoNamespace: the namespace does not exist (nothing else was checked).
	NoNamespace bool
	// Missing are the attributes not registered, by name.
	Missing []Attribute
	// Conflicts are the attributes registered with another type, by name.
	Conflicts []Conflict
}

// Ready reports whether Keyturn can run in the namespace.
func (r Report) Ready() bool {
	return !r.NoNamespace && len(r.Missing) == 0 && len(r.Conflicts) == 0
}

// Check reads what the namespace has and compares it with want (name to type). An error
// means the check itself could not run: the cluster refused or did not answer.
func Check(ctx context.Context, c client.Client, address, namespace string, want map[string]enumspb.IndexedValueType) (Report, error) {
	r := Report{Address: address, Namespace: namespace}
	_, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
	var notFound *serviceerror.NamespaceNotFound
	switch {
	case errors.As(err, &notFound):
		r.NoNamespace = true
		return r, nil
	case err != nil:
		return r, fmt.Errorf("describe namespace %q on %s: %w", namespace, address, err)
	}
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return r, fmt.Errorf("list the search attributes of namespace %q on %s: %w", namespace, address, err)
	}
	for _, name := range sortedNames(want) {
		got, ok := have.GetCustomAttributes()[name]
		switch {
		case !ok:
			r.Missing = append(r.Missing, Attribute{Name: name, Type: want[name]})
		case got != want[name]:
			r.Conflicts = append(r.Conflicts, Conflict{Name: name, Have: got, Want: want[name]})
		}
	}
	return r, nil
}

// Err is the report as an error naming what is missing and the commands that fix it, or
// nil when the namespace is ready.
func (r Report) Err() error {
	if r.Ready() {
		return nil
	}
	where := fmt.Sprintf("namespace %q on %s", r.Namespace, r.Address)
	if r.NoNamespace {
		return fmt.Errorf("%s does not exist: create it with `keyturn setup --namespace %s --create-namespace` "+
			"(or `temporal operator namespace create --namespace %s`; on Temporal Cloud, in the Cloud UI or with tcld), "+
			"or point TEMPORAL_NAMESPACE / --namespace at the namespace Keyturn should use", where, r.Namespace, r.Namespace)
	}
	var parts []string
	if len(r.Conflicts) > 0 {
		var names []string
		for _, c := range r.Conflicts {
			names = append(names, fmt.Sprintf("%s is %s, Keyturn needs %s", c.Name, typeName(c.Have), typeName(c.Want)))
		}
		parts = append(parts, fmt.Sprintf("has search attributes of another type (%s): a type cannot change in place; "+
			"remove them (`temporal operator search-attribute remove --namespace %s --name NAME`), then run `keyturn setup --namespace %s`",
			strings.Join(names, "; "), r.Namespace, r.Namespace))
	}
	if len(r.Missing) > 0 {
		parts = append(parts, fmt.Sprintf("lacks Keyturn's search attributes %s: register them with `keyturn setup --namespace %s` "+
			"(on Temporal Cloud, add them in the namespace's settings or with `tcld namespace search-attributes add`)",
			List(r.Missing), r.Namespace))
	}
	return fmt.Errorf("%s %s", where, strings.Join(parts, "; and it "))
}

// Options adjust Apply.
type Options struct {
	// CreateNamespace registers the namespace when it does not exist.
	CreateNamespace bool
	// Retention is how long a new namespace keeps closed workflows' histories.
	Retention time.Duration
	// Wait bounds how long Apply waits for the cluster to accept what it added; the
	// cluster's services see new namespaces and attributes when they refresh their
	// namespace cache (every 10 s by default).
	Wait time.Duration
}

// Result says what Apply changed.
type Result struct {
	CreatedNamespace bool
	Added            []Attribute
}

// Apply makes the namespace ready: it creates it (when asked) and registers the missing
// attributes, then waits until the frontend accepts queries on them. Running it again
// changes nothing. Attributes of another type are an error and nothing is added.
func Apply(ctx context.Context, c client.Client, address, namespace string, want map[string]enumspb.IndexedValueType, opts Options) (Result, error) {
	var res Result
	if opts.Wait <= 0 {
		return res, fmt.Errorf("the wait must be positive, not %s", opts.Wait)
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Wait)
	defer cancel()
	r, err := Check(ctx, c, address, namespace, want)
	if err != nil {
		return res, err
	}
	if r.NoNamespace {
		if !opts.CreateNamespace {
			return res, r.Err()
		}
		if _, err := c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
			Namespace:                        namespace,
			Description:                      "Keyturn credential rotations",
			WorkflowExecutionRetentionPeriod: durationpb.New(opts.Retention),
		}); err != nil {
			return res, fmt.Errorf("create namespace %q on %s: %w", namespace, address, err)
		}
		res.CreatedNamespace = true
		if r, err = waitFor(ctx, func(ctx context.Context) (Report, error) {
			// Each service sees the namespace when it refreshes its cache: until then
			// it is not found, by one call or the other.
			r, err := Check(ctx, c, address, namespace, want)
			var notFound *serviceerror.NamespaceNotFound
			switch {
			case err == nil && r.NoNamespace:
				err = errNotYet
			case errors.As(err, &notFound):
				err = fmt.Errorf("%w: %v", errNotYet, err)
			}
			return r, err
		}); err != nil {
			return res, fmt.Errorf("namespace %q was created on %s but is not usable yet: %w", namespace, address, err)
		}
	}
	if len(r.Conflicts) > 0 {
		return res, r.Err()
	}
	if len(r.Missing) > 0 {
		missing := make(map[string]enumspb.IndexedValueType, len(r.Missing))
		for _, a := range r.Missing {
			missing[a.Name] = a.Type
		}
		// A namespace created a moment ago may not be in the operator service's cache yet.
		if _, err := waitFor(ctx, func(ctx context.Context) (struct{}, error) {
			_, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
				Namespace: namespace, SearchAttributes: missing,
			})
			var notFound *serviceerror.NamespaceNotFound
			if errors.As(err, &notFound) {
				err = errNotYet
			}
			return struct{}{}, err
		}); err != nil {
			return res, fmt.Errorf("register search attributes in namespace %q on %s: %w%s", namespace, address, err, refusedHint(err))
		}
		res.Added = r.Missing
	}
	if _, err := waitFor(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, queryable(ctx, c, namespace, want) }); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return res, fmt.Errorf("namespace %q on %s has Keyturn's search attributes, but its frontend did not accept queries on them within the wait (%w); "+
				"run `keyturn setup --check` again in a minute", namespace, address, err)
		}
		return res, fmt.Errorf("namespace %q on %s has Keyturn's search attributes, but asking its frontend whether it accepts them failed: %w%s",
			namespace, address, err, refusedHint(err))
	}
	return res, nil
}

// errNotYet marks an answer worth asking again while Apply waits.
var errNotYet = errors.New("not yet")

// waitFor calls try until it succeeds, fails with an error other than errNotYet, or ctx
// ends.
func waitFor[T any](ctx context.Context, try func(context.Context) (T, error)) (T, error) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		v, err := try(ctx)
		if err == nil || !errors.Is(err, errNotYet) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("%w (last answer: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// queryable asks the frontend to count workflows by every attribute in want: it refuses a
// query naming an attribute it does not know (InvalidArgument, errNotYet here, since its
// cache refreshes), so an answer means it sees them all.
func queryable(ctx context.Context, c client.Client, namespace string, want map[string]enumspb.IndexedValueType) error {
	var terms []string
	for _, name := range sortedNames(want) {
		if want[name] == enumspb.INDEXED_VALUE_TYPE_KEYWORD {
			terms = append(terms, name+` = "keyturn-setup-probe"`)
		}
	}
	if len(terms) == 0 {
		return nil
	}
	_, err := c.WorkflowService().CountWorkflowExecutions(ctx, &workflowservice.CountWorkflowExecutionsRequest{
		Namespace: namespace, Query: strings.Join(terms, " AND "),
	})
	var invalid *serviceerror.InvalidArgument
	if errors.As(err, &invalid) {
		return fmt.Errorf("%w: %v", errNotYet, err)
	}
	return err
}

// refusedHint adds advice when the cluster refused the operator call itself.
func refusedHint(err error) string {
	if Refused(err) {
		return " (the cluster refused the operator call: run `keyturn setup` with an identity allowed to manage the namespace; " +
			"on Temporal Cloud, add the attributes in the namespace's settings or with `tcld namespace search-attributes add`)"
	}
	return ""
}

// Refused reports whether err is the cluster refusing this identity the check (permission
// denied, or an API it does not offer), as opposed to the cluster being unreachable.
func Refused(err error) bool {
	var denied *serviceerror.PermissionDenied
	var unimplemented *serviceerror.Unimplemented
	return errors.As(err, &denied) || errors.As(err, &unimplemented)
}

func sortedNames(m map[string]enumspb.IndexedValueType) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// typeName is the type as Temporal's tools spell it: Keyword, Text, Int, ...
func typeName(t enumspb.IndexedValueType) string {
	s := strings.TrimPrefix(t.String(), "INDEXED_VALUE_TYPE_")
	parts := strings.Split(strings.ToLower(s), "_")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "")
}
