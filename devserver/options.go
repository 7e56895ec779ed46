package devserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/server/common/searchattribute/sadefs"
)

// Defaults applied by [Start] to empty [Options] fields.
const (
	// DefaultNamespace is the namespace registered when Options.Namespace is empty.
	DefaultNamespace = "default"
	// DefaultFrontendAddr is where the gRPC frontend listens by default.
	DefaultFrontendAddr = "127.0.0.1:7233"
	// DefaultUIAddr is where the Web UI listens by default.
	DefaultUIAddr = "127.0.0.1:8233"
)

// UIDisabled is the UIAddr value that turns the Web UI off.
const UIDisabled = "-"

// databaseFile is the name of the SQLite file inside Options.StateDir.
const databaseFile = "temporal.db"

// Options configure an embedded dev server. The zero value is usable: an
// in-memory database, namespace "default", the frontend on 127.0.0.1:7233
// and the Web UI on 127.0.0.1:8233.
type Options struct {
	// StateDir holds the SQLite database (StateDir/temporal.db); it is created
	// if missing. Empty means an in-memory database. The server's SQLite
	// driver never closes its connections, so either stays open, and an
	// in-memory one allocated, until the process exits, even after Stop.
	StateDir string

	// Namespace is registered at start if it does not exist. Default "default".
	Namespace string

	// ExtraNamespaces are registered at start like Namespace, with the same search
	// attributes. Workers in different namespaces never take each other's tasks, even on
	// a task queue of the same name: a benchmark runs two differently built workers side
	// by side this way.
	ExtraNamespaces []string

	// FrontendAddr is the host:port of the gRPC frontend, default
	// "127.0.0.1:7233". Port 0 picks a free port; read it back with
	// [Server.FrontendAddr]. The host must be an IP address or "localhost".
	FrontendAddr string

	// UIAddr is the host:port of the Web UI, default "127.0.0.1:8233". Port 0
	// picks a free port. "-" (UIDisabled) disables the UI, as does DisableUI.
	UIAddr string

	// DisableUI turns the Web UI off whatever UIAddr says.
	DisableUI bool

	// UICodecEndpoint is the URL of a codec server the Web UI's browser calls to decode
	// encrypted payloads (see package codec). Empty: payloads are shown as stored.
	UICodecEndpoint string

	// SearchAttributes are custom search attributes registered in Namespace at
	// every start; ones already registered with the same type are left alone.
	SearchAttributes map[string]enums.IndexedValueType

	// Logger receives the server's logs. Nil means slog.Default().
	Logger *slog.Logger

	// LogLevel is the lowest level of server log passed to Logger. Nil means
	// slog.LevelWarn, because below that the server is very chatty.
	LogLevel slog.Leveler
}

// AddrInUseError reports that an address the dev server must listen on is
// taken, usually by another dev server. Flag names the command-line flag that
// moves it.
type AddrInUseError struct {
	Addr string
	Flag string
}

// Error implements error.
func (e *AddrInUseError) Error() string {
	return fmt.Sprintf("%s is in use: is another keyturn dev or temporal server running? use %s", e.Addr, e.Flag)
}

// settings are Options after defaults and validation, in the form Start needs.
type settings struct {
	stateDir         string
	namespace        string
	extraNamespaces  []string
	frontendHost     string
	frontendPort     int // 0 until a free port is picked
	uiEnabled        bool
	uiHost           string
	uiPort           int
	searchAttributes map[string]enums.IndexedValueType
	logger           *slog.Logger
	logLevel         slog.Leveler
	codecEndpoint    string
}

// namespaces lists every namespace to register: Namespace first, then the extra ones.
func (s settings) namespaces() []string {
	return append([]string{s.namespace}, s.extraNamespaces...)
}

// resolve applies defaults and validates o, reporting every problem at once.
func (o Options) resolve() (settings, error) {
	s := settings{
		stateDir:         o.StateDir,
		namespace:        o.Namespace,
		extraNamespaces:  o.ExtraNamespaces,
		searchAttributes: o.SearchAttributes,
		logger:           o.Logger,
		logLevel:         o.LogLevel,
		codecEndpoint:    o.UICodecEndpoint,
	}
	if s.namespace == "" {
		s.namespace = DefaultNamespace
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.logLevel == nil {
		s.logLevel = slog.LevelWarn
	}

	var problems []error
	frontendAddr := o.FrontendAddr
	if frontendAddr == "" {
		frontendAddr = DefaultFrontendAddr
	}
	var err error
	if s.frontendHost, s.frontendPort, err = splitAddr(frontendAddr); err != nil {
		problems = append(problems, fmt.Errorf("frontend address: %w", err))
	}

	uiAddr := o.UIAddr
	if uiAddr == "" {
		uiAddr = DefaultUIAddr
	}
	s.uiEnabled = !o.DisableUI && uiAddr != UIDisabled
	if s.uiEnabled {
		if s.uiHost, s.uiPort, err = splitAddr(uiAddr); err != nil {
			problems = append(problems, fmt.Errorf("UI address: %w", err))
		}
	}

	seen := map[string]bool{s.namespace: true}
	for _, ns := range o.ExtraNamespaces {
		if ns == "" || seen[ns] {
			problems = append(problems, fmt.Errorf("extra namespace %q: empty or named twice", ns))
		}
		seen[ns] = true
	}
	problems = append(problems, validateSearchAttributes(o.SearchAttributes)...)
	if len(problems) > 0 {
		return settings{}, fmt.Errorf("invalid dev server options: %w", errors.Join(problems...))
	}
	return s, nil
}

// splitAddr parses host:port into an IP literal and a port. "localhost" and
// an empty host mean 127.0.0.1: the server's bind settings take IPs only, and
// a dev server should not be reachable from the network by accident.
func splitAddr(addr string) (string, int, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	if host == "" || strings.EqualFold(host, "localhost") {
		host = "127.0.0.1"
	}
	if net.ParseIP(host) == nil {
		return "", 0, fmt.Errorf("%q: host must be an IP address or localhost", addr)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%q: invalid port", addr)
	}
	return host, port, nil
}

// validateSearchAttributes rejects names the server reserves and types that
// cannot be indexed, before anything is written to the database.
func validateSearchAttributes(attrs map[string]enums.IndexedValueType) []error {
	names := make([]string, 0, len(attrs))
	for name := range attrs {
		names = append(names, name)
	}
	sort.Strings(names) // stable error order
	var problems []error
	for _, name := range names {
		typ := attrs[name]
		switch {
		case name == "":
			problems = append(problems, errors.New("search attribute with an empty name"))
		case sadefs.IsReserved(name):
			problems = append(problems, fmt.Errorf("search attribute %s: name is reserved by Temporal", name))
		case typ == enums.INDEXED_VALUE_TYPE_UNSPECIFIED || enums.IndexedValueType_name[int32(typ)] == "":
			problems = append(problems, fmt.Errorf("search attribute %s: invalid type %d", name, typ))
		}
	}
	return problems
}

// hostPort joins host and port, bracketing IPv6 literals.
func hostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// dialHost is the address a client on this machine uses to reach a listener
// bound to host: an unspecified bind address (0.0.0.0, ::) is not dialable.
func dialHost(host string) string {
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if ip.To4() != nil {
			return "127.0.0.1"
		}
		return "::1"
	}
	return host
}
