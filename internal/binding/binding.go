// Package binding turns the inventory into working parts: for a secret ID it builds the
// rotator for its target and picks its store, resolving the admin credential reference at
// use time. It is the worker's activities.Resolver.
package binding

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/awsiam"
	"github.com/keyturn/keyturn/rotators/mariadb"
	"github.com/keyturn/keyturn/rotators/postgres"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// Resolver resolves secret IDs of one inventory.
type Resolver struct {
	inv       *inventory.Inventory
	fileStore stores.Store
	backends  Backends
	env       func(string) (string, bool)
	opened    *openedStores
	// pgPools holds the admin sessions of every Postgres target, shared by the rotators
	// built for each step.
	pgPools *postgres.Pools
	// awsCfg is the AWS configuration, loaded at awsLoadedAt and kept for awsConfigTTL
	// (awsConfig); awsLoading admits one load at a time.
	awsLoading  chan struct{}
	awsCfg      aws.Config
	awsLoadedAt time.Time
	// iamThrottle paces the IAM calls of every awsiam rotator this worker builds: IAM
	// limits an account's call rate, and an incident calls it for many keys at once.
	iamThrottle *awsiam.Throttle

	notifyOnce sync.Once
	router     *notify.Router
	sender     *notify.Sender
}

var _ activities.Notifier = (*Resolver)(nil)

// Notify delivers e to the inventory's notification routes that take it, resolving each
// route's url and signing_key references when it sends (as it does admin passwords).
func (r *Resolver) Notify(ctx context.Context, e notify.Event) []notify.Delivery {
	r.notifyOnce.Do(func() {
		r.router = notify.NewRouter(r.inv.Notifications)
		r.sender = &notify.Sender{Revealer: r, TracerProvider: r.backends.TracerProvider}
	})
	return notify.Dispatch(ctx, r.router, r.sender, e)
}

var _ activities.Resolver = (*Resolver)(nil)

// New builds a resolver over a validated inventory and the stores this worker can reach.
func New(inv *inventory.Inventory, b Backends) *Resolver {
	r := &Resolver{inv: inv, backends: b, env: os.LookupEnv, opened: newOpenedStores(), pgPools: postgres.NewPools(0), awsLoading: make(chan struct{}, 1), iamThrottle: awsiam.NewThrottle()}
	if b.File != nil {
		r.fileStore = b.File
	}
	return r
}

// Resolve builds the rotator and store of one secret.
func (r *Resolver) Resolve(ctx context.Context, id secret.ID) (activities.Binding, error) {
	s, ok := r.inv.Lookup(id)
	if !ok {
		return activities.Binding{}, fmt.Errorf("%w: %s is not in the worker's inventory %s", activities.ErrUnknownSecret, id, r.inv.Path)
	}
	store, err := r.store(ctx, s.Store)
	if err != nil {
		return activities.Binding{}, err
	}
	rot, err := r.rotator(ctx, s)
	if err != nil {
		return activities.Binding{}, err
	}
	return activities.Binding{
		Kind:               s.Kind,
		Tags:               s.Tags,
		Owner:              s.Owner,
		Grace:              s.Grace,
		RevokeGate:         revokeGate(s.RevokeGate),
		Steps:              rotation.Steps{SecretID: id, Rotator: rot, Store: storeAt(store, id, secret.ID(s.Store.Path))},
		RecordCurrentFirst: r.recordCurrentFirst(s),
	}, nil
}

// recordCurrentFirst says how to record a single-strategy role's password in use before
// its first rotation (see activities.Binding.RecordCurrentFirst); "" for other secrets.
func (r *Resolver) recordCurrentFirst(s inventory.Secret) string {
	var what, key, name string
	switch {
	case s.Postgres != nil && s.Postgres.Strategy == inventory.StrategySingle:
		what, key, name = "role", postgres.MetadataRole, s.Postgres.Role
	case s.MariaDB != nil && s.MariaDB.Strategy == inventory.StrategySingle:
		what, key, name = "account", mariadb.MetadataUser, s.MariaDB.User
	default:
		return ""
	}
	if s.Store.Type == inventory.StoreFile {
		return fmt.Sprintf("record the password the %s uses now with `keyturn put %s -f %s --meta %s=%s < current-password.txt`, then rotate", what, s.ID, r.inv.Path, key, name)
	}
	return fmt.Sprintf("write the password the %s %s uses now into the %s store at %s as its current version (field password, metadata %s=%s), then rotate", what, name, s.Store.Type, s.Store.Path, key, name)
}

