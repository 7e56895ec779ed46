// Package mariadb rotates the password of MariaDB accounts (MariaDB 10.4 and later),
// inventory kind "mariadb".
//
// # Strategies
//
// Alternating (the default): two twin accounts, "<role>_a" and "<role>_b" at one host
// pattern, both granted one role that holds the application's privileges and have it as
// their default role, so their privileges cannot drift. Each rotation re-keys the twin
// not in use; the previous twin keeps working until the revoke, which locks it (ALTER
// USER ... ACCOUNT LOCK). Single: one account gets a new password; consumers holding the
// old one fail until they reload, so use it only where a second account is impossible.
// MySQL 8's dual passwords (RETAIN CURRENT PASSWORD) would give a single account an
// overlap too; MariaDB has no such clause, and this package does not offer it.
//
// # Nothing in the clear
//
// A password reaches the server only as its mysql_native_password hash, computed here
// (IDENTIFIED VIA mysql_native_password USING '*<hash>'), so the general log, the binary
// log and the slow log never hold it. The tests run the conformance suites on a server
// with the general log on and search it for every password they made. The password has
// 256 random bits, which is what keeps that hash (SHA-1 based) safe to log.
//
// # Steps
//
// Apply creates the twin locked if it does not exist (CREATE USER IF NOT EXISTS ...
// ACCOUNT LOCK), grants it the role, sets the password and unlocks it, then logs in as
// the twin to make the role its default (SET DEFAULT ROLE, which a user may do for
// itself: setting another account's default role would need write access to the mysql
// schema). Test logs in with the new password (over TLS when configured), checks that a
// twin acts as the role, and runs the check query in a read-only transaction. Revoke
// locks the account and, with terminate_sessions or in an incident, ends its connections
// (KILL CONNECTION for each processlist entry of the account).
//
// # Admin privileges
//
// CREATE USER (create, alter and lock accounts), PROCESS (see other accounts'
// connections, for the revoke gate and to end them), CONNECTION ADMIN (end them), and the
// managed role WITH ADMIN OPTION (grant it to the twins). CREATE USER lets its holder
// change any account's password, root's included, so the admin credential is as
// sensitive as root's. docs/kinds/mariadb.md has the details; the tests show each is
// needed.
package mariadb
