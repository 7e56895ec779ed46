package inventory

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/keyturn/keyturn/internal/durtext"
	"github.com/keyturn/keyturn/internal/yamlfields"
	"github.com/keyturn/keyturn/schedules/cronspec"
	"github.com/keyturn/keyturn/secret"
)

// tagPattern is what a tag looks like: short lower-case words that are safe in a command
// line selector and in a Temporal search attribute.
var tagPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

// pathLikeHint explains the shape secret IDs and store paths share.
const pathLikeHint = "lower-case segments of a-z, 0-9, '.', '_' and '-' separated by '/', e.g. prod/orders-db/app"

// Validate checks the inventory after ApplyDefaults and returns an Errors listing every
// problem, ordered by line, or nil. Values inherited from the defaults block are checked
// once, at the defaults block, not again for every secret that inherits them.
func (inv *Inventory) Validate() error {
	r := &report{File: inv.Path}
	inv.validateTop(r)
	firstByID := map[secret.ID]*Secret{}
	firstByPath := map[StoreRef]int{}
	for i := range inv.Secrets {
		s := &inv.Secrets[i]
		c := &secretCheck{r: r, inv: inv, s: s, path: fmt.Sprintf("secrets[%d]", i)}
		c.validate()

		if s.ID == "" {
			continue
		}
		if first, dup := firstByID[s.ID]; dup {
			c.add("id", "duplicate id %s, first used at line %d; every secret needs its own id", quoteValue(string(s.ID)), first.line("id"))
			continue // its store path is a duplicate too when defaulted; one problem is enough
		}
		firstByID[s.ID] = s
		if s.Store.Path == "" {
			continue
		}
		if j, dup := firstByPath[s.Store]; dup {
			c.add("store.path", "store path %s is also used by secrets[%d] (line %d); two secrets writing one path overwrite each other, so give each its own", quoteValue(s.Store.Path), j, inv.Secrets[j].Line)
			continue
		}
		firstByPath[s.Store] = i
	}
	inv.validateRoleOverlap(r, func(i int) bool { return firstByID[inv.Secrets[i].ID] != &inv.Secrets[i] })
	inv.validateIAMUserOverlap(r, func(i int) bool { return firstByID[inv.Secrets[i].ID] != &inv.Secrets[i] })
	inv.validateRedisUserOverlap(r, func(i int) bool { return firstByID[inv.Secrets[i].ID] != &inv.Secrets[i] })
	inv.validateMariaDBOverlap(r, func(i int) bool { return firstByID[inv.Secrets[i].ID] != &inv.Secrets[i] })
	inv.validateNotifications(r)
	return Errors(r.Problems).orNil()
}

// validateTop checks version, the defaults block and that there is something to manage.
func (inv *Inventory) validateTop(r *report) {
	line := func(field string) int {
		if l := inv.pos.line(field); l > 0 {
			return l
		}
		return 1
	}
	switch {
	case inv.Version == 0 && !inv.pos.has("version"):
		r.Add(1, "version", "required; add version: %d at the top of the file", SupportedVersion)
	case inv.Version != SupportedVersion:
		r.Add(line("version"), "version", "unsupported version %d; this release reads version %d", inv.Version, SupportedVersion)
	}
	if g := inv.Defaults.Grace; g != nil {
		if msg := graceProblem(*g); msg != "" {
			r.Add(line("defaults.grace"), "defaults.grace", "%s", msg)
		}
	}
	if inv.Defaults.Store != "" {
		if msg := storeTypeProblem(inv.Defaults.Store); msg != "" {
			r.Add(line("defaults.store"), "defaults.store", "%s", msg)
		}
	}
	if w := inv.Defaults.Window; w < 0 || w >= cronspec.MinInterval {
		r.Add(line("defaults.window"), "defaults.window", "%s", windowProblem(w))
	}
	if cw := inv.Defaults.CatchupWindow; cw < MinCatchupWindow || cw > MaxCatchupWindow {
		r.Add(line("defaults.catchup_window"), "defaults.catchup_window", "must be between %s and %s (Temporal's minimum, and a day); remove it to use %s", durtext.Short(MinCatchupWindow), durtext.Short(MaxCatchupWindow), durtext.Short(DefaultCatchupWindow))
	}
	checkTags(r, "defaults.tags", inv.Defaults.Tags, nil, func(f string) int { return line(yamlfields.Join("defaults", f)) })
	if o := inv.Defaults.Owner; o != "" || inv.pos.has("defaults.owner") {
		if msg := ownerProblem(o); msg != "" {
			r.Add(line("defaults.owner"), "defaults.owner", "%s", msg)
		}
	}
	if m := inv.Defaults.MaxAge; m != 0 || inv.pos.has("defaults.max_age") {
		if msg := maxAgeProblem(m); msg != "" {
			r.Add(line("defaults.max_age"), "defaults.max_age", "%s", msg)
		}
	}
	if v := inv.Defaults.Sensitivity; v != "" || inv.pos.has("defaults.sensitivity") {
		if msg := sensitivityProblem(v); msg != "" {
			r.Add(line("defaults.sensitivity"), "defaults.sensitivity", "%s", msg)
		}
	}
	inv.validateDefaultsGate(r)
	if len(inv.Secrets) == 0 {
		r.Add(line("secrets"), "secrets", "no secrets listed; add at least one under secrets: (an empty inventory is almost always a mistake, and it would stop every scheduled rotation)")
	}
}

// graceProblem returns what is wrong with a grace period, or "".
func graceProblem(g time.Duration) string {
	switch {
	case g < 0:
		return "must not be negative; use 0s for no grace period"
	case g > MaxGrace:
		return fmt.Sprintf("is longer than the maximum of %s; a superseded credential should not stay valid that long", durtext.Short(MaxGrace))
	}
	return ""
}

