package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/keyturn/keyturn/internal/durtext"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// DefaultInUseMethod is the method of an InUse call that names none: asking must not
// change anything.
const DefaultInUseMethod = http.MethodGet

// MaxUsageDelay bounds UsageCheck.Delay: an API that records a use more than a week late
// cannot hold a revoke gate (whose max_wait is bounded too) to anything useful.
const MaxUsageDelay = 7 * 24 * time.Hour

// UsageCheck is a call that asks the API whether a key is still in use, for the revoke
// gate: the inventory's in_use block. Its URL, headers and body are templates like the
// other calls'. It authenticates as the admin ({{.Admin}}) and names the key with
// {{.KeyID}}; it may not use {{.Secret}}, since a request signed with the old key would
// itself be a use of it, and it must send no body that changes anything: InUse is read
// only, which is the API's promise for the call declared here, not something Keyturn
// can check. Exactly one of LastUsedPath and FlagPath says how to read the answer.
type UsageCheck struct {
	// Call is the request. Method defaults to GET; Success to any 2xx; Gone lists the
	// statuses that mean the key no longer exists, which counts as idle.
	Call
	// LastUsedPath is the JSON path of when the key was last used [last_used]: an RFC
	// 3339 string, a number of seconds since the Unix epoch, or null for never. The key
	// is in use when that is after the promotion.
	LastUsedPath string
	// FlagPath is the JSON path of a boolean by which the API itself says whether the key
	// is in use [flag]. The API's own rule applies (how recent a use counts); the
	// promotion time is not used.
	FlagPath string
	// Delay is how late, at worst, the API shows a use in LastUsedPath [delay]: many APIs
	// update a key's last use in batches or round it. An idle answer counts only from
	// the promotion plus Delay (rotators.Usage.NotBefore); before then the revoke gate
	// keeps waiting. Zero, the default, means the API shows a use at once. last_used only:
	// with FlagPath the API's own rule already says how recent a use counts.
	Delay time.Duration
}

// ApplyDefaults fills in what an in_use check left empty: the method, GET, upper-cased
// like the other calls'. It is the one place the default is set; Config.ApplyDefaults
// calls it, and so does the inventory's validation.
func (c *UsageCheck) ApplyDefaults() {
	if c.Method == "" {
		c.Method = DefaultInUseMethod
	}
	c.Method = strings.ToUpper(c.Method)
}

// Problem is one problem with a configuration, named by the inventory's field
// ("in_use.last_used", "in_use.headers.Authorization").
type Problem struct {
	Field, Message string
}

// Problems reports what breaks the rules that are an in_use check's own: exactly one
// of last_used and flag, each a valid JSON path; a delay within bounds and with
// last_used only; and no {{.Secret}} in any header or the body. The inventory's
// validation calls it, so the rules have one owner; the call's general checks
// (method, URL, statuses) are the inventory's own, as for every call, and the rotator
// makes both when it is built. c's defaults need not be applied.
func (c UsageCheck) Problems() []Problem {
	var p problems
	usageRules(&p, c)
	for _, h := range slices.Sorted(maps.Keys(c.Headers)) {
		refuseSecret(&p, "in_use", "in_use.headers."+h, c.Headers[h])
	}
	refuseSecret(&p, "in_use", "in_use.body", c.Body)
	return p
}

// refuseSecret adds a problem when the template text, of field of call name, uses
// .Secret. Text that does not parse is left to the template checks.
func refuseSecret(p *problems, name, field, text string) {
	t, err := template.New(field).Funcs(funcs).Parse(text)
	if err == nil && uses(t, "Secret") {
		p.add(field, "%s", secretRefusal(name))
	}
}

// secretRefusal says why call name may not use .Secret.
func secretRefusal(name string) string {
	if name == "in_use" {
		return "must not use {{.Secret}}: a request made with the old key would itself be a use of it; authenticate with {{.Admin}}"
	}
	return fmt.Sprintf("uses .Secret, which only test has: %s authenticates with {{.Admin}}", name)
}

