// Package devserver runs a complete Temporal server inside the calling process
// for `keyturn dev` and for tests: the frontend, history, matching and worker
// services share one process and one SQLite database, and the Temporal Web UI
// can be served next to them.
//
// The package owns everything a single-node development cluster needs and
// nothing more:
//
//   - persistence: a SQLite file at StateDir/temporal.db (created with its
//     schema on first start, reused afterwards, in WAL mode with
//     synchronous=NORMAL so a commit costs no fsync) or a private in-memory
//     database when StateDir is empty;
//   - ports: the frontend listens where Options.FrontendAddr says; the
//     history, matching and worker services get free ports on 127.0.0.1 chosen
//     at start, so several servers (parallel test packages, say) never clash;
//   - the namespace and custom search attributes Keyturn needs, registered
//     idempotently on every start (see [Start]);
//   - logging: the server's logger is adapted to log/slog and filtered to
//     Warn and above unless Options.LogLevel says otherwise, because at Info
//     the server writes hundreds of lines while starting.
//
// # Dynamic config
//
// The server reads its tunables from an in-memory dynamic config client. The
// values below are set on every start; everything else keeps the server's
// defaults.
//
//   - system.enableActivityEagerExecution = true: a worker that completes a
//     workflow task receives the activities it just scheduled in the same
//     response instead of waiting for a poll through matching. This is the
//     default in server 1.32; it is pinned because, with the single
//     partitions below, it brought a four-activity workflow on this kind of
//     machine from about 450 ms to about 250 ms (and the queue reads below
//     from there to about 27 ms).
//   - matching.numTaskqueueReadPartitions = 1 and
//     matching.numTaskqueueWritePartitions = 1: the default of four partitions
//     spreads tasks for scale this node never has; with one partition a poll
//     never waits on an empty partition while a task sits in another.
//   - history.transferProcessorMaxPollRPS = 1000 and
//     history.timerProcessorMaxPollRPS = 1000: a history shard reads its
//     transfer queue (every workflow and activity task passes through it on its
//     way to matching) and its timer queue at most this often per second. The
//     default of 20 is per shard and sized for clusters of hundreds of shards;
//     this server has one, so every step of every workflow waited for the next
//     of 20 reads a second: about 45 ms per workflow task, a four-activity
//     workflow 250 ms instead of about 25 ms. A read happens only when a new
//     task was written (or once a minute), so the higher ceiling costs
//     nothing while the server is idle, and under load each read still takes
//     up to a batch of 100 tasks.
//   - history.timerProcessorMaxTimeShift = 50 ms: a new timer (a workflow
//     timer, an activity retry's backoff, a sticky workflow task's
//     schedule-to-start timeout) never fires before now plus this shift, a
//     margin for clock skew between the hosts of a cluster. At the default of
//     1 s every timer shorter than a second fired after a second: an
//     incident's hedged containment batch (due after 250 ms) waited 1 s, and a
//     300 ms sticky timeout was 1 s. One process has no skew between hosts.
//   - frontend.enableUpdateWorkflowExecution = true and
//     frontend.enableUpdateWorkflowExecutionAsyncAccepted = true: workflow
//     updates (used for interactive steps such as approvals) must work on the
//     dev server as they do in production. Also defaults in 1.32, pinned
//     because older servers shipped them off.
//   - frontend.namespaceRPS.visibility = 100: the default of 10 visibility
//     requests per second is exhausted by the Web UI's list and count refreshes
//     alone, and `keyturn` status commands poll visibility too.
//   - history.hostLevelCacheMaxSize = 8192: a dev server holds few workflows;
//     the default of 128000 cached mutable states only lets a long-running
//     `keyturn dev` grow its memory.
//   - frontend.enableServerVersionCheck = false: otherwise the frontend calls
//     Temporal's update service periodically, sending cluster details; a
//     local dev tool should make no outbound calls of its own, and these
//     machines often have no network.
//
// When a restart adds search attributes to an existing database,
// system.forceSearchAttributesCacheRefreshOnRead is switched on for a few
// seconds, until every service's namespace cache has refreshed, so that the
// new attributes can be used as soon as Start returns.
//
// The frontend's HTTP API listens on a free port of the frontend's host.
// Keyturn, its workers and the Web UI all speak gRPC, but without the HTTP API
// the server warns at every start that Nexus is unavailable.
//
// Stopping takes about a second: the frontend drains its long polls for at
// least that long. Server logs are dropped once Stop is called: while the
// services shut down they report each other's disappearance as warnings and
// errors that nobody can act on.
package devserver