// Store opens the store of one secret, addressed by the secret's ID (its store path is
// the binding's business), without building its rotator: reading a secret's versions
// needs no admin credential.
func (r *Resolver) Store(ctx context.Context, id secret.ID) (stores.Store, error) {
	s, ok := r.inv.Lookup(id)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not in the inventory %s", activities.ErrUnknownSecret, id, r.inv.Path)
	}
	store, err := r.store(ctx, s.Store)
	if err != nil {
		return nil, err
	}
	return storeAt(store, id, secret.ID(s.Store.Path)), nil
}

func (r *Resolver) store(ctx context.Context, ref inventory.StoreRef) (stores.Store, error) {
	switch ref.Type {
	case inventory.StoreFile:
		if r.fileStore == nil {
			return nil, fmt.Errorf("%w: store type file: this process has no file store", rotators.ErrInvalidConfig)
		}
		return r.fileStore, nil
	case inventory.StoreVault:
		return r.vault(ctx, ref.Mount)
	case inventory.StoreAWSSM:
		return r.awssm(ctx)
	}
	return nil, fmt.Errorf("%w: store type %q is not supported by this worker", rotators.ErrInvalidConfig, ref.Type)
}

func (r *Resolver) rotator(ctx context.Context, s inventory.Secret) (rotators.Rotator, error) {
	switch s.Kind {
	case inventory.KindPostgres:
		p := s.Postgres
		if p == nil {
			return nil, fmt.Errorf("%w: %s has no postgres block", rotators.ErrInvalidConfig, s.ID)
		}
		password, err := r.Reveal(ctx, p.Admin.Password)
		if err != nil {
			return nil, fmt.Errorf("admin password of %s: %w", s.ID, err)
		}
		cfg := postgres.Config{
			Host: p.Host, Port: p.Port, Database: p.Database,
			SSLMode: p.SSLMode, SSLRootCert: p.SSLRootCert,
			Role: p.Role, Strategy: p.Strategy,
			AdminUser: p.Admin.Username, AdminPassword: password,
			CheckQuery: p.CheckQuery, TerminateSessions: p.TerminateSessions,
			ConnectTimeout: p.ConnectTimeout, TracerProvider: r.backends.TracerProvider,
			Pools: r.pgPools,
		}
		if len(p.Twins) == 2 {
			cfg.Twins = [2]string{p.Twins[0], p.Twins[1]}
		}
		return postgres.New(cfg)
	case inventory.KindAWSIAM:
		if s.AWSIAM != nil {
			return r.awsiam(ctx, s)
		}
	case inventory.KindHTTPAPI:
		if s.HTTPAPI != nil {
			return r.httpapi(ctx, s)
		}
	case inventory.KindVaultPKI:
		if s.VaultPKI != nil {
			return r.vaultpki(ctx, s)
		}
	case inventory.KindLocalCA:
		if s.LocalCA != nil {
			return r.localca(ctx, s)
		}
	case inventory.KindRedis:
		if s.Redis != nil {
			return r.redis(ctx, s)
		}
	case inventory.KindMariaDB:
		if s.MariaDB != nil {
			return r.mariadb(ctx, s)
		}
	default:
		return nil, fmt.Errorf("%w: kind %q is not supported by this worker", rotators.ErrInvalidConfig, s.Kind)
	}
	return nil, fmt.Errorf("%w: %s has no %s block", rotators.ErrInvalidConfig, s.ID, s.Kind)
}

// ErrRefUnresolved means a reference points at nothing; the message says what to seed. It
// is a configuration error, so the rotation stops at once instead of retrying.
var ErrRefUnresolved = fmt.Errorf("%w: reference does not resolve", rotators.ErrInvalidConfig)

