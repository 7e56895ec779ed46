// Package postgres rotates the password of a PostgreSQL login role with pgx.
//
// # Strategies
//
// alternating (the default) keeps two login roles, the twins (Config.Twins, by default
// "<role>_a" and "<role>_b"), as members of one group role, Config.Role, which holds every
// privilege and owns the application's objects. Each rotation re-keys the twin consumers
// are not using, so the current credential keeps working through the grace period and the
// two credentials never differ in what they may do. Apply makes sure of the following, in
// one transaction, before it sets the password:
//
//	CREATE ROLE "<twin>" WITH NOLOGIN INHERIT      -- only if the twin does not exist
//	GRANT "<role>" TO "<twin>"                      -- only if it is not a direct member yet
//	ALTER ROLE "<twin>" SET role = '<role>'         -- what a twin creates is owned by <role>
//	ALTER ROLE "<twin>" WITH LOGIN INHERIT PASSWORD '<SCRAM verifier>'
//
// The group role must already exist; Keyturn never creates it or changes its privileges.
// Adopting an existing role is the first rotation: the first twin appears with the role's
// privileges and consumers move to it. The role's own login is left alone, unless the
// credential consumers use now was recorded as the current version first (`keyturn put
// <id> --meta role=<role>`): then it is the previous version, and after the grace period
// Revoke ends it (NOLOGIN, no password). The twins lose nothing, since they inherit the
// group role's privileges, not its login. A secret moving from the single strategy to
// this one is revoked the same way.
//
// single gives Config.Role itself a new password each rotation:
//
//	ALTER ROLE "<role>" WITH LOGIN PASSWORD '<SCRAM verifier>'
//
// Consumers still holding the old password are cut off at Apply rather than at Revoke, so
// use it only for targets that cannot have two roles. Revoke does nothing when the version
// to keep uses the same role, which is always the case here. Twins may still be set with
// this strategy, so that versions made earlier by the alternating strategy can be revoked.
//
// Revoke disables a login role and, with Config.TerminateSessions, ends its sessions:
//
//	ALTER ROLE "<login>" WITH NOLOGIN PASSWORD NULL
//	SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '<login>'
//
// It only ever touches the twins and, with the single strategy, Config.Role: any other name
// in a version's metadata is refused with rotators.ErrInvalidConfig.
//
// # What a version holds
//
// The material is one field, "password". The metadata names the login role ("role", and
// "username" for consumers: with the alternating strategy, the twin that password belongs
// to), the "strategy", and the server: "engine" ("postgres"), "host", "port" and "dbname"
// from Config.Host, Port and Database. Read as one JSON object (stores/vaultkv,
// stores/awssm), that is AWS's documented structure for database credentials, which RDS
// Proxy, AWS's JDBC wrapper and the Secrets Manager caching clients read. Versions made
// before the server fields existed carry role, username and strategy only; every step
// still works with them, since only "role" is needed to act on a version.
//
// # Passwords
//
// A password is 32 random bytes in unpadded URL-safe base64 (43 characters). It reaches the
// server only as a SCRAM-SHA-256 verifier computed here (RFC 5802, RFC 7677), so a server
// that logs statements logs the verifier, never the password. PostgreSQL stores a verifier
// as given whatever password_encryption says; pg_hba.conf must use scram-sha-256, or md5,
// which performs SCRAM for a role whose stored password is a SCRAM verifier.
//
// # Privileges of the admin role
//
// Config.AdminUser must not be a superuser in production; these grants are enough. On
// PostgreSQL 15 and earlier:
//
//	CREATE ROLE keyturn_admin WITH LOGIN CREATEROLE PASSWORD '...';
//	GRANT pg_signal_backend TO keyturn_admin;  -- only with TerminateSessions
//	GRANT pg_read_all_stats TO keyturn_admin;  -- only for the revoke gate (InUse)
//
// CREATEROLE there reaches every non-superuser role: the admin can create, alter and
// drop any of them, set any of their passwords, and grant membership in any of them,
// to itself as well. Keyturn gives it no membership in the group role, but that does not
// keep it from the application's data: it can GRANT the group role to itself, SET ROLE
// to it and read what the application reads (TestCreateRoleAdminCanJoinGroupRole shows
// this). On 15, treat keyturn_admin as able to become any non-superuser role of the
// server.
//
// On PostgreSQL 16 and later CREATEROLE only reaches roles the admin holds WITH ADMIN
// OPTION, and the roles it creates (which come with ADMIN OPTION), so add
//
//	GRANT "<role>" TO keyturn_admin WITH ADMIN OPTION, INHERIT FALSE, SET FALSE;
//
// and the same for each twin that already exists and was not created by keyturn_admin.
// INHERIT FALSE, SET FALSE mean the admin does not use the group role's privileges as
// granted; but ADMIN OPTION lets it grant the role to anyone, itself included, with
// INHERIT or SET (the createrole_self_grant setting does exactly this), so on 16 too the
// admin can reach the data of the group roles it manages, only not of other roles. The
// test machines run PostgreSQL 15; the 16 behaviour is from PostgreSQL's documentation.
//
// pg_signal_backend cannot end superuser sessions, and CREATEROLE cannot alter
// superusers, so neither the group role nor the twins may be superusers.
//
// Apply sets "role" on each twin (ALTER ROLE ... SET role) once, when it is not set
// already. PostgreSQL checks that value against the admin, which is not a member of the
// group role, and answers with a NOTICE ("permission will be denied to set role"); the
// setting is for the twins, who are members, so Apply silences that notice for its own
// transaction (SET LOCAL client_min_messages = warning). No other step sends notices.
//
// # Admin sessions
//
// In a worker the rotators of one target share a pool of admin sessions (Config.Pools,
// set by the worker's binding): at most DefaultPoolSize (8) per worker for each server,
// database, admin login and admin password in use, each closed 30 to 60 s after its last
// use (an idle limit checked every 30 s). A pool unused for 5 minutes (one for an admin
// password that has changed) is closed at the next use of the worker's pools. Give the
// admin role a CONNECTION LIMIT of at least 8 times the workers times the databases it
// serves, with room for a password change. Without Pools (a Rotator used on its own)
// every call logs in and out again. Test always logs in afresh, as the version under
// test.
//
// # In use
//
// The Rotator is a rotators.UsageReporter: before the revoke, the gate asks InUse whether
// the old version's login role still has sessions, read from pg_stat_activity across
// every database of the server:
//
//	SELECT pid, application_name, host(client_addr), client_port, backend_start, datname, state
//	FROM pg_stat_activity WHERE usename = '<login>' AND pid <> pg_backend_pid()
//
// Each session becomes a rotators.Use: the role, its application_name, the client's
// address and port, when it began, and its backend PID, database and state. With the
// alternating strategy the old version is the other twin, and every session of it
// counts. With the single strategy the role is the new version's too, so only sessions
// that began before the promotion count: backend_start, by the server's clock, before
// UsageRequest.Since plus the server clock's offset from the worker's (measured at each
// check from clock_timestamp(), with the query's latency erring towards holding) plus
// SessionStartMargin (a minute, for the workflow's clock and drift). So a server clock
// ahead of the worker's does not make an old session look new. The count errs towards
// holding: a session opened with the new password between Apply and the promotion, or
// within the margin after it, counts as well. Its sessions also outlive the revoke,
// which has nothing to disable on a shared role, so there the gate tells the operator
// who still runs on the old password rather than protecting them.
//
// pg_stat_activity lists the server's sessions, and only those: InUse cannot see a
// client of PgBouncer (or another pooler) that logged in to the pooler with the old
// password but has no server connection at this moment (transaction pooling gives it
// one per transaction; the pooler closes idle server connections), nor, with the single
// strategy, tell which password the pooler's clients used, since its server connections
// log in as the same role. Sessions on hot standbys are in their own pg_stat_activity
// and not seen either. Behind a pooler or with readers on standbys an idle answer is not
// proof; docs/pgbouncer.md says what to do.
//
// The admin needs pg_read_all_stats for this. Without it PostgreSQL still lists other
// roles' sessions and their user names, but hides when and from where they began (and
// what they run), so InUse refuses with rotators.ErrPermissionDenied naming the grant
// rather than report callers it cannot name or a shared role as idle. The role also lets
// the admin read every session's current query text and the server's statistics views;
// membership in the login role itself would do as well but grants its data, which is
// worse. InUse only reads.
//
// # Errors
//
// A missing privilege (SQLSTATE 42501) or a refused admin login wraps
// rotators.ErrPermissionDenied; a refused login in Test wraps
// rotators.ErrCredentialRejected; a check query the credential cannot run (no privilege,
// no such table, a write in the read-only check) wraps rotators.ErrCheckFailed; a bad
// configuration or a missing group role wraps
// rotators.ErrInvalidConfig. No error carries a password or a verifier: messages from the
// server pass through a sanitizer that removes them, keeping the *pgconn.PgError type and
// its SQLSTATE.
package postgres
