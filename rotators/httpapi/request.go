package httpapi

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
	"slices"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/telemetry/httpspans"
)

// StatusError is an unexpected response: which call, which request and what status. It
// names the URL without its query string and never holds the response body, which may
// carry a secret (a create response does).
type StatusError struct {
	// Call is "create", "test" or "revoke".
	Call   string
	Method string
	// URL is scheme://host/path of the request.
	URL    string
	Status int
	// Hint, if set, says what to change.
	Hint string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("httpapi %s: %s %s: status %d %s", e.Call, e.Method, e.URL, e.Status, http.StatusText(e.Status))
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// response is what the rotator keeps of a response.
type response struct {
	status int
	body   []byte // only when asked for
	target string
}

// send renders and sends one call. idempotencyKey, if set, goes in the Idempotency-Key
// header. The body is read (up to maxResponseBytes) only when readBody is set; otherwise
// it is drained, within the same bound, so the connection can be reused.
//
// Errors name the call, the method and scheme://host/path; the credentials in d are
// scrubbed from them in case a transport error ever quotes a header.
func (r *Rotator) send(ctx context.Context, c compiledCall, d Data, idempotencyKey string, readBody bool) (response, error) {
	scrub := func(err error) error { return scrub(err, d.admin, d.key) }
	rd, err := c.render(d)
	if err != nil {
		return response{}, scrub(fmt.Errorf("httpapi %s: %w: %w", c.name, rotators.ErrInvalidConfig, err))
	}
	resp := response{target: redactURL(rd.url)}

	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	var body io.Reader
	if rd.body != nil {
		body = bytes.NewReader(rd.body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, rd.url.String(), body)
	if err != nil {
		return resp, scrub(fmt.Errorf("httpapi %s: %s %s: %w: %w", c.name, c.method, resp.target, rotators.ErrInvalidConfig, unwrapURLError(err)))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "keyturn")
	if rd.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for name, value := range rd.headers {
		req.Header.Set(name, value)
	}
	if idempotencyKey != "" {
		req.Header.Set(IdempotencyHeader, idempotencyKey)
	}

	res, err := r.client.Do(req)
	if err != nil {
		if untrustedCertificate(err) {
			// Say what to configure. Still retryable: the server's certificate may be
			// mid-renewal, and the retry policy bounds how long this may last.
			return resp, scrub(fmt.Errorf("httpapi %s: %s %s: the server's TLS certificate is not trusted (if a private CA signs it, set httpapi.ca_file to that CA's PEM bundle): %w", c.name, c.method, resp.target, unwrapURLError(err)))
		}
		// Retryable: the caller's retry policy decides how long a network failure may last.
		return resp, scrub(fmt.Errorf("httpapi %s: %s %s: %w", c.name, c.method, resp.target, unwrapURLError(err)))
	}
	defer res.Body.Close()
	resp.status = res.StatusCode
	limited := io.LimitReader(res.Body, maxResponseBytes+1)
	if !readBody {
		_, _ = io.Copy(io.Discard, limited)
		return resp, nil
	}
	b, err := io.ReadAll(limited)
	if err != nil {
		return resp, scrub(fmt.Errorf("httpapi %s: %s %s: read response: %w", c.name, c.method, resp.target, unwrapURLError(err)))
	}
	if len(b) > maxResponseBytes {
		return resp, fmt.Errorf("httpapi %s: %s %s: the response is larger than %d bytes", c.name, c.method, resp.target, maxResponseBytes)
	}
	resp.body = b
	return resp, nil
}

// statusError builds the StatusError for a response.
func (c compiledCall) statusError(res response, hint string) *StatusError {
	return &StatusError{Call: c.name, Method: c.method, URL: res.target, Status: res.status, Hint: hint}
}

// succeeded reports whether status means success for c.
func (c compiledCall) succeeded(status int) bool {
	if len(c.success) == 0 {
		return status >= 200 && status <= 299
	}
	return slices.Contains(c.success, status)
}

func (c compiledCall) isGone(status int) bool { return slices.Contains(c.gone, status) }

// transient reports whether a status may go away by itself: a server error, a rate limit
// or a request that timed out.
func transient(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status == http.StatusTooEarly
}

// adminFailure classifies an unsuccessful response to a call made as the admin (Create or
// Revoke). 409 is retried because an API with idempotency keys answers it while a request
// with the same key is still in flight.
func (c compiledCall) adminFailure(res response) error {
	switch s := res.status; {
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		return fmt.Errorf("%w: %w", c.statusError(res, "check that the admin credential is valid and may "+c.name+" keys"), rotators.ErrPermissionDenied)
	case transient(s) || s == http.StatusConflict:
		return c.statusError(res, "")
	case s >= 200 && s <= 299:
		hint := "the status is not listed under " + c.name + ".success"
		if c.name == "create" {
			hint += "; a key may have been created that Keyturn cannot delete"
		}
		return fmt.Errorf("%w: %w", c.statusError(res, hint), rotators.ErrInvalidConfig)
	case s >= 300 && s <= 399:
		return fmt.Errorf("%w: %w", c.statusError(res, "redirects are not followed: write the final URL"), rotators.ErrInvalidConfig)
	case c.name == "revoke" && s == http.StatusNotFound:
		return fmt.Errorf("%w: %w", c.statusError(res, "if the API answers 404 for a deleted key, list 404 under revoke.gone"), rotators.ErrInvalidConfig)
	default:
		// 400, 422 and the rest: the request as configured cannot succeed.
		return fmt.Errorf("%w: %w", c.statusError(res, ""), rotators.ErrInvalidConfig)
	}
}

// redactURL returns scheme://host/path: queries can hold identifiers an operator would
// rather not see in an error, and never belong in one. Spans record the same.
func redactURL(u *url.URL) string { return httpspans.RedactURL(u, httpspans.SchemeHostPath) }

// unwrapURLError drops the *url.Error around a transport error: its message quotes the
// whole URL, query string included.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// scrub returns err unchanged unless its text holds one of the secrets; then the same
// error with them redacted, keeping only the rotators sentinels and context errors of
// its chain (secret.ScrubError).
func scrub(err error, secrets ...secret.Sensitive) error {
	values := make([]string, len(secrets))
	for i, s := range secrets {
		values[i] = s.Reveal()
	}
	return secret.ScrubError(err, values, rotators.ErrInvalidConfig, rotators.ErrPermissionDenied, rotators.ErrCredentialRejected, rotators.ErrCheckFailed)
}

// untrustedCertificate reports whether err is a failed verification of the server's
// certificate: an unknown authority, a name it does not cover, or an invalid chain.
func untrustedCertificate(err error) bool {
	var verify *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid)
}
