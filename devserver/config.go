package devserver

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	sqliteschema "go.temporal.io/server/schema/sqlite"
)

const (
	// clusterName names the single cluster. It is stored with every namespace
	// as its active cluster, so it must never change for an existing file.
	clusterName = "active"
	// storeName names the one data store that holds both persistence and
	// visibility.
	storeName = "sqlite-default"
	// loopback is where the internal services listen: only the frontend is
	// meant to be reached by anything but this process.
	loopback = "127.0.0.1"
)

// servicePorts are the gRPC ports of the four services and the port of the
// frontend's HTTP API.
type servicePorts struct {
	frontend, history, matching, worker int
	frontendHTTP                        int
}

// sqlConfig describes the SQLite database: a file under stateDir, or an
// in-memory database private to this server when stateDir is empty. A new
// database file gets its schema here.
func sqlConfig(stateDir string) (*config.SQL, error) {
	cfg := &config.SQL{PluginName: sqliteplugin.PluginName}
	if stateDir == "" {
		// The SQLite plugin creates the schema itself in memory mode, and
		// keeps the connection open for the life of the process, so the
		// database outlives the helper connections used before start. The
		// random name keeps two servers in one process apart.
		cfg.DatabaseName = "keyturn-dev-" + uuid.NewString()
		cfg.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
		return cfg, nil
	}

	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	path := filepath.Join(stateDir, databaseFile)
	cfg.DatabaseName = path
	cfg.ConnectAttributes = map[string]string{
		"mode": "rwc",
		// WAL with synchronous=NORMAL commits without an fsync per
		// transaction; a dev database may lose its last moments on power loss
		// but never becomes corrupt, and every workflow step is a commit.
		"journal_mode": "wal",
		"synchronous":  "normal",
	}
	var fresh bool
	info, statErr := os.Stat(path)
	switch {
	case os.IsNotExist(statErr):
		fresh = true
	case statErr != nil:
		return nil, fmt.Errorf("inspect database file: %w", statErr)
	default:
		// An empty file is what a crash during the very first start leaves.
		fresh = info.Size() == 0
	}
	if fresh {
		if err := sqliteschema.SetupSchema(cfg); err != nil {
			return nil, fmt.Errorf("create database schema: %w", err)
		}
	}
	return cfg, nil
}

// serverConfig is the static configuration of a one-node cluster on ports.
func serverConfig(s settings, sql *config.SQL, ports servicePorts) *config.Config {
	frontendDial := hostPort(dialHost(s.frontendHost), ports.frontend)

	var cfg config.Config
	cfg.Global.Membership.BroadcastAddress = loopback
	cfg.Persistence = config.Persistence{
		DefaultStore:     storeName,
		VisibilityStore:  storeName,
		NumHistoryShards: 1, // one node: more shards only add background work
		DataStores:       map[string]config.DataStore{storeName: {SQL: sql}},
	}
	cfg.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             frontendDial,
				HTTPAddress:            hostPort(dialHost(s.frontendHost), ports.frontendHTTP),
				// Used only on first start: afterwards the server keeps the
				// ID stored in the database and ignores this one.
				ClusterID: uuid.NewString(),
			},
		},
	}
	cfg.DCRedirectionPolicy.Policy = "noop"
	cfg.Services = map[string]config.Service{
		// The HTTP API is not used by Keyturn, but without it the frontend
		// warns at every start that Nexus is unavailable.
		"frontend": {RPC: config.RPC{GRPCPort: ports.frontend, HTTPPort: ports.frontendHTTP, BindOnIP: s.frontendHost}},
		"history":  {RPC: config.RPC{GRPCPort: ports.history, BindOnIP: loopback}},
		"matching": {RPC: config.RPC{GRPCPort: ports.matching, BindOnIP: loopback}},
		"worker":   {RPC: config.RPC{GRPCPort: ports.worker, BindOnIP: loopback}},
	}
	cfg.Archival.History.State = config.ArchivalDisabled
	cfg.Archival.Visibility.State = config.ArchivalDisabled
	cfg.NamespaceDefaults.Archival.History.State = config.ArchivalDisabled
	cfg.NamespaceDefaults.Archival.Visibility.State = config.ArchivalDisabled
	// The worker service runs system workflows through an SDK client that
	// dials this address.
	cfg.PublicClient.HostPort = frontendDial
	return &cfg
}

// queuePollRPS is how often per second the one history shard may read its transfer and
// timer queues (see the package doc).
const queuePollRPS = 1000

// timerShift is the earliest a new timer may fire after now (see the package doc).
const timerShift = 50 * time.Millisecond

// dynamicConfig returns the tuned settings described in the package doc. It
// is a MemoryClient rather than a static map so that Start can switch a
// setting on for a while after the server is up.
func dynamicConfig() *dynamicconfig.MemoryClient {
	dc := dynamicconfig.NewMemoryClient()
	dc.OverrideSetting(dynamicconfig.EnableActivityEagerExecution, true)
	dc.OverrideSetting(dynamicconfig.MatchingNumTaskqueueReadPartitions, 1)
	dc.OverrideSetting(dynamicconfig.MatchingNumTaskqueueWritePartitions, 1)
	dc.OverrideSetting(dynamicconfig.FrontendEnableUpdateWorkflowExecution, true)
	dc.OverrideSetting(dynamicconfig.FrontendEnableUpdateWorkflowExecutionAsyncAccepted, true)
	dc.OverrideSetting(dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance, 100)
	dc.OverrideSetting(dynamicconfig.HistoryCacheHostLevelMaxSize, 8192)
	dc.OverrideSetting(dynamicconfig.EnableServerVersionCheck, false)
	dc.OverrideSetting(dynamicconfig.TransferProcessorMaxPollRPS, queuePollRPS)
	dc.OverrideSetting(dynamicconfig.TimerProcessorMaxPollRPS, queuePollRPS)
	dc.OverrideSetting(dynamicconfig.TimerProcessorMaxTimeShift, timerShift)
	return dc
}
