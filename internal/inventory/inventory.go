package inventory

import (
	"strings"
	"time"

	"github.com/keyturn/keyturn/rotators/postgres"
	"github.com/keyturn/keyturn/schedules/cronspec"
	"github.com/keyturn/keyturn/secret"
)

// SupportedVersion is the only inventory format version this release reads. The field is
// required so a future format change is detected instead of misread.
const SupportedVersion = 1

// Kinds of secret. The kind picks the rotator and the kind-specific block of a secret.
const (
	// KindPostgres is a PostgreSQL role password, rotated by the postgres rotator.
	KindPostgres = "postgres"
	// KindAWSIAM is an IAM user's access key pair, rotated by the awsiam rotator.
	KindAWSIAM = "awsiam"
	// KindHTTPAPI is a third-party API key, rotated by the declarative httpapi rotator.
	KindHTTPAPI = "httpapi"
	// KindVaultPKI is a TLS certificate signed by Vault's PKI engine.
	KindVaultPKI = "vaultpki"
	// KindLocalCA is a TLS certificate signed by Keyturn's local CA, the embedded default.
	KindLocalCA = "localca"
	// KindRedis is a Redis (or Valkey) ACL user's password, rotated by the redisacl
	// rotator on every node listed.
	KindRedis = "redis"
	// KindMariaDB is a MariaDB account's password (twins holding one role, or one
	// account), rotated by the mariadb rotator.
	KindMariaDB = "mariadb"
)

// CertificateKind reports whether a kind's versions are certificates, which expire and are
// therefore also due for rotation once a share of their lifetime has passed.
func CertificateKind(kind string) bool { return kind == KindVaultPKI || kind == KindLocalCA }

// Store types: where new versions of a secret are written for consumers to read.
const (
	// StoreFile is the encrypted file store, the only store this release can write.
	StoreFile = "file"
	// StoreVault is HashiCorp Vault's KV v2 engine (stores/vaultkv), reached through the
	// worker's VAULT_* environment.
	StoreVault = "vault"
	// StoreAWSSM is AWS Secrets Manager (stores/awssm), reached through the standard AWS
	// credential chain and region.
	StoreAWSSM = "awssm"
)

// Rotation strategies for a PostgreSQL role.
const (
	// StrategyAlternating keeps two login roles (the twins) that are members of the managed
	// role and rotates them in turn, so the previous credential keeps working until the
	// grace period ends and consumers never see a login failure.
	StrategyAlternating = "alternating"
	// StrategySingle changes the password of the managed role itself. Simpler, but
	// consumers holding the old password fail until they reload.
	StrategySingle = "single"
)

// PostgreSQL TLS modes accepted in sslmode. "prefer" and "allow" are missing on purpose:
// they fall back to plain text silently, which is not acceptable for admin credentials.
const (
	// SSLModeDisable connects in plain text; for local development only.
	SSLModeDisable = "disable"
	// SSLModeRequire encrypts but does not check the server's certificate.
	SSLModeRequire = "require"
	// SSLModeVerifyCA also checks that the certificate is signed by a trusted CA.
	SSLModeVerifyCA = "verify-ca"
	// SSLModeVerifyFull also checks that the certificate names the host.
	SSLModeVerifyFull = "verify-full"
)

// Defaults applied by ApplyDefaults when neither the secret nor the defaults block sets a
// value.
const (
	DefaultGrace = 15 * time.Minute
	DefaultStore = StoreFile
	// DefaultVaultMount is the KV v2 mount a vault store uses when it names none.
	DefaultVaultMount = "secret"
	// DefaultTimezone is cronspec's: a spec without a zone is read in UTC.
	DefaultTimezone = cronspec.DefaultTimezone
	// The postgres kind owns its defaults; the inventory repeats none of them.
	DefaultPostgresPort   = postgres.DefaultPort
	DefaultSSLMode        = postgres.DefaultSSLMode
	DefaultStrategy       = StrategyAlternating
	DefaultConnectTimeout = postgres.DefaultConnectTimeout
	// DefaultCatchupWindow: a rotation missed by more than this while the scheduler was
	// down is skipped and waits for its next time.
	DefaultCatchupWindow = 15 * time.Minute
)

// Limits enforced by Validate.
const (
	// MaxGrace bounds how long a superseded credential stays valid: a week is already
	// generous, and a longer window defeats the point of rotating.
	MaxGrace = 168 * time.Hour
	// MaxConnectTimeout bounds a single connection attempt so a dead database fails an
	// activity attempt quickly and Temporal's retry policy takes over.
	MaxConnectTimeout = 60 * time.Second
	// MinCatchupWindow is Temporal's own lower bound for a schedule's catch-up window.
	MinCatchupWindow = 10 * time.Second
	// MaxCatchupWindow keeps an outage from replaying a day of missed rotations at once.
	MaxCatchupWindow = 24 * time.Hour
)

