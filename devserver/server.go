package devserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/membership/static"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/temporal"
)

// readyTimeout bounds the wait for the frontend after the services start.
// Readiness takes well under a second on a warm machine; the margin is for
// loaded CI machines and for large database files being opened.
const readyTimeout = 30 * time.Second

// Server is a running dev server. Stop it with [Server.Stop].
type Server struct {
	temporal     temporal.Server
	ui           *webUI
	logLevel     *stoppableLevel
	frontendAddr string
	namespace    string

	stopForcedReads func()
	stopOnce        sync.Once
	stopErr         error
}

// Start launches the Temporal services and, unless disabled, the Web UI, and
// returns once the frontend serves the namespace. It fails with an
// *AddrInUseError when the frontend or UI address is taken.
//
// On every start, fresh database or not, the namespace and the search
// attributes in opts are registered if they are missing, so starting twice on
// the same StateDir with the same or more attributes is harmless.
//
// ctx bounds the wait for readiness; the server itself runs until Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	s, err := opts.resolve()
	if err != nil {
		return nil, err
	}

	// Step 1. Ports. A taken port must be reported here: past this point the
	// UI server reacts to a failed bind by exiting the process, and the
	// Temporal server by logging at Fatal level.
	ports, err := choosePorts(&s)
	if err != nil {
		return nil, err
	}

	// Step 2. Database and namespace, written before the server reads them.
	sql, err := sqlConfig(s.stateDir)
	if err != nil {
		return nil, err
	}
	for _, ns := range s.namespaces() {
		if err := registerNamespace(sql, ns, s.searchAttributes); err != nil {
			return nil, err
		}
	}

	// Step 3. The four services.
	cfg := serverConfig(s, sql, ports)
	dc := dynamicConfig()
	logLevel := &stoppableLevel{base: s.logLevel}
	srv, err := launch(
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(staticHosts(cfg)),
		temporal.WithLogger(newServerLogger(s.logger, logLevel)),
		temporal.WithDynamicConfigClient(dc),
		temporal.WithAuthorizer(authorization.NewNoopAuthorizer()),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper {
			return authorization.NewNoopClaimMapper()
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("start temporal server: %w", err)
	}
	server := &Server{
		temporal:     srv,
		logLevel:     logLevel,
		frontendAddr: cfg.PublicClient.HostPort,
		namespace:    s.namespace,
	}

	// Step 4. Wait for the frontend, then add search attributes an existing
	// database lacks.
	readyCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	c, err := dialReady(readyCtx, server.frontendAddr, s.namespace, s.logger)
	if err != nil {
		return nil, errors.Join(err, server.Stop())
	}
	added := false
	for _, ns := range s.namespaces() {
		a, err := ensureSearchAttributes(readyCtx, c, server.frontendAddr, ns, s.searchAttributes)
		if err != nil {
			c.Close()
			return nil, errors.Join(fmt.Errorf("namespace %s: %w", ns, err), server.Stop())
		}
		added = added || a
	}
	c.Close()
	if added {
		server.stopForcedReads = forceSearchAttributeReads(dc)
	}

	// Step 5. The Web UI, last, so it never shows a server that is not ready.
	if s.uiEnabled {
		ui, err := startUI(readyCtx, s.uiHost, s.uiPort, server.frontendAddr, s.namespace, s.codecEndpoint)
		if err != nil {
			return nil, errors.Join(err, server.Stop())
		}
		server.ui = ui
	}
	return server, nil
}

// FrontendAddr is the host:port clients dial to reach the frontend, with the
// port picked at start if Options asked for port 0.
func (s *Server) FrontendAddr() string { return s.frontendAddr }

// UIURL is the Web UI's base URL, such as "http://127.0.0.1:8233", or "" when
// the UI is disabled.
func (s *Server) UIURL() string {
	if s.ui == nil {
		return ""
	}
	return s.ui.url
}

// Namespace is the namespace registered at start.
func (s *Server) Namespace() string { return s.namespace }

