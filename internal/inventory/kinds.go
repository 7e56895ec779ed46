package inventory

import (
	"time"

	"github.com/keyturn/keyturn/rotators/httpapi"
	"github.com/keyturn/keyturn/rotators/mariadb"
	"github.com/keyturn/keyturn/rotators/redisacl"
)

// AWSIAM describes an IAM user whose access key pair Keyturn rotates. The admin principal
// comes from the worker's standard AWS credential chain.
type AWSIAM struct {
	// User is the IAM user name.
	User string
	// DeleteInactive lets Create delete the user's inactive second key to make room (IAM
	// allows two keys); without it Create stops and says so.
	DeleteInactive bool
	// DeleteAfter is how long a deactivated key stays recoverable before it is deleted.
	DeleteAfter time.Duration
	// ConsistencyTimeout bounds how long Test waits for IAM to accept a new key.
	ConsistencyTimeout time.Duration
}

// HTTPAPI describes a third-party API whose keys are created, tested and revoked with
// declared HTTP calls.
type HTTPAPI struct {
	// Admin is a reference to the credential allowed to create and revoke keys.
	Admin Ref
	// Create, Test and Revoke are the three calls.
	Create, Test, Revoke HTTPCall
	// InUse, if set, asks the API whether a key is still in use, for the revoke gate
	// (in_use). Without it the gate cannot ask and relies on the grace period.
	InUse *HTTPUsageCheck
	// KeyID and KeySecret are JSON paths into the create response, e.g. data.id.
	KeyID, KeySecret string
	// Timeout bounds one request.
	Timeout time.Duration
	// CAFile is a PEM file of the CA certificates to trust for this API, whose
	// certificate a private CA signs; empty means the system's roots.
	CAFile string
}

// HTTPCall is one declared request; URL, header values and body are templates.
type HTTPCall struct {
	Method  string
	URL     string
	Headers map[string]string
	Body    string
	// Success lists the statuses that mean success; empty means any 2xx.
	Success []int
	// Gone lists the statuses that mean the key is already gone.
	Gone []int
}

// HTTPUsageCheck is the in_use call: a request made as the admin about {{.KeyID}}, and
// where its answer says whether the key is in use. Exactly one of LastUsed and Flag.
type HTTPUsageCheck struct {
	HTTPCall
	// LastUsed is the JSON path of the key's last-use time (RFC 3339, Unix seconds or
	// null), e.g. data.last_used_at; a use after the promotion holds the revoke.
	LastUsed string
	// Flag is the JSON path of a boolean the API sets while the key is in use.
	Flag string
	// Delay is how late, at worst, the API shows a use in LastUsed (in_use.delay): an
	// idle answer counts only from the promotion plus Delay. Zero by default.
	Delay time.Duration
}

// Check is the in_use check as the httpapi rotator takes it; its Method is left empty
// when the file names none, and the rotator's ApplyDefaults fills it in (GET).
func (u HTTPUsageCheck) Check() httpapi.UsageCheck {
	return httpapi.UsageCheck{Call: u.HTTPCall.call(), LastUsedPath: u.LastUsed, FlagPath: u.Flag, Delay: u.Delay}
}

// call is the declared request as the httpapi rotator takes it.
func (c HTTPCall) call() httpapi.Call {
	return httpapi.Call{Method: c.Method, URL: c.URL, Headers: c.Headers, Body: c.Body, Success: c.Success, Gone: c.Gone}
}

// Certificate is what a certificate kind asks its CA for.
type Certificate struct {
	CommonName string
	AltNames   []string
	IPSANs     []string
	// TTL is the validity asked for.
	TTL time.Duration
	// KeyType is "ec" (P-256) or "rsa"; KeyBits applies to rsa.
	KeyType string
	KeyBits int
	// RenewAt is the share of a certificate's lifetime after which it is due.
	RenewAt float64
}

// VaultPKI describes a certificate signed by Vault's PKI engine, reached through the
// worker's VAULT_* environment.
type VaultPKI struct {
	Certificate
	// Mount is the PKI engine's mount path.
	Mount string
	// Role is the PKI role that signs.
	Role string
	// CAFile is a PEM file of the CA to trust; empty means the mount's own CA.
	CAFile string
}

// LocalCA describes a certificate signed by Keyturn's local CA.
type LocalCA struct {
	Certificate
	// CACert and CAKey are references to the CA's certificate and private key.
	CACert, CAKey Ref
	// CRLFile is where the CA publishes its revocation list.
	CRLFile string
}