// knownKinds, knownStores and plannedStores are listed in error messages, in this order.
var (
	knownKinds  = []string{KindPostgres, KindAWSIAM, KindHTTPAPI, KindVaultPKI, KindLocalCA, KindRedis, KindMariaDB}
	knownStores = []string{StoreFile, StoreVault, StoreAWSSM}
	sslModes    = []string{SSLModeDisable, SSLModeRequire, SSLModeVerifyCA, SSLModeVerifyFull}
	strategies  = []string{StrategyAlternating, StrategySingle}
)

// Inventory is the parsed inventory file: the list of managed secrets and the defaults
// they share.
type Inventory struct {
	// Version is the file format version; only SupportedVersion is accepted.
	Version int
	// Defaults are applied by ApplyDefaults to every secret that leaves a field empty.
	Defaults Defaults
	// Secrets in file order.
	Secrets []Secret
	// Notifications routes events to webhooks; see package notify.
	Notifications Notifications
	// Path is the file the inventory was read from, used in problem reports.
	Path string

	// pos maps a top-level field path ("version", "defaults.grace") to its line.
	pos positions
	// index maps each secret's ID to its place in Secrets, built by Load: a worker looks a
	// secret up for every step, 20,000 times in a 10,000-secret incident.
	index map[secret.ID]int
}

// Defaults holds the values of the defaults block.
type Defaults struct {
	// Grace is nil when the file does not set it; ApplyDefaults then sets DefaultGrace. A
	// pointer because an explicit 0s (no grace at all) is a legitimate choice.
	Grace *time.Duration
	// Store is the store type for secrets that do not name one.
	Store string
	// Tags are merged into every secret's tags.
	Tags []string
	// Window is the rotation window of secrets that set none; see Secret.Window.
	Window time.Duration
	// CatchupWindow is how late a scheduled rotation may still start after the scheduler
	// was down; older missed runs are dropped, so an outage does not replay months of
	// rotations. ApplyDefaults sets DefaultCatchupWindow.
	CatchupWindow time.Duration
	// Owner is the owner of secrets that name none; see Secret.Owner.
	Owner string
	// MaxAge is the maximum age of secrets that set none; see Secret.MaxAge.
	MaxAge time.Duration
	// Sensitivity is the sensitivity of secrets that set none; see Secret.Sensitivity.
	Sensitivity string
	// RevokeGate holds the revoke_gate fields secrets inherit when they leave them out;
	// fields the block leaves out are zero here (built-in defaults apply per secret).
	RevokeGate RevokeGate
}

// Secret is one managed secret.
type Secret struct {
	// ID names the secret everywhere: workflow IDs, store paths, logs.
	ID secret.ID
	// Kind picks the rotator; see the Kind constants.
	Kind string
	// Description is free text for people.
	Description string
	// Owner is the team or person responsible for the secret (payments, alice@example.com):
	// notification routes match it and the age metrics carry it as a label.
	Owner string
	// Sensitivity is how much harm a leak does: one of the Sensitivity constants, or
	// empty when neither the secret nor the defaults block says.
	Sensitivity string
	// Consumers are the applications that read the secret, with how often each re-reads
	// it; Warnings compares the slowest with the grace period.
	Consumers []Consumer
	// Store says where new versions are written.
	Store StoreRef
	// Grace is how long the previous credential stays valid after a rotation. Zero is
	// allowed; ApplyDefaults treats a zero Grace as unset unless the file wrote it.
	Grace time.Duration
	// Tags label the secret for selection ("rotate everything tagged prod").
	Tags []string
	// Schedule is an optional cron spec for automatic rotation; see cronspec.Parse.
	Schedule string
	// Timezone is the IANA zone the schedule is read in.
	Timezone string
	// Window spreads a scheduled rotation over this long after the cron time (Temporal
	// schedule jitter), so secrets sharing a spec do not all rotate in the same second.
	Window time.Duration
	// MaxAge is how old the current version may get before the secret is overdue, as the
	// file (or its defaults block) wrote it; zero when neither did. AgePolicy is the
	// policy in force, derived from the schedule or the certificate's lifetime when
	// MaxAge is zero.
	MaxAge time.Duration
	// RevokeGate says whether a rotation waits, after the grace period, for the target to
	// show the previous version unused before revoking it; after ApplyDefaults every
	// field is set (Wait is GateWaitNo unless the file asks for a gate).
	RevokeGate RevokeGate
	// Postgres is the kind-specific block, set when Kind is KindPostgres; the others
	// likewise for their kinds. Exactly one is set in a valid inventory.
	Postgres *Postgres
	AWSIAM   *AWSIAM
	HTTPAPI  *HTTPAPI
	VaultPKI *VaultPKI
	LocalCA  *LocalCA
	Redis    *Redis
	MariaDB  *MariaDB
	// Line is where the secret starts in the file, 0 when unknown.
	Line int

	// pos maps a field path relative to the secret ("grace", "postgres.admin.password") to
	// its line; a field that has an entry was written in the file.
	pos positions
}

