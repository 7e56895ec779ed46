package redisacl

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/keyturn/keyturn/rotators"
)

// InUse reports the user's connections, on every node, that opened before the new
// version was promoted (req.Since): they logged in with an older password, and a revoke
// does not end them. Redis does not record which password a connection used, so a
// consumer that logs in with the old password after the promotion is not seen; the
// answer says so. It reads CLIENT LIST and changes nothing.
func (r *Rotator) InUse(ctx context.Context, req rotators.UsageRequest) (rotators.Usage, error) {
	if err := r.owns(req.Version); err != nil {
		return rotators.Usage{}, err
	}
	usage := rotators.Usage{Checked: fmt.Sprintf(
		"connections of ACL user %s opened before the promotion, in CLIENT LIST on %d node(s) (Redis does not record which password a connection used)",
		r.cfg.User, len(r.cfg.Nodes))}
	for _, node := range r.cfg.Nodes {
		uses, err := r.connectionsOn(ctx, node)
		if err != nil {
			return rotators.Usage{}, err
		}
		for _, u := range uses {
			// CLIENT LIST counts age in whole seconds, so a connection's start is known
			// to a second: one that may have opened before the promotion counts.
			if req.Since.IsZero() || u.Since.Before(req.Since.Add(time.Second)) {
				usage.Uses = append(usage.Uses, u)
			}
		}
	}
	return usage, nil
}

// connectionsOn lists the user's connections on one node.
func (r *Rotator) connectionsOn(ctx context.Context, node string) ([]rotators.Use, error) {
	c := r.admin(node)
	defer c.Close()
	// The time before the question: an age counted on the node, later, can only make a
	// connection's start look later than it was, and the caller's margin covers that.
	asked := time.Now()
	list, err := c.ClientList(ctx).Result()
	if err != nil {
		return nil, classify(node, "CLIENT LIST", err)
	}
	return parseClients(list, r.cfg.User, node, asked), nil
}

// parseClients reads CLIENT LIST's lines of key=value fields and returns those of user.
func parseClients(list, user, node string, now time.Time) []rotators.Use {
	var out []rotators.Use
	for line := range strings.Lines(list) {
		f := map[string]string{}
		for _, kv := range strings.Fields(line) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				f[k] = v
			}
		}
		if f["user"] != user {
			continue
		}
		age, _ := strconv.ParseInt(f["age"], 10, 64)
		out = append(out, rotators.Use{
			User:        user,
			Application: f["name"],
			Client:      f["addr"],
			Since:       since(now, age),
			Detail:      fmt.Sprintf("client id %s on %s", f["id"], node),
		})
	}
	return out
}