// Redis describes a Redis (or Valkey) ACL user whose password Keyturn rotates: a second
// password is added beside the current one, then the old one is removed, on every node.
type Redis struct {
	// Nodes are the host:port of every node the user lives on (primary, replicas,
	// sentinels, cluster nodes): ACLs are per node and not replicated.
	Nodes []string
	// User is the managed ACL user; it must exist on every node with its rules.
	User string
	// Admin is the ACL user Keyturn logs in as to change User.
	Admin Admin
	// Check is the read-only command Test runs as User, as words; empty means PING.
	Check []string
	// TLS connects over TLS; CAFile is a PEM file of the CA certificates to trust (the
	// system's roots when empty) and ServerName the name the certificates must carry.
	TLS        bool
	CAFile     string
	ServerName string
	// AllowPlaintext permits nodes that are not the local machine without TLS.
	AllowPlaintext bool
	// Timeout bounds one connection attempt or command.
	Timeout time.Duration
}

// MariaDB describes MariaDB accounts whose password Keyturn rotates: two twins holding
// one role (alternating), or one account (single).
type MariaDB struct {
	// Host and Port locate the server.
	Host string
	Port int
	// TLS is disable, require or verify-full; CAFile and ServerName apply to verify-full.
	TLS        string
	CAFile     string
	ServerName string
	// AllowPlaintext permits tls: disable to a host that is not the local machine.
	AllowPlaintext bool
	// Strategy is alternating or single.
	Strategy string
	// Role holds the application's privileges; the twins have it as their default role.
	Role string
	// Twins are the alternating strategy's two accounts (default <role>_a, <role>_b).
	Twins []string
	// User is the single strategy's account.
	User string
	// HostPattern is the host part of the managed accounts ('%', '10.%').
	HostPattern string
	// Admin is the account Keyturn logs in as.
	Admin Admin
	// CheckQuery runs as the new account in a read-only transaction.
	CheckQuery string
	// TerminateSessions ends the revoked account's connections.
	TerminateSessions bool
	// ConnectTimeout bounds a connection attempt and each statement.
	ConnectTimeout time.Duration
}

// Defaults of the kind blocks.
const (
	DefaultIAMDeleteAfter        = time.Hour
	DefaultIAMConsistencyTimeout = 30 * time.Second
	// MaxIAMConsistencyTimeout keeps Test's retries inside one attempt of the Test step,
	// whose start-to-close timeout is a minute.
	MaxIAMConsistencyTimeout = 50 * time.Second
	DefaultHTTPTimeout       = 10 * time.Second
	// The redis kind owns its default; the inventory repeats it by name.
	DefaultRedisTimeout = redisacl.DefaultTimeout
	// The mariadb kind owns its defaults too.
	DefaultMariaDBPort        = mariadb.DefaultPort
	DefaultMariaDBTLS         = mariadb.DefaultTLS
	DefaultMariaDBHostPattern = mariadb.DefaultHostPattern
	DefaultPKIMount           = "pki"
	DefaultCertTTL            = 30 * 24 * time.Hour
	DefaultKeyType            = "ec"
	DefaultRSABits            = 2048
	DefaultRenewAt            = 2.0 / 3
)

var (
	awsiamFields   = []string{"user", "delete_inactive", "delete_after", "consistency_timeout"}
	httpapiFields  = []string{"admin", "create", "test", "revoke", "in_use", "key_id", "key_secret", "timeout", "ca_file"}
	httpCallFields = []string{"method", "url", "headers", "body", "success", "gone"}
	// httpUsageFields are the fields of the in_use call: a call and where to read it.
	httpUsageFields = append([]string{"last_used", "flag", "delay"}, httpCallFields...)
	certFields      = []string{"common_name", "alt_names", "ip_sans", "ttl", "key_type", "key_bits", "renew_at"}
	vaultpkiFields  = append([]string{"mount", "role", "ca_file"}, certFields...)
	localcaFields   = append([]string{"ca_cert", "ca_key", "crl_file"}, certFields...)
	mariadbFields   = []string{"host", "port", "tls", "ca_file", "server_name", "allow_plaintext", "strategy", "role", "twins", "user", "host_pattern", "admin", "check_query", "terminate_sessions", "connect_timeout"}
	mariadbTLSModes = []string{mariadb.TLSDisable, mariadb.TLSRequire, mariadb.TLSVerifyFull}
	redisFields     = []string{"nodes", "user", "admin", "check", "tls", "ca_file", "server_name", "allow_plaintext", "timeout"}
	keyTypes        = []string{"ec", "rsa"}
	httpMethods     = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
)
