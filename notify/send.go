package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/telemetry/httpspans"
)

// Defaults of a Sender.
const (
	// DefaultMaxAttempts bounds the tries of one delivery.
	DefaultMaxAttempts = 4
	// DefaultBackoff is the wait before the second try; it doubles after each try.
	DefaultBackoff = 500 * time.Millisecond
	// DefaultAttemptTimeout bounds one try, so one hung connection leaves time to retry.
	DefaultAttemptTimeout = 5 * time.Second
	// DefaultTimeout bounds a whole delivery, retries included, when the caller's context
	// has no earlier deadline: a dead webhook costs this much and no more.
	DefaultTimeout = 15 * time.Second
)

// Delivery errors, for errors.Is. Their messages never contain the webhook URL.
var (
	// ErrNotDelivered wraps every failed delivery.
	ErrNotDelivered = errors.New("notification not delivered")
	// ErrRejected means the receiver answered with a status that retrying will not change
	// (a 4xx other than 408, 425 and 429, or a redirect, which is not followed).
	ErrRejected = errors.New("receiver refused it")
	// ErrInsecureURL means the webhook URL is not https and not on this machine.
	ErrInsecureURL = errors.New("webhook URL must be an absolute https URL (plain http is allowed to localhost only)")
)

// Revealer resolves a reference to its material when an event is sent; the worker's
// internal/binding.Resolver is one.
type Revealer interface {
	Reveal(ctx context.Context, ref inventory.Ref) (secret.Sensitive, error)
}

// Sender delivers events to routes. The zero value needs only Revealer; set the fields
// before the first Send, which builds the HTTP client from them. A Sender is safe for
// concurrent use.
type Sender struct {
	// Revealer resolves each route's url and signing_key references.
	Revealer Revealer
	// RootCAs are the CAs trusted for https webhooks; nil means the system's roots.
	RootCAs *x509.CertPool
	// MaxAttempts, Backoff, AttemptTimeout and Timeout default to the Default constants.
	MaxAttempts    int
	Backoff        time.Duration
	AttemptTimeout time.Duration
	Timeout        time.Duration
	// Now is the clock signatures are dated by; nil means time.Now.
	Now func() time.Time
	// TracerProvider, when set, gets a client span for each request: method, host and
	// status only, since a webhook's URL is a credential (telemetry/httpspans.HostOnly);
	// nil traces nothing.
	TracerProvider trace.TracerProvider

	once   sync.Once
	client *http.Client
}

// Delivery is what happened to one event on one route.
type Delivery struct {
	// Route is the route's name.
	Route string
	// EventID is the ID the receiver saw in Keyturn-Event-Id.
	EventID string
	// Status is the last HTTP status received, 0 when none was.
	Status int
	// Attempts is how many requests were made.
	Attempts int
	// Err is nil when the event was delivered; it wraps ErrNotDelivered otherwise.
	Err error
}

// SendAll delivers e to every route at once, so a dead webhook does not delay the others,
// and returns one Delivery per route in the routes' order. It returns when all are done,
// within the Sender's Timeout or ctx's deadline.
func (s *Sender) SendAll(ctx context.Context, routes []inventory.NotifyRoute, e Event) []Delivery {
	out := make([]Delivery, len(routes))
	var wg sync.WaitGroup
	for i, rt := range routes {
		wg.Go(func() { out[i], _ = s.Send(ctx, rt, e) })
	}
	wg.Wait()
	return out
}

