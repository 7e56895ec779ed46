# The least a Keyturn worker needs for stores/vaultkv with Mount "secret" and
# StagingPrefix "keyturn-pending". Replace "secret" with your mount, and narrow the "*"
# to the paths Keyturn manages, e.g. "secret/data/prod/*" and "secret/metadata/prod/*".
# Keep Vault's default policy attached too: token lookup-self and renew-self are in it.
# Without it the store still works (policy_test.go runs it so), but a token given to it
# is used as is and never renewed.

# Consumer paths: read the current version; write the next one with check-and-set.
path "secret/data/*" {
  capabilities = ["create", "read", "update"]
}

# Consumer paths' metadata: current version number, and the version ledger kept in
# custom metadata, changed only by JSON merge patch.
path "secret/metadata/*" {
  capabilities = ["read", "patch"]
}

# Staging paths: pending versions, where consumers do not read. The store writes a
# staging path's metadata before its first data write, so Vault calls every write here
# an update; create is kept because it grants nothing the metadata create below does not.
path "secret/data/keyturn-pending/*" {
  capabilities = ["create", "read", "update"]
}

# Staging paths' metadata: Vault keeps one version of each (max_versions = 1).
path "secret/metadata/keyturn-pending/*" {
  capabilities = ["create", "update"]
}
