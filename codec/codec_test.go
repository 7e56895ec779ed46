package codec

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func TestRoundTripHidesContent(t *testing.T) {
	c, err := New(key(1))
	if err != nil {
		t.Fatal(err)
	}
	p, err := converter.GetDefaultDataConverter().ToPayload(map[string]string{"role": "app_b"})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := c.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(enc[0].GetData(), []byte("app_b")) || string(enc[0].GetMetadata()[MetadataEncoding]) != EncodingEncrypted {
		t.Fatal("encoded payload shows its content or lacks the encrypted marker")
	}
	if string(enc[0].GetMetadata()[MetadataKeyID]) != KeyID(key(1)) {
		t.Fatal("key ID missing from the metadata")
	}
	dec, err := c.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := converter.GetDefaultDataConverter().FromPayload(dec[0], &got); err != nil || got["role"] != "app_b" {
		t.Fatalf("round trip: %v %v", got, err)
	}
}

func TestKeyRotationAndUnknownKey(t *testing.T) {
	old, _ := New(key(1))
	p, _ := converter.GetDefaultDataConverter().ToPayload("x")
	enc, _ := old.Encode([]*commonpb.Payload{p})
	rotated, _ := New(key(2), key(1))
	if _, err := rotated.Decode(enc); err != nil {
		t.Fatalf("a codec holding the old key must decode old payloads: %v", err)
	}
	other, _ := New(key(3))
	if _, err := other.Decode(enc); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("want ErrUnknownKey, got %v", err)
	}
}

func TestTamperedPayloadRefused(t *testing.T) {
	c, _ := New(key(1))
	p, _ := converter.GetDefaultDataConverter().ToPayload("x")
	enc, _ := c.Encode([]*commonpb.Payload{p})
	enc[0].Data[len(enc[0].Data)-1] ^= 1
	if _, err := c.Decode(enc); err == nil {
		t.Fatal("a tampered payload must not decode")
	}
}

func TestPlainPayloadsPassThrough(t *testing.T) {
	c, _ := New(key(1))
	p, _ := converter.GetDefaultDataConverter().ToPayload("plain")
	dec, err := c.Decode([]*commonpb.Payload{p})
	if err != nil || dec[0] != p {
		t.Fatalf("plain payload: %v", err)
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "codec.key")
	if _, err := LoadKeyFile(path, false); err == nil {
		t.Fatal("a missing key file must be an error without create")
	}
	keys, err := LoadKeyFile(path, true)
	if err != nil || len(keys) != 1 {
		t.Fatalf("create: %v", err)
	}
	info, _ := os.Stat(path)
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o, want 600", info.Mode().Perm())
	}
	again, err := LoadKeyFile(path, true)
	if err != nil || !bytes.Equal(again[0], keys[0]) {
		t.Fatal("a second load must read the same key")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyFile(path, false); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable key must be refused with the fix: %v", err)
	}
	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("not-hex-secretish\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyFile(bad, false); err == nil || strings.Contains(err.Error(), "secretish") {
		t.Fatalf("a malformed key must be refused without echoing it: %v", err)
	}
}

func TestHandlerAllowsOnlyTheUIAndItsHosts(t *testing.T) {
	c, _ := New(key(1))
	srv := httptest.NewServer(nil)
	defer srv.Close()
	_, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	srv.Config.Handler = Handler(c, LoopbackAccess(port, "8233"))
	cases := map[string]struct {
		host, origin string
		status       int
		allow        string
	}{
		"UI as 127.0.0.1":     {"127.0.0.1:" + port, "http://127.0.0.1:8233", http.StatusOK, "http://127.0.0.1:8233"},
		"UI as localhost":     {"localhost:" + port, "http://localhost:8233", http.StatusOK, "http://localhost:8233"},
		"mixed names":         {"127.0.0.1:" + port, "http://localhost:8233", http.StatusOK, "http://localhost:8233"},
		"no browser":          {"127.0.0.1:" + port, "", http.StatusOK, ""},
		"other page":          {"127.0.0.1:" + port, "http://evil.example", http.StatusForbidden, ""},
		"other UI port":       {"127.0.0.1:" + port, "http://127.0.0.1:9999", http.StatusForbidden, ""},
		"DNS rebinding":       {"evil.example:" + port, "http://evil.example:" + port, http.StatusMisdirectedRequest, ""},
		"rebinding no origin": {"rebind.example:" + port, "", http.StatusMisdirectedRequest, ""},
	}
	for name, tc := range cases {
		req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/decode", nil)
		req.Host = tc.host
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", name, resp.StatusCode, tc.status)
		}
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.allow {
			t.Errorf("%s: allow-origin %q, want %q", name, got, tc.allow)
		}
	}
}
