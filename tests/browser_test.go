package tests

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/codec"
	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/harness/testdeps"
)

// browserReason is the rotation's --reason: it travels only inside the encrypted workflow
// input (the workflow ID, summary and search attributes all name demo/cert in the clear),
// so a page that shows it has had the payload decrypted by the codec server.
const browserReason = "browser-decode-check-5c1e"

// codecErrorBanner is what the Web UI (v2.55) shows above a workflow whose payloads it
// could not send to the codec server.
const codecErrorBanner = "Codec Server could not connect"

// TestBrowserWebUIDecodesPayloads opens the Web UI of `keyturn dev` in headless Chromium,
// once as http://127.0.0.1:<port> and once as http://localhost:<port>, on the history of a
// rotation of demo/cert, and checks that each shows the decrypted workflow input rather
// than the encrypted payload: the browser calls the codec server from the UI's origin, so
// this holds only if the codec server allows both origins (CORS, preflight included).
func TestBrowserWebUIDecodesPayloads(t *testing.T) {
	browser := chromium(t)
	dir := t.TempDir()
	state := filepath.Join(dir, ".keyturn")
	port, uiPort, codecPort := freePort(t), freePort(t), freePort(t)
	dev := startDev(t, "--no-demo-postgres", "--home", state, "--temporal-port", strconv.Itoa(port), "--ui-port", strconv.Itoa(uiPort), "--codec-port", strconv.Itoa(codecPort))

	var out bytes.Buffer
	code := cli.Execute(context.Background(), []string{"rotate", "demo/cert", "--wait", "--grace", "0s", "--reason", browserReason, "--home", state},
		strings.NewReader(""), &out, &out)
	if code != 0 || !strings.Contains(out.String(), "outcome:  rotated") {
		t.Fatalf("rotate demo/cert exited %d:\n%s\ndev output:\n%s", code, out.String(), dev.Out.String())
	}
	m := regexp.MustCompile(`\(workflow (\S+), run ([0-9a-f-]+)\)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("rotate printed no workflow and run:\n%s", out.String())
	}
	page := "/namespaces/default/workflows/" + url.PathEscape(m[1]) + "/" + m[2] + "/history"

	for _, host := range []string{"127.0.0.1", "localhost"} {
		t.Run(host, func(t *testing.T) {
			base := "http://" + net.JoinHostPort(host, strconv.Itoa(uiPort))
			shot := filepath.Join(t.TempDir(), "history.png")
			dom := browse(t, browser, base+page, shot)
			t.Logf("screenshot of %s%s: %s", base, page, shot)
			// Without the codec server the UI shows the ciphertext in base64 under this
			// banner (its own message); the encoding name shows in its JSON views.
			for _, failed := range []string{codecErrorBanner, codec.EncodingEncrypted} {
				if strings.Contains(dom, failed) {
					t.Errorf("the Web UI opened as %s says %q: the browser could not use the codec server", base, failed)
				}
			}
			if !strings.Contains(dom, browserReason) {
				t.Errorf("the Web UI opened as %s does not show the decrypted workflow input (no %q in the page):\n%.4000s", base, browserReason, visibleText(dom))
			}
		})
	}

	// What the browser relied on is refused to anyone else: a page reaching the codec
	// server under another name (DNS rebinding) or from another origin.
	codecURL := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(codecPort)) + "/decode"
	for _, c := range []struct{ name, host, origin string }{
		{"rebinding Host", "rebind.example:" + strconv.Itoa(codecPort), "http://rebind.example:" + strconv.Itoa(codecPort)},
		{"foreign origin", "", "http://evil.example"},
		{"UI origin on another port", "", "http://localhost:" + strconv.Itoa(port)},
	} {
		req, err := http.NewRequest(http.MethodPost, codecURL, strings.NewReader(`{"payloads":[]}`))
		if err != nil {
			t.Fatal(err)
		}
		if c.host != "" {
			req.Host = c.host
		}
		req.Header.Set("Origin", c.origin)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode < 400 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: the codec server answered %s (Access-Control-Allow-Origin %q), want a refusal",
				c.name, resp.Status, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
}

// chromium finds Debian's headless-capable Chromium: a skip with the reason outside CI, a
// failure under CI (where .ci/run installs it).
func chromium(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err == nil {
		return path
	}
	if testdeps.InCI() {
		t.Fatalf("chromium not found (.ci/run installs Debian's chromium package): %v", err)
	}
	t.Skipf("skipping: chromium not found (apt-get install chromium; set CI=true to make this a failure): %v", err)
	return ""
}

// browse loads page in a fresh headless Chromium, lets it run its scripts and fetches,
// saves a screenshot to shot and returns the DOM as it then stands.
func browse(t *testing.T, browser, page, shot string) string {
	t.Helper()
	run := func(action string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		// The flags that make Chromium usable as root on these machines: no sandbox, no
		// GPU, and none of its own connections out (the network is closed).
		cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
			"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--disable-dev-shm-usage", "--user-data-dir="+t.TempDir(), "--window-size=1400,1800",
			"--virtual-time-budget=15000", action, page)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %s %s: %v\n%s", action, page, err, stderr.String())
		}
		return stdout.Bytes()
	}
	_ = run("--screenshot=" + shot)
	if _, err := os.Stat(shot); err != nil {
		t.Errorf("chromium took no screenshot: %v", err)
	}
	return string(run("--dump-dom"))
}

// visibleText strips tags and scripts from dom so a failure shows what the page said.
func visibleText(dom string) string {
	dom = regexp.MustCompile(`(?s)<(script|style)\b.*?</(script|style)>`).ReplaceAllString(dom, " ")
	dom = regexp.MustCompile(`<[^>]*>`).ReplaceAllString(dom, " ")
	return strings.Join(strings.Fields(dom), " ")
}