// compiledUsage is a UsageCheck with its templates and path parsed.
type compiledUsage struct {
	call     compiledCall
	path     jsonPath
	lastUsed bool // path is LastUsedPath; otherwise FlagPath
	delay    time.Duration
}

// compileUsage checks and parses c, adding what is wrong to p under the inventory's
// field names (in_use.url, in_use.last_used ...).
func compileUsage(p *problems, c UsageCheck, admin secret.Sensitive) *compiledUsage {
	u := &compiledUsage{call: compileCall(p, "in_use", c.Call, admin), delay: c.Delay}
	u.path, u.lastUsed = usageRules(p, c)
	return u
}

// usageRules checks how an in_use answer is read, and the delay, adding what is wrong
// to p; it returns the parsed path and whether it is last_used's.
func usageRules(p *problems, c UsageCheck) (jsonPath, bool) {
	var path jsonPath
	var err error
	lastUsed := false
	switch {
	case c.LastUsedPath != "" && c.FlagPath != "":
		p.add("in_use", "give last_used or flag, not both")
	case c.LastUsedPath != "":
		if path, err = parsePath(c.LastUsedPath); err != nil {
			p.add("in_use.last_used", "%v", err)
		}
		lastUsed = true
	case c.FlagPath != "":
		if path, err = parsePath(c.FlagPath); err != nil {
			p.add("in_use.flag", "%v", err)
		}
	default:
		p.add("in_use", "say how to read the answer: last_used (the JSON path of the key's last-use time, e.g. data.last_used_at) or flag (the JSON path of a boolean that is true while the key is in use)")
	}
	switch {
	case c.Delay < 0 || c.Delay > MaxUsageDelay:
		p.add("in_use.delay", "must be between 0s and %s (a week): how late, at worst, the API shows a use in last_used, e.g. 1h", durtext.Short(MaxUsageDelay))
	case c.Delay > 0 && c.FlagPath != "" && c.LastUsedPath == "":
		p.add("in_use.delay", "only applies with last_used: with flag the API's own answer says whether the key is in use; remove it")
	}
	return path, lastUsed
}

// Build is New for a worker: the rotator it returns implements rotators.UsageReporter
// exactly when cfg declares InUse. An API that offers no such check must not appear to
// report a key idle, so without it the revoke gate sees a kind that cannot tell and relies
// on the grace period alone.
func Build(cfg Config) (rotators.Minter, error) {
	r, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if r.inUse == nil {
		return r, nil
	}
	return &reportingRotator{r}, nil
}

// reportingRotator is a Rotator whose configuration declares an in_use check.
type reportingRotator struct{ *Rotator }

var _ rotators.UsageReporter = (*reportingRotator)(nil)

