// Package redisacl rotates the password of a Redis ACL user (Redis 6 and later, and
// Valkey), inventory kind "redis".
//
// # No window
//
// An ACL user can hold several passwords at once. Apply adds the new version's password
// beside the current one, Test logs in with it, the store promotes it, and the revoke
// removes the old one: a consumer still on the old password keeps working until the
// revoke, and one that has moved works from the start. There is one user, so its rules
// (keys, commands) cannot drift between versions, and Keyturn never changes them.
//
// # Nodes
//
// ACLs belong to each node and are not replicated. The configuration lists every node
// (primary, replicas, sentinels, cluster nodes) and every step acts on each in turn. A
// node that fails Apply stops the step, and the nodes that call added the password to
// lose it again, so the user is as it was; the workflow retries the step and, when its
// retries run out, rolls the rotation back. A revoke that fails part way is retried: the
// nodes already done stay done. After every change the node saves its ACL file (ACL
// SAVE) when it has one, so a restart keeps the new password; a node that keeps its users
// in redis.conf instead loses the change on restart (Keyturn does not rewrite the
// configuration file).
//
// # Nothing in the clear
//
// The password goes to the node only as its SHA-256 (ACL SETUSER user #<hash>), so it
// never reaches MONITOR, the slow log or the ACL file; Test's login (AUTH) is redacted
// by Redis itself. The tests watch both on two nodes during the conformance suite. A
// version is named in its metadata by password_id, the first 16 hex digits of that hash,
// which is how Revoke finds the password to remove without its material.
//
// # Test, revoke, containment, use
//
// Test logs in as the user on every node and runs the declared check (PING by default;
// a command the server does not flag read-only is refused). Revoke removes the version's
// password on every node and never the one to keep. Sessions are left open: Redis does
// not record which password a connection used, so ending the user's connections would
// end the new version's too. Containment (an incident's revoke, with nothing to keep)
// removes every password of the user, those Keyturn never made too, and ends all its
// connections (CLIENT KILL USER). For the revoke gate, InUse reports the user's
// connections that opened before the promotion (CLIENT LIST); a consumer that logs in
// with the old password after the promotion cannot be told apart.
//
// # Admin rules
//
// The admin needs: +acl|getuser +acl|setuser +acl|save +client|list +client|kill
// +command|info, and no keys (TestEveryAdminRuleIsNeeded removes each in turn). ACL SETUSER lets its holder give any user any right, so
// the admin credential is as powerful as Redis's default user; the rules keep a mistake
// small, not a thief out. docs/kinds/redis.md has the details.
package redisacl