// Stop shuts down the Web UI and the Temporal services. Calling it again
// returns the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		if s.stopForcedReads != nil {
			s.stopForcedReads()
		}
		if s.ui != nil {
			s.ui.stop()
		}
		s.logLevel.quiet()
		if err := s.temporal.Stop(); err != nil {
			s.stopErr = fmt.Errorf("stop temporal server: %w", err)
		}
	})
	return s.stopErr
}

// choosePorts picks the ports Options left to the dev server and checks the
// ones it fixed, recording the choices in s.
func choosePorts(s *settings) (servicePorts, error) {
	var err error
	if s.frontendPort == 0 {
		if s.frontendPort, err = freePort(s.frontendHost); err != nil {
			return servicePorts{}, err
		}
	} else if err := checkBindable(s.frontendHost, s.frontendPort, "--temporal-port"); err != nil {
		return servicePorts{}, err
	}
	if s.uiEnabled {
		if s.uiPort == 0 {
			if s.uiPort, err = freePort(s.uiHost); err != nil {
				return servicePorts{}, err
			}
		} else if err := checkBindable(s.uiHost, s.uiPort, "--ui-port"); err != nil {
			return servicePorts{}, err
		}
	}
	internal, err := internalPorts()
	if err != nil {
		return servicePorts{}, err
	}
	// The HTTP API listens next to the gRPC frontend, on the same host.
	http, err := freePort(s.frontendHost)
	if err != nil {
		return servicePorts{}, err
	}
	return servicePorts{
		frontend:     s.frontendPort,
		history:      internal[0],
		matching:     internal[1],
		worker:       internal[2],
		frontendHTTP: http,
	}, nil
}

// internalPorts picks the history, matching and worker ports. Tests replace
// it to make a port clash happen on purpose.
var internalPorts = func() ([]int, error) { return freePorts(loopback, 3) }

// staticHosts tells each service where the others are. A one-process cluster
// needs no membership protocol, and without one no membership ports are
// opened.
func staticHosts(cfg *config.Config) map[primitives.ServiceName]static.Hosts {
	addr := func(name primitives.ServiceName) static.Hosts {
		rpc := cfg.Services[string(name)].RPC
		return static.SingleLocalHost(hostPort(dialHost(rpc.BindOnIP), rpc.GRPCPort))
	}
	return map[primitives.ServiceName]static.Hosts{
		primitives.FrontendService: addr(primitives.FrontendService),
		primitives.HistoryService:  addr(primitives.HistoryService),
		primitives.MatchingService: addr(primitives.MatchingService),
		primitives.WorkerService:   addr(primitives.WorkerService),
	}
}

// launch builds and starts the server, turning the panic that serverLogger
// raises in place of a Fatal exit into an error.
func launch(opts ...temporal.ServerOption) (srv temporal.Server, err error) {
	defer func() {
		if r := recover(); r != nil {
			fatal, ok := r.(fatalError)
			if !ok {
				panic(r)
			}
			srv, err = nil, fatal
		}
	}()
	srv, err = temporal.NewServer(opts...)
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	return srv, nil
}

// dialReady connects an SDK client to the frontend once it answers for the
// namespace. The services start serving in the background after
// temporal.Server.Start returns, so the first attempts may be refused.
func dialReady(ctx context.Context, addr, namespace string, logger *slog.Logger) (client.Client, error) {
	quiet := sdklog.NewStructuredLogger(quietLogger(logger, slog.LevelError))
	for {
		c, err := client.DialContext(ctx, client.Options{HostPort: addr, Namespace: namespace, Logger: quiet})
		if err == nil {
			_, err = c.WorkflowService().DescribeNamespace(ctx,
				&workflowservice.DescribeNamespaceRequest{Namespace: namespace})
			if err == nil {
				return c, nil
			}
			c.Close()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("frontend at %s not ready: %w (last error: %v)", addr, ctx.Err(), err)
		case <-time.After(25 * time.Millisecond):
		}
	}
}
