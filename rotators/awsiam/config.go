package awsiam

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/keyturn/keyturn/rotators"
)

// DefaultConsistencyTimeout is how long Test waits, by default, for STS to accept a key IAM
// reports as active. AWS documents IAM changes as eventually consistent; a new or
// reactivated key usually works within seconds.
const DefaultConsistencyTimeout = 30 * time.Second

// MaxConsistencyTimeout bounds Config.ConsistencyTimeout: Test holds an activity for that
// long, and a key that STS still refuses after minutes is not a propagation delay.
const MaxConsistencyTimeout = 5 * time.Minute

// userNamePattern is IAM's own rule for user names (1 to 64 characters).
var userNamePattern = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)

// Config describes the one IAM user whose access keys a Rotator rotates. The YAML names
// of the inventory's awsiam block are given in brackets.
type Config struct {
	// UserName is the IAM user whose keys are rotated [user]. Required. The user must
	// already exist: Keyturn never creates or deletes users.
	UserName string
	// DeleteInactive lets Mint delete the user's inactive second key to make room for a
	// new one, since IAM allows two keys per user [delete_inactive]. Without it, Mint stops
	// and says which key is in the way.
	DeleteInactive bool
	// DeleteAfter is how long a deactivated key is kept, still recoverable by reactivating
	// it, before Purge deletes it [delete_after]. PurgeAfter returns it; 0 purges right
	// after Revoke.
	DeleteAfter time.Duration
	// ConsistencyTimeout bounds how long Test retries STS while IAM's eventual consistency
	// settles [consistency_timeout]. 0 means DefaultConsistencyTimeout; at most
	// MaxConsistencyTimeout. The Test activity's timeout must be longer.
	ConsistencyTimeout time.Duration
}

// ApplyDefaults fills in the fields left empty that have defaults.
func (c *Config) ApplyDefaults() {
	if c.ConsistencyTimeout == 0 {
		c.ConsistencyTimeout = DefaultConsistencyTimeout
	}
}

// Validate reports every problem with the configuration at once, in one error wrapping
// rotators.ErrInvalidConfig. Each problem names the inventory field and what to do.
func (c Config) Validate() error {
	c.ApplyDefaults() // c is a copy: the caller's value is not changed
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	switch {
	case c.UserName == "":
		add("user is empty: set awsiam.user to the name of the IAM user whose access keys Keyturn rotates")
	case !userNamePattern.MatchString(c.UserName):
		add("user %q is not an IAM user name: use the name alone (1-64 letters, digits and +=,.@_-), not an ARN or a path", c.UserName)
	}
	if c.DeleteAfter < 0 {
		add("delete_after %s is negative: use 0s to delete a key right after it is deactivated, or a duration such as 168h", c.DeleteAfter)
	}
	if c.ConsistencyTimeout < 0 || c.ConsistencyTimeout > MaxConsistencyTimeout {
		add("consistency_timeout %s is not between 0s and %s: leave it out for the default %s", c.ConsistencyTimeout, MaxConsistencyTimeout, DefaultConsistencyTimeout)
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("awsiam: %w: %s", rotators.ErrInvalidConfig, strings.Join(problems, "; "))
}
