package inventory

import (
	"cmp"
	"fmt"
	"time"

	"github.com/keyturn/keyturn/internal/durtext"
	"github.com/keyturn/keyturn/internal/yamlfields"
	"github.com/keyturn/keyturn/rotators/awsiam"
)

// The revoke gate: before a rotation revokes the previous version it may ask the target
// whether that version is still in use, and wait for it to go idle. These are the words
// of a secret's (or the defaults block's) revoke_gate block.
const (
	// GateWaitNo revokes when the grace period ends, whoever still uses the old
	// credential: the behaviour without a gate, and the default.
	GateWaitNo = "no"
	// GateWaitUntilUnused waits after the grace period until the target shows the previous
	// version idle, for at most max_wait.
	GateWaitUntilUnused = "until_unused"
	// GateThenRevoke revokes anyway when max_wait has passed with the version still in
	// use; the rotation's status and result say how many uses were open.
	GateThenRevoke = "revoke"
	// GateThenHold holds the revoke when max_wait has passed: it keeps checking until the
	// version is idle or an operator sends revoke-now, and notifies revoke_held.
	GateThenHold = "hold"
)

// Defaults and limits of the revoke gate.
const (
	DefaultGateMaxWait = time.Hour
	DefaultGatePoll    = 30 * time.Second
	// MinGatePoll keeps the gate from querying the target (pg_stat_activity, IAM) in a
	// tight loop, and its history from filling with checks.
	MinGatePoll = 5 * time.Second
	// MaxGatePoll: a check less often than hourly leaves a credential nobody uses
	// valid for an hour longer than needed.
	MaxGatePoll = time.Hour
	// MaxGateMaxWait bounds the wait like MaxGrace bounds the grace period: the old
	// credential stays valid while the gate waits.
	MaxGateMaxWait = MaxGrace
)

var (
	revokeGateFields = []string{"wait", "max_wait", "then", "poll"}
	gateWaits        = []string{GateWaitNo, GateWaitUntilUnused}
	gateThens        = []string{GateThenRevoke, GateThenHold}
)

// RevokeGate is a revoke_gate block: whether and how long a rotation waits, after the
// grace period, for the target to show the previous version unused before it revokes it.
type RevokeGate struct {
	// Wait is GateWaitNo or GateWaitUntilUnused.
	Wait string
	// MaxWait is how long the gate waits for the version to go idle before Then applies.
	MaxWait time.Duration
	// Then is GateThenRevoke or GateThenHold.
	Then string
	// Poll is how often the target is asked while the gate waits.
	Poll time.Duration
}

// The zero RevokeGate does not wait; it is what a secret gets when neither it nor the
// defaults block has a revoke_gate block.

// Waits reports whether the gate waits for the previous version to be unused.
func (g RevokeGate) Waits() bool { return g.Wait == GateWaitUntilUnused }

// Holds reports whether the gate holds the revoke when MaxWait has passed.
func (g RevokeGate) Holds() bool { return g.Waits() && g.Then == GateThenHold }

// String describes the gate for `keyturn config validate` and status: "no" or
// "until_unused, max 1h, then hold, poll 30s".
func (g RevokeGate) String() string {
	if !g.Waits() {
		return GateWaitNo
	}
	return fmt.Sprintf("%s, max %s, then %s, poll %s", g.Wait, durtext.Day(g.MaxWait), g.Then, durtext.Day(g.Poll))
}

// usageProblem says why a secret's kind cannot tell whether a version is still in use,
// or "" when it can. The kinds that can implement rotators.UsageReporter: a Postgres role
// has sessions, an IAM key a last-used time, an HTTP API key whose secret declares an
// in_use call, a Redis user connections (those opened before the promotion). A certificate is presented to whoever asks, and nothing records who still
// holds the old one.
func usageProblem(s *Secret) string {
	switch s.Kind {
	case KindPostgres, KindAWSIAM, KindRedis:
		return ""
	case KindMariaDB:
		if s.MariaDB != nil && s.MariaDB.Strategy == StrategySingle {
			return "a single-strategy mariadb account keeps its name across versions, so its connections cannot tell the old password from the new (use the alternating strategy for a revoke gate)"
		}
		return ""
	case KindHTTPAPI:
		// Only a declared in_use call makes the httpapi rotator a UsageReporter.
		if s.HTTPAPI != nil && s.HTTPAPI.InUse != nil {
			return ""
		}
		return "an httpapi secret without an in_use check cannot report whether an old key is still in use (declare httpapi.in_use if the API offers a last-used time)"
	case KindVaultPKI, KindLocalCA:
		return fmt.Sprintf("a %s certificate cannot report whether it is still in use (nothing records who still presents the old one)", s.Kind)
	}
	return ""
}