// storeTypeProblem returns what is wrong with a store type, or "".
func storeTypeProblem(t string) string {
	if yamlfields.Contains(knownStores, t) {
		return ""
	}
	return fmt.Sprintf("unknown store type %s; allowed: %s", quoteValue(t), yamlfields.QuoteList(knownStores))
}

// checkTags reports malformed and repeated tags. Tags in inherited came from the defaults
// block and are checked there. line maps a field relative to the list's owner ("tags[1]")
// to its line.
func checkTags(r *report, field string, tags, inherited []string, line func(string) int) {
	name := field[strings.LastIndex(field, ".")+1:]
	seen := map[string]bool{}
	for i, t := range tags {
		item := fmt.Sprintf("%s[%d]", name, i)
		abs := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case seen[t]:
			r.Add(line(item), abs, "tag %s is listed twice; remove one", quoteValue(t))
		case yamlfields.Contains(inherited, t):
		case !tagPattern.MatchString(t):
			r.Add(line(item), abs, "tag %s is not valid; use lower-case a-z, 0-9, '_', '.' and '-', starting with a letter or digit", quoteValue(t))
		}
		seen[t] = true
	}
}

// secretCheck validates one secret.
type secretCheck struct {
	r    *report
	inv  *Inventory
	s    *Secret
	path string
}

// add reports a problem with field, a path relative to the secret.
func (c *secretCheck) add(field, format string, args ...any) {
	c.r.Add(c.s.line(field), yamlfields.Join(c.path, field), format, args...)
}

// inherited reports whether field holds the value from the defaults block rather than one
// the file set on the secret.
func (c *secretCheck) inherited(field string, sameAsDefault bool) bool {
	return sameAsDefault && !c.s.pos.has(field)
}

// validate checks every field of the secret.
func (c *secretCheck) validate() {
	s := c.s
	if s.ID == "" {
		c.add("id", "required; give the secret a path-like id (%s)", pathLikeHint)
	} else if s.ID.Validate() != nil {
		// secret.ID's own error repeats the whole value; the file's value is shown capped.
		c.add("id", "%s is not a valid secret id; use %s, at most 200 characters", quoteValue(string(s.ID)), pathLikeHint)
	}
	switch {
	case s.Kind == "":
		c.add("kind", "required; known kinds: %s", yamlfields.QuoteList(knownKinds))
	case !yamlfields.Contains(knownKinds, s.Kind):
		c.add("kind", "unknown kind %s; known kinds: %s", quoteValue(s.Kind), yamlfields.QuoteList(knownKinds))
	}
	c.validateStore()
	if !c.inherited("grace", c.inv.Defaults.Grace != nil && s.Grace == *c.inv.Defaults.Grace) {
		if msg := graceProblem(s.Grace); msg != "" {
			c.add("grace", "%s", msg)
		}
	}
	checkTags(c.r, yamlfields.Join(c.path, "tags"), s.Tags, c.inv.Defaults.Tags, s.line)
	if s.pos.has("owner") {
		if msg := ownerProblem(s.Owner); msg != "" {
			c.add("owner", "%s", msg)
		}
	}
	c.validateSchedule()
	c.validateMaxAge()
	c.validateConsumers()
	c.validateRevokeGate()

	c.validateKindBlocks()
}

// validateStore checks the store type and path.
func (c *secretCheck) validateStore() {
	s := c.s
	if s.Store.Type == "" {
		c.add("store.type", "required; allowed: %s", yamlfields.QuoteList(knownStores))
	} else if !c.inherited("store.type", s.Store.Type == c.inv.Defaults.Store) {
		if msg := storeTypeProblem(s.Store.Type); msg != "" {
			c.add("store.type", "%s", msg)
		}
	}
	if s.Store.Mount != "" && s.Store.Type != StoreVault {
		c.add("store.mount", "only a vault store has a mount; remove it or set type: vault")
	}
	// A defaulted path is the ID, which has been checked already.
	if s.Store.Path != "" && !c.inherited("store.path", s.Store.Path == string(s.ID)) {
		if secret.ID(s.Store.Path).Validate() != nil {
			c.add("store.path", "%s is not path-like; use %s", quoteValue(s.Store.Path), pathLikeHint)
		}
	}
}

// validateSchedule checks the timezone, and the schedule against Keyturn's rules (see
// cronspec.Parse). A bad zone is reported on its own field and the spec is still checked.
func (c *secretCheck) validateSchedule() {
	s := c.s
	zone := s.Timezone
	if _, err := cronspec.LoadZone(zone); err != nil {
		c.add("timezone", "%v", err)
		zone = "" // still check the spec itself, in UTC
	}
	if s.pos.has("window") && (s.Window < 0 || s.Window >= cronspec.MinInterval) {
		c.add("window", "%s", windowProblem(s.Window))
	}
	if s.pos.has("window") && s.Schedule == "" {
		c.add("window", "only means something with a schedule; add a schedule or remove the window")
	}
	if s.Schedule == "" {
		return
	}
	if _, err := cronspec.Parse(s.Schedule, zone); err != nil {
		c.add("schedule", "%v", err)
	}
}

// windowProblem says what is wrong with a rotation window outside [0, cronspec.MinInterval).
func windowProblem(w time.Duration) string {
	if w < 0 {
		return "must not be negative; use 0s for no spread"
	}
	return fmt.Sprintf("must be shorter than %s, the shortest allowed gap between scheduled rotations, or two runs could meet; use e.g. 30m", durtext.Short(cronspec.MinInterval))
}
