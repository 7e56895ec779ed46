// Package file is the dev store and Keyturn's embedded default: every version of every
// secret kept on local disk, encrypted with AES-256-GCM under a key that lives next to the
// data in store.key.
//
// Layout under the store's directory:
//
//	store.key             32 random bytes, hex; mode 0600 or stricter, or Open refuses;
//	                      made only for a store with no secrets, so a key that goes
//	                      missing is an error (ErrMissingKey), never silently replaced
//	store.lock            flock'd by every writer, so a worker and the CLI can share the store
//	secrets/<name>.json   one document per secret: its versions, their stages, their
//	                      encrypted material
//
// The material of a version is sealed with the secret ID and the version token as
// additional data, so a blob copied to another version or another secret fails to open
// instead of serving the wrong credential. Plaintext never reaches the disk. Versions that
// hold no stage any more are deleted at once: the store keeps no dead material.
//
// It suits one machine. Production consumers read from Vault KV or AWS Secrets Manager.
package file