// InUse sends the in_use call as the admin with the old version's {{.KeyID}} and reads
// the answer: with last_used, the key is in use when its last use came after req.Since,
// the promotion, and an idle answer counts only from req.Since plus the declared delay
// (Usage.NotBefore); with flag, when the API says true. A gone status means the key no longer
// exists: idle. 401 and 403 wrap rotators.ErrPermissionDenied; a response the path does
// not fit wraps rotators.ErrInvalidConfig; server errors, rate limits and network
// failures are plain errors, to be retried. The version kept is never counted.
func (r *reportingRotator) InUse(ctx context.Context, req rotators.UsageRequest) (rotators.Usage, error) {
	u := r.inUse
	id := req.Version.Metadata[MetadataKeyID]
	if id == "" {
		return rotators.Usage{}, fmt.Errorf("httpapi in_use: %w: version %d has no %s metadata, so Keyturn cannot tell which key to ask about",
			rotators.ErrInvalidConfig, req.Version.Number, MetadataKeyID)
	}
	checked := fmt.Sprintf("the API's in_use call (%s) for key %s", u.call.method, id)
	if req.Keep != nil && req.Keep.Metadata[MetadataKeyID] == id {
		return rotators.Usage{Checked: fmt.Sprintf("key %s is the kept version's: not counted", id)}, nil
	}
	if u.lastUsed {
		if req.Since.IsZero() {
			return rotators.Usage{}, fmt.Errorf("httpapi in_use: %w: no promotion time was given, so no use of key %s can be told to come after it",
				rotators.ErrInvalidConfig, id)
		}
		checked += fmt.Sprintf(": a last use (%s) after %s", u.path.text, req.Since.UTC().Format(time.RFC3339))
		if u.delay > 0 {
			checked += fmt.Sprintf("; the API may show a use up to %s late (in_use.delay)", durtext.Short(u.delay))
		}
	} else {
		checked += fmt.Sprintf(": the API's own answer (%s)", u.path.text)
	}

	d := Data{SecretID: string(req.Version.SecretID), Token: string(req.Version.Token), KeyID: id, admin: r.cfg.Admin}
	res, err := r.send(ctx, u.call, d, "", true)
	if err != nil {
		return rotators.Usage{}, err
	}
	switch {
	case u.call.isGone(res.status):
		return rotators.Usage{Checked: checked + "; the key no longer exists"}, nil
	case !u.call.succeeded(res.status):
		return rotators.Usage{}, u.call.adminFailure(res)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("httpapi in_use: %s %s: %w: %s", u.call.method, res.target, rotators.ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	doc, err := decodeJSON(res.body)
	if err != nil {
		return rotators.Usage{}, fail("%v", err)
	}
	v, err := u.path.lookup(doc)
	if err != nil {
		return rotators.Usage{}, fail("path %q: %v", u.path.text, err)
	}
	if !u.lastUsed {
		used, ok := v.(bool)
		if !ok {
			return rotators.Usage{}, fail("flag path %q: the value is %s, not a boolean", u.path.text, kind(v))
		}
		if !used {
			return rotators.Usage{Checked: checked}, nil
		}
		return rotators.Usage{Checked: checked, Uses: []rotators.Use{{User: id, Detail: fmt.Sprintf("the API reports the key in use (%s is true)", u.path.text)}}}, nil
	}
	last, err := timeOf(v)
	if err != nil {
		return rotators.Usage{}, fail("last_used path %q: %v", u.path.text, err)
	}
	if last.IsZero() || !last.After(req.Since) {
		if u.delay == 0 {
			return rotators.Usage{Checked: checked}, nil
		}
		// A use since the promotion may not show yet: idle counts once the API has had
		// its declared delay to show it.
		notBefore := req.Since.Add(u.delay).UTC()
		return rotators.Usage{Checked: fmt.Sprintf("%s; no use shown yet, so idle counts from %s", checked, notBefore.Format(time.RFC3339)), NotBefore: notBefore}, nil
	}
	return rotators.Usage{Checked: checked, Uses: []rotators.Use{{
		User: id, Since: last, Detail: fmt.Sprintf("the API reports the key's last use at %s", last.Format(time.RFC3339)),
	}}}, nil
}

// maxUnixSeconds is a bound for a Unix time in seconds (the year 5138): a number above it
// is almost surely in milliseconds, which would read as a date far in the future and
// hold the gate for ever.
const maxUnixSeconds = 1e11

// timeOf reads a last-use time: an RFC 3339 string, a number of seconds since the Unix
// epoch, or null (never used: the zero time). Errors never quote the value.
func timeOf(v any) (time.Time, error) {
	switch v := v.(type) {
	case nil:
		return time.Time{}, nil
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, errors.New("the value is a string but not an RFC 3339 time (e.g. 2026-12-03T14:00:00Z)")
		}
		return t.UTC(), nil
	case json.Number:
		f, err := v.Float64()
		if err != nil || f < 0 || math.IsInf(f, 0) {
			return time.Time{}, errors.New("the value is a number but not a Unix time in seconds")
		}
		if f > maxUnixSeconds {
			return time.Time{}, errors.New("the value is too large for Unix seconds; is it in milliseconds? only seconds are read")
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("the value is %s, not a time", kind(v))
}
