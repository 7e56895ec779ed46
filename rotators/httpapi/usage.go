package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// DefaultInUseMethod is the method of an InUse call that names none.
const DefaultInUseMethod = http.MethodGet

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
}

// compiledUsage is a UsageCheck with its templates and path parsed.
type compiledUsage struct {
	call     compiledCall
	path     jsonPath
	lastUsed bool // path is LastUsedPath; otherwise FlagPath
}

// compileUsage checks and parses c, adding what is wrong to p under the inventory's
// field names (in_use.url, in_use.last_used ...).
func compileUsage(p *problems, c UsageCheck, admin secret.Sensitive) *compiledUsage {
	u := &compiledUsage{call: compileCall(p, "in_use", c.Call, admin)}
	switch {
	case c.LastUsedPath != "" && c.FlagPath != "":
		p.add("in_use", "give last_used or flag, not both")
	case c.LastUsedPath != "":
		path, err := parsePath(c.LastUsedPath)
		if err != nil {
			p.add("in_use.last_used", "%v", err)
		}
		u.path, u.lastUsed = path, true
	case c.FlagPath != "":
		path, err := parsePath(c.FlagPath)
		if err != nil {
			p.add("in_use.flag", "%v", err)
		}
		u.path = path
	default:
		p.add("in_use", "say how to read the answer: last_used (the JSON path of the key's last-use time) or flag (the JSON path of a boolean that is true while the key is in use)")
	}
	return u
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
// the promotion; with flag, when the API says true. A gone status means the key no longer
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
		return rotators.Usage{Checked: checked}, nil
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
