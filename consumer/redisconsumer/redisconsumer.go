// Package redisconsumer logs go-redis clients in to Redis with an ACL user's password
// that Keyturn rotates (kind redis), read through a consumer.Cache.
//
// It is a package of its own so that consumer does not make every application import
// go-redis.
//
// Configure sets a client's CredentialsProviderContext, so every new connection logs in
// with the cache's current value: the user (metadata "username") and the password (field
// "password"). Hook, added to the client, retries a command once after invalidating the
// secret when Redis refused the login (WRONGPASS): the cached value was older than the
// node's passwords, which happens after a containment, or when the cache's TTL is longer
// than the rotation's grace period. A refused login ran no command, so the retry is
// always safe.
//
// Connections already open keep working after the revoke (Redis does not end them),
// except after a containment, which ends them all; go-redis then opens new ones, which
// take the fresh password through the Hook's retry.
//
// Errors never carry the password: go-redis's login errors hold the server's answer only.
package redisconsumer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/keyturn/keyturn/consumer"
	"github.com/keyturn/keyturn/secret"
)

// The field and metadata key rotators/redisacl writes (copied, not imported, to keep the
// rotator out of consumers' binaries; a test checks they match).
const (
	// FieldPassword is the material field holding the password.
	FieldPassword = "password"
	// MetadataUsername is the metadata key naming the ACL user to log in as.
	MetadataUsername = "username"
)

// Options tune a Hook. The zero value is ready to use.
type Options struct {
	// OnRetry, when set, is called each time a command refused with WRONGPASS is retried
	// after invalidating the secret. Count it as a metric: steady retries mean the
	// cache's TTL is longer than the rotation's grace period.
	OnRetry func(id secret.ID, err error)
}

// Hook supplies the login of one secret to a client's new connections and retries a
// command whose login was refused. It is safe for concurrent use.
type Hook struct {
	cache *consumer.Cache
	id    secret.ID
	opts  Options
}

var _ redis.Hook = (*Hook)(nil)

// New returns a Hook logging in with secret id, read through cache.
func New(cache *consumer.Cache, id secret.ID, opts Options) *Hook {
	return &Hook{cache: cache, id: id, opts: opts}
}

// Configure makes opts log in with the hook's secret; add the hook to the client made
// from opts (client.AddHook(h)) for the retry on a refused login. Username and Password
// in opts are ignored from then on.
func (h *Hook) Configure(opts *redis.Options) {
	opts.CredentialsProviderContext = h.Credentials
}

// Credentials returns the user and password of the secret's current version. It has
// the signature of redis.Options.CredentialsProviderContext.
func (h *Hook) Credentials(ctx context.Context) (string, string, error) {
	v, err := h.cache.Get(ctx, h.id)
	if err != nil {
		return "", "", fmt.Errorf("redis login from secret: %w", err)
	}
	password := v.Field(FieldPassword).Reveal()
	if password == "" {
		return "", "", fmt.Errorf("redis login from secret %s: version %d has no %q field", h.id, v.Version.Number, FieldPassword)
	}
	return v.Version.Metadata[MetadataUsername], password, nil
}

// DialHook implements redis.Hook; dialing needs nothing of the secret.
func (h *Hook) DialHook(next redis.DialHook) redis.DialHook {
	return next
}

// ProcessHook implements redis.Hook: a command whose login was refused runs once more,
// after the secret is invalidated. A new connection's own login runs through the hooks
// too; it is not retried itself: the command that asked for the connection is.
func (h *Hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if !refused(err) || isLogin([]redis.Cmder{cmd}) {
			return err
		}
		h.invalidate(err)
		cmd.SetErr(nil)
		return h.again(next(ctx, cmd))
	}
}

// ProcessPipelineHook implements redis.Hook, with ProcessHook's retry for a pipeline
// whose connection's login was refused.
func (h *Hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if !refused(err) || isLogin(cmds) {
			return err
		}
		h.invalidate(err)
		for _, c := range cmds {
			c.SetErr(nil)
		}
		return h.again(next(ctx, cmds))
	}
}

func (h *Hook) invalidate(err error) {
	h.cache.Invalidate(h.id)
	if h.opts.OnRetry != nil {
		h.opts.OnRetry(h.id, err)
	}
}

// again names a refusal that survived a fresh read.
func (h *Hook) again(err error) error {
	if refused(err) {
		return fmt.Errorf("redis refused the password of secret %s, read fresh from the store after a first refusal: %w", h.id, err)
	}
	return err
}

// isLogin reports whether a command or pipeline is go-redis logging a new connection in
// (HELLO or AUTH, on the connection, through the client's hooks).
func isLogin(cmds []redis.Cmder) bool {
	if len(cmds) == 0 {
		return false
	}
	name := strings.ToLower(cmds[0].Name())
	return name == "hello" || name == "auth"
}

// refused reports whether err is Redis refusing a login.
func refused(err error) bool {
	var answer redis.Error
	return errors.As(err, &answer) && strings.HasPrefix(answer.Error(), "WRONGPASS")
}