// revokeGate decodes a revoke_gate block.
func revokeGate(b block, g *RevokeGate) {
	b.Str("wait", &g.Wait)
	b.Duration("max_wait", &g.MaxWait)
	b.Str("then", &g.Then)
	b.Duration("poll", &g.Poll)
}

// applyDefaults fills the fields of a secret's gate the file left out (wrote says which
// it wrote): from the defaults block's gate, then from the built-in defaults.
func (g *RevokeGate) applyDefaults(inherited RevokeGate, wrote func(string) bool) {
	if *g == (RevokeGate{}) && inherited == (RevokeGate{}) && !wrote("") {
		return // no gate anywhere: the zero gate, which does not wait
	}
	if g.Wait == "" && !wrote("wait") {
		g.Wait = inherited.Wait
	}
	if g.Wait == "" && !wrote("wait") {
		g.Wait = GateWaitNo
	}
	if g.MaxWait == 0 && !wrote("max_wait") {
		g.MaxWait = cmp.Or(inherited.MaxWait, DefaultGateMaxWait)
	}
	if g.Then == "" && !wrote("then") {
		g.Then = cmp.Or(inherited.Then, GateThenRevoke)
	}
	if g.Poll == 0 && !wrote("poll") {
		g.Poll = cmp.Or(inherited.Poll, DefaultGatePoll)
	}
}

// gateFieldProblems checks the fields of a gate block that the file wrote (wrote says
// which), each on its own and max_wait against poll, calling add with the field's name.
func gateFieldProblems(g RevokeGate, wrote func(string) bool, add func(field, msg string)) {
	if wrote("wait") && !yamlfields.Contains(gateWaits, g.Wait) {
		add("wait", fmt.Sprintf("%s is not a revoke gate wait; allowed: %s (no revokes after the grace period regardless of use; until_unused waits for the target to show the old credential unused)", quoteValue(g.Wait), yamlfields.QuoteList(gateWaits)))
	}
	if wrote("then") && !yamlfields.Contains(gateThens, g.Then) {
		add("then", fmt.Sprintf("%s is not what the gate does after max_wait; allowed: %s", quoteValue(g.Then), yamlfields.QuoteList(gateThens)))
	}
	maxOK := true
	if wrote("max_wait") && (g.MaxWait <= 0 || g.MaxWait > MaxGateMaxWait) {
		add("max_wait", fmt.Sprintf("must be between 1s and %s: how long the gate waits for the old credential to go unused, e.g. 1h", durtext.Day(MaxGateMaxWait)))
		maxOK = false
	}
	pollOK := true
	if wrote("poll") && (g.Poll < MinGatePoll || g.Poll > MaxGatePoll) {
		add("poll", fmt.Sprintf("must be between %s and %s: how often the gate asks the target, e.g. 30s", durtext.Short(MinGatePoll), durtext.Short(MaxGatePoll)))
		pollOK = false
	}
	if maxOK && pollOK && (wrote("poll") || wrote("max_wait")) && g.MaxWait > 0 && g.Poll > g.MaxWait {
		field := "poll"
		if !wrote("poll") {
			field = "max_wait"
		}
		add(field, fmt.Sprintf("poll %s is longer than max_wait %s, so the gate would check only once; make poll shorter than max_wait", durtext.Day(g.Poll), durtext.Day(g.MaxWait)))
	}
	if wrote("then") && wrote("wait") && g.Wait == GateWaitNo && g.Then != "" {
		add("then", "only means something with wait: until_unused; remove it or set wait: until_unused")
	}
}