// StoreRef names the store a secret's versions go to and the path inside it.
type StoreRef struct {
	// Type is a store type; see the Store constants.
	Type string
	// Path is where consumers read the secret; defaults to the secret's ID. In Vault it is
	// the path under Mount; in AWS Secrets Manager, the secret's name.
	Path string
	// Mount is the Vault KV v2 mount, default "secret"; only for type vault.
	Mount string
}

// Postgres describes a PostgreSQL role whose password Keyturn rotates.
type Postgres struct {
	// Host is the server's host name or IP address.
	Host string
	// Port is the server's TCP port.
	Port int
	// Database is the database the admin connects to; roles are cluster-wide anyway.
	Database string
	// SSLMode is one of the SSLMode constants.
	SSLMode string
	// SSLRootCert is a CA bundle file for verify-ca and verify-full.
	SSLRootCert string
	// AllowPlaintext permits sslmode disable to a host that is not the local machine,
	// where the admin password would cross the network unencrypted. Without it
	// Validate refuses that combination.
	AllowPlaintext bool
	// Role is the managed (group) role that owns the privileges consumers need.
	Role string
	// Strategy is one of the Strategy constants.
	Strategy string
	// Twins are the two login roles used by StrategyAlternating, members of Role.
	Twins []string
	// Admin is the account Keyturn logs in with to change passwords.
	Admin Admin
	// CheckQuery is an extra query run with a new credential before it is promoted, to
	// prove it can do real work and not only log in.
	CheckQuery string
	// TerminateSessions ends the revoked role's open sessions when it is revoked, instead
	// of letting them run until they disconnect.
	TerminateSessions bool
	// ConnectTimeout bounds one connection attempt.
	ConnectTimeout time.Duration
}

// Admin is the privileged account used to rotate a PostgreSQL role.
type Admin struct {
	// Username is the role Keyturn logs in as; it needs CREATEROLE or ownership of the
	// managed roles.
	Username string
	// Password is a reference to where the password is kept, never the password itself.
	Password Ref
}

// Lookup returns the secret with the given ID. The copy shares its Postgres block and
// slices with the inventory, so treat it as read-only.
func (inv *Inventory) Lookup(id secret.ID) (Secret, bool) {
	if i, ok := inv.index[id]; ok && i < len(inv.Secrets) && inv.Secrets[i].ID == id {
		return inv.Secrets[i], true
	}
	// An inventory built in code, or changed since Load, has no index, or a stale one.
	for i := range inv.Secrets {
		if inv.Secrets[i].ID == id {
			return inv.Secrets[i], true
		}
	}
	return Secret{}, false
}

// buildIndex indexes Secrets by ID (the first of a repeated ID, as the scan finds it;
// Validate refuses repeats).
func (inv *Inventory) buildIndex() {
	inv.index = make(map[secret.ID]int, len(inv.Secrets))
	for i, s := range inv.Secrets {
		if _, seen := inv.index[s.ID]; !seen {
			inv.index[s.ID] = i
		}
	}
}

// positions maps a dotted field path to the line it was read from.
type positions map[string]int

// line returns the line of field, or of its closest parent that has one, or 0. A missing
// required field is reported where its parent block starts, which is where it belongs.
func (p positions) line(field string) int {
	for {
		if l, ok := p[field]; ok {
			return l
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			return 0
		}
		field = field[:i]
	}
}

// has reports whether the file wrote field.
func (p positions) has(field string) bool {
	_, ok := p[field]
	return ok
}

// line returns the line of a field of s, falling back to the start of the secret.
func (s *Secret) line(field string) int {
	if l := s.pos.line(field); l != 0 {
		return l
	}
	return s.Line
}

// unset reports whether a field should receive its default: its value is zero and the
// file did not write it. Checking the file matters for fields where zero is meaningful
// (grace: 0s) or must be reported rather than replaced (port: 0).
func (s *Secret) unset(field string, isZero bool) bool {
	return isZero && !s.pos.has(field)
}