// Send delivers e to one route: it resolves the route's references, renders the body in
// the route's format, signs it and POSTs it, retrying transient failures (connection
// errors, timeouts, 408, 425, 429 and 5xx) with doubling backoff until MaxAttempts or the
// deadline. The returned error is also Delivery.Err.
func (s *Sender) Send(ctx context.Context, rt inventory.NotifyRoute, e Event) (Delivery, error) {
	e = e.Seal()
	d := Delivery{Route: rt.Name, EventID: e.ID}
	failWrap := func(err error, format string, args ...any) (Delivery, error) {
		d.Err = fmt.Errorf("notify route %q: %w: %s: %w", rt.Name, ErrNotDelivered, fmt.Sprintf(format, args...), err)
		return d, d.Err
	}
	ctx, cancel := context.WithTimeout(ctx, s.or(s.Timeout, DefaultTimeout))
	defer cancel()

	target, err := s.Revealer.Reveal(ctx, rt.URL)
	if err != nil {
		return failWrap(err, "resolve url %s", rt.URL)
	}
	u, err := webhookURL(target.Reveal())
	if err != nil {
		return failWrap(err, "the URL that %s holds", rt.URL)
	}
	var key []byte
	if rt.SigningKey != "" {
		k, err := s.Revealer.Reveal(ctx, rt.SigningKey)
		if err != nil {
			return failWrap(err, "resolve signing_key %s", rt.SigningKey)
		}
		if key = []byte(k.Reveal()); len(key) < MinKeyBytes {
			return failWrap(ErrKeyTooShort, "signing_key %s", rt.SigningKey)
		}
	}
	body, err := Body(rt.Format, e)
	if err != nil {
		return failWrap(err, "render the body")
	}

	backoff := s.or(s.Backoff, DefaultBackoff)
	maxAttempts := s.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	for {
		d.Attempts++
		status, retry, cause := s.attempt(ctx, u, key, body, e)
		if status != 0 {
			d.Status = status
		}
		switch {
		case cause == nil:
			return d, nil
		case !retry:
			return failWrap(cause, "attempt %d of %d", d.Attempts, maxAttempts)
		case d.Attempts >= maxAttempts:
			return failWrap(cause, "gave up after %d attempts", d.Attempts)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < backoff {
			return failWrap(cause, "gave up after %d attempt(s): no time left before the deadline to retry", d.Attempts)
		}
		select {
		case <-ctx.Done():
			return failWrap(ctx.Err(), "gave up after %d attempt(s), the last: %v", d.Attempts, cause)
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// attempt makes one request. It returns the status (0 when none came back), whether a
// failure is worth retrying, and the failure, whose text never holds the URL.
func (s *Sender) attempt(ctx context.Context, u *url.URL, key, body []byte, e Event) (int, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.or(s.AttemptTimeout, DefaultAttemptTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, false, errors.New("cannot build the request")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "keyturn-notify")
	req.Header.Set(HeaderEventID, e.ID)
	req.Header.Set(HeaderEventType, string(e.Type))
	if key != nil {
		req.Header.Set(HeaderSignature, Sign(key, s.now(), body))
	}
	resp, err := s.httpClient().Do(req)
	if err != nil {
		return 0, transient(err), transportError(err, u)
	}
	// Drain a little so the connection can be reused; the receiver's answer is not
	// repeated anywhere, since it may echo what it was sent.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	st := resp.StatusCode
	switch {
	case st >= 200 && st < 300:
		return st, false, nil
	case st >= 500 || st == http.StatusRequestTimeout || st == http.StatusTooEarly || st == http.StatusTooManyRequests:
		return st, true, fmt.Errorf("status %d %s", st, http.StatusText(st))
	}
	return st, false, fmt.Errorf("%w: status %d %s", ErrRejected, st, http.StatusText(st))
}

// webhookURL parses a resolved webhook URL and applies the transport rule shared with the
// httpapi kind: https, or plain http to this machine only.
func webhookURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return nil, ErrInsecureURL
	}
	switch {
	case u.Scheme == "https":
		return u, nil
	case u.Scheme == "http" && inventory.IsLoopbackHost(u.Hostname()):
		return u, nil
	}
	return nil, ErrInsecureURL
}

// transient reports whether a transport failure may go away on its own: a refused or
// reset connection or a timeout may, a certificate that is not trusted will not.
func transient(err error) bool {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	return !errors.As(err, &unknown) && !errors.As(err, &hostname) && !errors.As(err, &invalid) && !errors.As(err, &verify)
}

// transportError describes a failed request without the URL, which *url.Error repeats
// and which may be a credential (a Slack webhook's path is its secret).
func transportError(err error, u *url.URL) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := httpspans.ScrubURL(err.Error(), u)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w (%s)", context.DeadlineExceeded, msg)
	}
	return errors.New(msg)
}

func (s *Sender) httpClient() *http.Client {
	s.once.Do(func() {
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.TLSClientConfig = &tls.Config{RootCAs: s.RootCAs, MinVersion: tls.VersionTLS12}
		s.client = &http.Client{
			Transport: httpspans.Transport(transport, s.TracerProvider, httpspans.HostOnly),
			// A redirect would resend a signed event somewhere the inventory does not name.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	})
	return s.client
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sender) or(d, fallback time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return fallback
}
