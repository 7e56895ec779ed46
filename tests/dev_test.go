package tests

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/demo"
	"github.com/keyturn/keyturn/internal/loopback"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/file"
)

// TestDevQuickStart follows the README's quick start: `keyturn dev` on its embedded
// defaults (server, Web UI, worker, file store, demo PostgreSQL), then `keyturn rotate
// demo/app --wait` from a second "terminal", then `keyturn get` and the Web UI.
func TestDevQuickStart(t *testing.T) {
	dir := t.TempDir()
	port, uiPort, codecPort := freePort(t), freePort(t), freePort(t)
	dev := startDev(t, "--home", filepath.Join(dir, ".keyturn"), "--temporal-port", strconv.Itoa(port), "--ui-port", strconv.Itoa(uiPort), "--codec-port", strconv.Itoa(codecPort))
	if !strings.Contains(dev.Out.String(), "keyturn --home "+filepath.Join(dir, ".keyturn")+" rotate demo/app --wait") {
		t.Fatalf("dev does not tell the user what to try:\n%s", dev.Out.String())
	}

	store := filepath.Join(dir, ".keyturn", "store")
	var out bytes.Buffer
	code := cli.Execute(context.Background(), []string{"rotate", "demo/app", "--wait", "--grace", "0s", "--home", filepath.Join(dir, ".keyturn")}, strings.NewReader(""), &out, &out)
	if code != 0 || !strings.Contains(out.String(), "outcome:  rotated") {
		t.Fatalf("rotate exited %d:\n%s\ndev output:\n%s", code, out.String(), dev.Out.String())
	}
	out.Reset()
	code = cli.Execute(context.Background(), []string{"get", "demo/app", "--store-dir", store}, strings.NewReader(""), &out, &out)
	if code != 0 || !strings.Contains(out.String(), "role: app_a") {
		t.Fatalf("get exited %d:\n%s", code, out.String())
	}

	// The example certificate from the local CA rotates too.
	out.Reset()
	code = cli.Execute(context.Background(), []string{"rotate", "demo/cert", "--wait", "--grace", "0s", "--home", filepath.Join(dir, ".keyturn")}, strings.NewReader(""), &out, &out)
	if code != 0 || !strings.Contains(out.String(), "outcome:  rotated") {
		t.Fatalf("rotate demo/cert exited %d:\n%s\ndev output:\n%s", code, out.String(), dev.Out.String())
	}

	resp, err := http.Get("http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(uiPort)) + "/api/v1/namespaces/default/workflows?query=KeyturnSecretID%3D%27demo%2Fapp%27")
	if err != nil {
		t.Fatalf("Web UI: %v", err)
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(body.String(), "rotate/demo/app") {
		t.Fatalf("the Web UI does not list the rotation by KeyturnSecretID: %d\n%.500s", resp.StatusCode, body.String())
	}

	if code := dev.Stop(t); code != 0 {
		t.Fatalf("keyturn dev exited %d on Ctrl-C:\n%s", code, dev.Out.String())
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := loopback.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// TestDevCertificateOnly: with nothing but keyturn itself (no PostgreSQL), `keyturn dev`
// rotates its example certificate from the local CA twice; the first one is revoked in the
// CA's published CRL and the new one chains to the CA.
func TestDevCertificateOnly(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, ".keyturn")
	port, uiPort, codecPort := freePort(t), freePort(t), freePort(t)
	dev := startDev(t, "--no-demo-postgres", "--no-ui", "--home", state, "--temporal-port", strconv.Itoa(port), "--ui-port", strconv.Itoa(uiPort), "--codec-port", strconv.Itoa(codecPort))
	if !strings.Contains(dev.Out.String(), "keyturn --home "+state+" rotate demo/cert --wait") || strings.Contains(dev.Out.String(), "demo/app") {
		t.Fatalf("dev should offer the certificate alone:\n%s", dev.Out.String())
	}
	rotate := func() {
		t.Helper()
		var out bytes.Buffer
		code := cli.Execute(context.Background(), []string{"rotate", "demo/cert", "--wait", "--home", state, "--grace", "0s"}, strings.NewReader(""), &out, &out)
		if code != 0 || !strings.Contains(out.String(), "outcome:  rotated") {
			t.Fatalf("rotate demo/cert exited %d:\n%s\ndev output:\n%s", code, out.String(), dev.Out.String())
		}
	}
	rotate()
	store, err := file.Open(filepath.Join(state, "store"))
	if err != nil {
		t.Fatal(err)
	}
	first, firstM, err := store.Read(context.Background(), "demo/cert", secret.StageCurrent)
	if err != nil {
		t.Fatal(err)
	}
	rotate()
	_, caM, err := store.Read(context.Background(), demo.CAID, secret.StageCurrent)
	if err != nil {
		t.Fatal(err)
	}
	_, m, err := store.Read(context.Background(), "demo/cert", secret.StageCurrent)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := []byte(caM.Get("certificate").Reveal())
	handshake(t, m, caPEM, "demo.localhost")
	crl, err := os.ReadFile(filepath.Join(state, "localca", "dev-ca.crl"))
	if err != nil {
		t.Fatalf("the dev CA published no CRL: %v", err)
	}
	if block, _ := pem.Decode(crl); block != nil {
		crl = block.Bytes
	}
	list, err := x509.ParseRevocationList(crl)
	if err != nil {
		t.Fatal(err)
	}
	if !revokedIn(list, parseCert(t, []byte(firstM.Get("certificate").Reveal())).SerialNumber) {
		t.Fatalf("version %d's certificate is not in the dev CA's CRL", first.Number)
	}
	dev.Stop(t)
}
