// Package file is the dev store and Keyturn's embedded default: every version of every
// secret kept on local disk, encrypted with AES-256-GCM under a key that lives next to the
// data in store.key.
//
// Layout under the store's directory:
//
//	store.key             a header line, then 32 random bytes in hex; mode 0600 or
//	                      stricter, or Open refuses;
//	                      made only for a store with no secrets, so a key that goes
//	                      missing is an error (ErrMissingKey), never silently replaced
//	store.lock            flock'd by every writer, so a worker and the CLI can share the store
//	secrets/<name>.json   one document per secret: its versions, their stages, their
//	                      encrypted material
//	.<name>.*.tmp         a write in progress, renamed over <name> when complete; one a
//	                      killed writer left is removed by the next Open (stale.go)
//
// The material of a version is sealed with the secret ID and the version token as
// additional data, so a blob copied to another version or another secret fails to open
// instead of serving the wrong credential. The whole document (format 2) carries an
// HMAC-SHA256 under a key derived from the store key with HKDF, over its stages, version
// numbers and tokens, metadata, creation times, next number and blobs: a label swapped
// between versions, a renumbered version or edited metadata is refused (ErrTampered),
// for reads and writes alike. A store written in format 1 is upgraded once by Open, and
// the key file's header records that it was. Plaintext never reaches the disk. Versions
// that hold no stage any more are deleted at once: the store keeps no dead material.
//
// OpenReadOnly gives a Reader for applications that only read (package consumer): it
// writes nothing at all, and refuses a store that still needs the format 2 upgrade.
//
// It suits one machine. Production consumers read from Vault KV or AWS Secrets Manager.
package file