// validateDefaultsGate checks the defaults block's revoke_gate.
func (inv *Inventory) validateDefaultsGate(r *report) {
	wrote := func(f string) bool { return inv.pos.has("defaults.revoke_gate." + f) }
	gateFieldProblems(inv.Defaults.RevokeGate, wrote, func(field, msg string) {
		r.Add(inv.pos.line("defaults.revoke_gate."+field), "defaults.revoke_gate."+field, "%s", msg)
	})
}

// validateRevokeGate checks the secret's own revoke_gate fields, and that a secret whose
// gate waits (as it wrote, or as it inherits from the defaults block) is of a kind that
// can report whether a version is in use: a gate that cannot ask would only delay the
// revoke by max_wait and pretend it had checked.
func (c *secretCheck) validateRevokeGate() {
	s := c.s
	wrote := func(f string) bool { return s.pos.has("revoke_gate." + f) }
	gateFieldProblems(s.RevokeGate, wrote, func(field, msg string) { c.add("revoke_gate."+field, "%s", msg) })
	if !s.RevokeGate.Waits() {
		return
	}
	why := usageProblem(s)
	if why == "" {
		return
	}
	if wrote("wait") {
		c.add("revoke_gate.wait", "secret %s: wait: until_unused needs a target that reports use, but %s; set wait: no (the revoke follows the grace period) and give consumers a grace period that covers their refresh", s.ID, why)
		return
	}
	c.add("kind", "secret %s inherits revoke_gate wait: until_unused from the defaults block (line %d), but %s; add revoke_gate: {wait: no} to this secret", s.ID, c.inv.pos.line("defaults.revoke_gate.wait"), why)
}

// reportingDelay is how late, at worst, the secret's target shows a use of an old
// version, and who says so; zero when it shows one at once. The rotators own the
// figures: awsiam.LastUsedDelay, and the httpapi in_use check's declared delay. The
// revoke gate takes no idle answer for idle before the promotion plus this delay.
func reportingDelay(s *Secret) (time.Duration, string) {
	switch {
	case s.Kind == KindAWSIAM:
		return awsiam.LastUsedDelay, fmt.Sprintf("AWS records an access key's use up to %s late", durtext.Day(awsiam.LastUsedDelay))
	case s.Kind == KindHTTPAPI && s.HTTPAPI != nil && s.HTTPAPI.InUse != nil && s.HTTPAPI.InUse.LastUsed != "" && s.HTTPAPI.InUse.Delay > 0:
		return s.HTTPAPI.InUse.Delay, fmt.Sprintf("the API shows a key's use up to %s late (httpapi.in_use.delay)", durtext.Day(s.HTTPAPI.InUse.Delay))
	}
	return 0, ""
}

// gateDelayWarning warns when a secret's gate waits but ends (grace plus max_wait after
// the promotion) before its target's reporting delay has passed: no idle answer can
// count by then, so the gate always ends by max_wait, revoking anyway or holding, and
// waiting bought nothing but time.
func (inv *Inventory) gateDelayWarning(r *report, i int, s *Secret) {
	if !s.RevokeGate.Waits() {
		return
	}
	delay, who := reportingDelay(s)
	if delay <= 0 || s.Grace+s.RevokeGate.MaxWait >= delay {
		return
	}
	then := "revokes anyway, whoever still uses the old credential"
	if s.RevokeGate.Holds() {
		then = "holds the revoke until an idle answer counts or an operator sends revoke-now"
	}
	field := "revoke_gate.max_wait"
	r.Add(s.line(field), fmt.Sprintf("secrets[%d].%s", i, field),
		"secret %s: %s, but its revoke gate ends %s after the promotion (grace %s plus max_wait %s), before an idle answer can count, so the gate never sees the old version idle and at max_wait always %s; raise revoke_gate.max_wait to at least %s (or grace to at least %s)",
		s.ID, who, durtext.Day(s.Grace+s.RevokeGate.MaxWait), durtext.Day(s.Grace), durtext.Day(s.RevokeGate.MaxWait), then,
		durtext.Day(delay-s.Grace), durtext.Day(delay-s.RevokeGate.MaxWait))
}
