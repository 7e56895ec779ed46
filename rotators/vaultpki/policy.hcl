# The least a Keyturn worker needs for rotators/vaultpki with mount "pki" and role
# "keyturn". Replace "pki" with your mount and "keyturn" with the role in the inventory
# (vaultpki.PolicyFor does both). Keep Vault's default policy attached too: token
# lookup-self and renew-self are in it.

# Sign a CSR with the role. The private key is made on the worker; Vault sees only the
# CSR. Not "issue": that path makes the key in Vault and returns it.
path "pki/sign/keyturn" {
  capabilities = ["update"]
}

# Revoke a certificate by serial: the previous version after its grace period, and any
# certificate an interrupted rotation signed but never stored.
path "pki/revoke" {
  capabilities = ["update"]
}

# List the certificates the mount stores, so a retried rotation finds a certificate an
# interrupted attempt had signed but never stored, and revokes it. Each one is then read
# through pki/cert/* below.
path "pki/certs" {
  capabilities = ["list"]
}

# Force a CRL rebuild when the mount rebuilds lazily (auto_rebuild), so Revoke can see the
# serial listed before it reports success. Vault serves this as a GET, hence "read".
path "pki/crl/rotate" {
  capabilities = ["read"]
}

# Vault answers these without a token; they are listed so the policy names every path
# Keyturn touches: the revocation state of one certificate, the CRL, the CA certificate.
path "pki/cert/*" {
  capabilities = ["read"]
}

path "pki/crl" {
  capabilities = ["read"]
}

path "pki/ca/pem" {
  capabilities = ["read"]
}
