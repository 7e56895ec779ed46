package vaulterr

import (
	"errors"
	"net/url"
	"syscall"
	"testing"

	"github.com/hashicorp/vault/api"
)

// TestReasonLeavesOutUnstructuredBodies: Vault's own reasons are quoted; a body it could
// not structure (a proxy's page, anything) never is.
func TestReasonLeavesOutUnstructuredBodies(t *testing.T) {
	vault := &api.ResponseError{StatusCode: 403, Errors: []string{"permission denied"}}
	proxy := &api.ResponseError{StatusCode: 502, RawError: true, Errors: []string{"<html>password=hunter2</html>"}}
	if Message(vault) != "permission denied" || Detail(vault) != ": permission denied" {
		t.Fatalf("Vault's reason: %q %q", Message(vault), Detail(vault))
	}
	if Message(proxy) != "status 502" || Detail(proxy) != "" {
		t.Fatalf("an unstructured body must be left out: %q %q", Message(proxy), Detail(proxy))
	}
}

// TestErrorUnwrapsToKindsAndCause: the operator's message is one line, and errors.Is and
// errors.As still see the classification and the client's error.
func TestErrorUnwrapsToKindsAndCause(t *testing.T) {
	sentinel := errors.New("unavailable")
	re := &api.ResponseError{StatusCode: 503}
	err := error(&Error{Msg: "vault at x answered 503", Kinds: []error{sentinel}, Cause: re})
	var got *api.ResponseError
	if !errors.Is(err, sentinel) || !errors.As(err, &got) || got != re || err.Error() != "vault at x answered 503" {
		t.Fatalf("unwrap: %v", err)
	}
	if Response(err) != re || Response(errors.New("other")) != nil {
		t.Fatal("Response must find the client's error in the chain, and only it")
	}
}

// TestRootCauseDropsTheURL: the request URL (which may carry a path the operator did not
// ask to print twice) is stripped down to the network error.
func TestRootCauseDropsTheURL(t *testing.T) {
	err := &url.Error{Op: "Get", URL: "https://vault:8200/v1/secret/data/prod/app", Err: syscall.ECONNREFUSED}
	if got := RootCause(err); got != syscall.ECONNREFUSED {
		t.Fatalf("RootCause = %v", got)
	}
	if _, ok := TLS("https://vault:8200", err); ok {
		t.Fatal("a refused connection is not a TLS problem")
	}
}
