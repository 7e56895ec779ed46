package redisacl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/telemetry/redisspans"
)

// noACLFile is how a server without an aclfile answers ACL SAVE.
const noACLFile = "not configured to use an ACL file"

// dial opens a client for one node as user, with one connection and no retries of its
// own: the workflow's bounded retries are the only ones. The client logs in on first use.
func (r *Rotator) dial(node, user, password string) *redis.Client {
	opts := &redis.Options{
		Addr:     node,
		Username: user,
		Password: password,
		// RESP2 and no CLIENT SETINFO: the least a Redis 6 node or a Valkey node and a
		// least-privilege user all accept.
		Protocol:        2,
		DisableIdentity: true,
		MaxRetries:      -1,
		DialerRetries:   1,
		PoolSize:        1,
		DialTimeout:     r.cfg.Timeout,
		ReadTimeout:     r.cfg.Timeout,
		WriteTimeout:    r.cfg.Timeout,
	}
	if r.cfg.TLS {
		host, _, _ := net.SplitHostPort(node)
		name := r.cfg.ServerName
		if name == "" {
			name = host
		}
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: name, RootCAs: r.roots}
	}
	c := redis.NewClient(opts)
	if h := redisspans.New(r.cfg.TracerProvider, node); h != nil {
		c.AddHook(h)
	}
	return c
}

// admin opens an admin client for one node.
func (r *Rotator) admin(node string) *redis.Client {
	return r.dial(node, r.cfg.AdminUser, r.cfg.AdminPassword.Reveal())
}

// passwords returns the SHA-256 hashes (lower-case hex) of user's passwords on one
// node, and whether the user exists there.
func passwords(ctx context.Context, c *redis.Client, user string) (hashes []string, exists bool, err error) {
	res, err := c.Do(ctx, "ACL", "GETUSER", user).Result()
	if errors.Is(err, redis.Nil) || (err == nil && res == nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	fields, ok := res.([]any)
	if !ok {
		return nil, false, fmt.Errorf("ACL GETUSER answered %T, not a list", res)
	}
	for i := 0; i+1 < len(fields); i += 2 {
		if name, _ := fields[i].(string); name != "passwords" {
			continue
		}
		list, _ := fields[i+1].([]any)
		for _, h := range list {
			if s, ok := h.(string); ok {
				hashes = append(hashes, strings.ToLower(s))
			}
		}
	}
	return hashes, true, nil
}

// setUser runs ACL SETUSER user rule... on one node and saves the ACL file where the
// node has one, so a restart keeps the change.
func setUser(ctx context.Context, c *redis.Client, user string, rules ...string) error {
	args := append([]any{"ACL", "SETUSER", user}, toAny(rules)...)
	if err := c.Do(ctx, args...).Err(); err != nil {
		return err
	}
	return save(ctx, c)
}

// save runs ACL SAVE; a node without an ACL file keeps its users in memory (and in its
// configuration file, which Keyturn does not rewrite), and that is no error.
func save(ctx context.Context, c *redis.Client) error {
	err := c.Do(ctx, "ACL", "SAVE").Err()
	if err != nil && strings.Contains(err.Error(), noACLFile) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ACL SAVE: %w", err)
	}
	return nil
}

func toAny(words []string) []any {
	out := make([]any, len(words))
	for i, w := range words {
		out[i] = w
	}
	return out
}

// classify turns a node's answer into the rotators' errors: a refused login or command
// is final, a network failure is left for the step's retries.
func classify(node, what string, err error) error {
	if err == nil {
		return nil
	}
	var answer redis.Error
	if errors.As(err, &answer) {
		msg := answer.Error()
		switch {
		case strings.HasPrefix(msg, "NOPERM"):
			return fmt.Errorf("%s on %s: %w: %s", what, node, rotators.ErrPermissionDenied, msg)
		case strings.HasPrefix(msg, "WRONGPASS"):
			return fmt.Errorf("%s on %s: %w: the node refused the admin login (%s)", what, node, rotators.ErrPermissionDenied, msg)
		}
	}
	return fmt.Errorf("%s on %s: %w", what, node, err)
}

// parseRoots reads a PEM bundle of CA certificates; nil for none (the system's roots).
func parseRoots(pem []byte) (*x509.CertPool, error) {
	if len(pem) == 0 {
		return nil, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("redis: %w: the CA file holds no PEM certificate", rotators.ErrInvalidConfig)
	}
	return pool, nil
}