// Reveal reads the material a reference points at. The reference itself is safe to show;
// the material is returned as Sensitive and never logged.
func (r *Resolver) Reveal(ctx context.Context, ref inventory.Ref) (secret.Sensitive, error) {
	parts, err := ref.Parse()
	if err != nil {
		return secret.Sensitive{}, fmt.Errorf("%w: %w", rotators.ErrInvalidConfig, err)
	}
	switch parts.Scheme {
	case inventory.RefEnv:
		v, ok := r.env(parts.Path)
		if !ok || v == "" {
			return secret.Sensitive{}, fmt.Errorf("%w: %s: environment variable %s is not set in the worker's environment", ErrRefUnresolved, ref, parts.Path)
		}
		return secret.NewSensitive(v), nil
	case inventory.RefFile:
		if r.fileStore == nil {
			return secret.Sensitive{}, fmt.Errorf("%w: %s: this process has no file store", ErrRefUnresolved, ref)
		}
		_, m, err := r.fileStore.Read(ctx, secret.ID(parts.Path), secret.StageCurrent)
		if errors.Is(err, stores.ErrNotFound) {
			return secret.Sensitive{}, fmt.Errorf("%w: %s: the file store has no current version of %s; seed it with `keyturn put %s --field %s` (reads the value from stdin)", ErrRefUnresolved, ref, parts.Path, parts.Path, parts.Field)
		}
		if err != nil {
			return secret.Sensitive{}, fmt.Errorf("read %s: %w", ref, err)
		}
		v := m.Get(parts.Field)
		if v.IsZero() {
			return secret.Sensitive{}, fmt.Errorf("%w: %s: the current version of %s has no field %q", ErrRefUnresolved, ref, parts.Path, parts.Field)
		}
		return v, nil
	case inventory.RefVault:
		s, err := r.vault(ctx, inventory.DefaultVaultMount)
		if err != nil {
			return secret.Sensitive{}, fmt.Errorf("%s: %w", ref, err)
		}
		return readRef(ctx, s, ref, parts)
	case inventory.RefAWSSM:
		s, err := r.awssm(ctx)
		if err != nil {
			return secret.Sensitive{}, fmt.Errorf("%s: %w", ref, err)
		}
		return readRef(ctx, s, ref, parts)
	}
	return secret.Sensitive{}, fmt.Errorf("%w: %s references cannot be resolved by this worker", rotators.ErrInvalidConfig, parts.Scheme)
}

// readRef reads a reference's field from a store that keeps it, saying what to seed when
// nothing is there.
func readRef(ctx context.Context, s FieldStore, ref inventory.Ref, parts inventory.RefParts) (secret.Sensitive, error) {
	v, err := s.ReadField(ctx, parts.Path, parts.Field)
	if errors.Is(err, stores.ErrNotFound) {
		return secret.Sensitive{}, fmt.Errorf("%w: %s: no current value with field %q there; write it into the store first", ErrRefUnresolved, ref, parts.Field)
	}
	if err != nil {
		return secret.Sensitive{}, fmt.Errorf("read %s: %w", ref, err)
	}
	return v, nil
}

// Secrets lists the inventory's secrets for an incident's scope, without material.
func (r *Resolver) Secrets() []activities.SecretInfo { return SecretInfos(r.inv) }

// SecretInfos describes an inventory's secrets without opening any backend or reading
// any material: what the worker resolves an incident's scope over, and what the CLI plans
// an incident (or a dry run) with, so both show the same plan from the same inventory.
func SecretInfos(inv *inventory.Inventory) []activities.SecretInfo {
	out := make([]activities.SecretInfo, 0, len(inv.Secrets))
	for _, s := range inv.Secrets {
		out = append(out, activities.SecretInfo{
			ID: s.ID, Kind: s.Kind, Tags: s.Tags, Store: s.Store.Type + ":" + s.Store.Path, Target: describeTarget(s),
		})
	}
	return out
}

// describeTarget says where a secret's credential is used, in a few words.
func describeTarget(s inventory.Secret) string {
	switch {
	case s.Postgres != nil:
		return fmt.Sprintf("postgres %s:%d role %s (%s)", s.Postgres.Host, s.Postgres.Port, s.Postgres.Role, s.Postgres.Strategy)
	case s.AWSIAM != nil:
		return "IAM user " + s.AWSIAM.User
	case s.HTTPAPI != nil:
		return "API " + s.HTTPAPI.Create.Method + " " + s.HTTPAPI.Create.URL
	case s.VaultPKI != nil:
		return fmt.Sprintf("Vault PKI %s role %s, %s", s.VaultPKI.Mount, s.VaultPKI.Role, s.VaultPKI.CommonName)
	case s.LocalCA != nil:
		return "local CA, " + s.LocalCA.CommonName
	case s.MariaDB != nil && s.MariaDB.Strategy == inventory.StrategySingle:
		return fmt.Sprintf("mariadb %s:%d account '%s'@'%s' (single)", s.MariaDB.Host, s.MariaDB.Port, s.MariaDB.User, s.MariaDB.HostPattern)
	case s.MariaDB != nil:
		return fmt.Sprintf("mariadb %s:%d role %s (alternating)", s.MariaDB.Host, s.MariaDB.Port, s.MariaDB.Role)
	case s.Redis != nil:
		return fmt.Sprintf("redis ACL user %s on %s", s.Redis.User, strings.Join(s.Redis.Nodes, ", "))
	}
	return s.Kind
}

// revokeGate is the secret's revoke gate as the workflow applies it; nil when it does not
// wait (Validate has refused a waiting gate on a kind that cannot report use).
func revokeGate(g inventory.RevokeGate) *activities.RevokeGate {
	if !g.Waits() {
		return nil
	}
	return &activities.RevokeGate{MaxWait: g.MaxWait, Poll: g.Poll, Hold: g.Holds()}
}
