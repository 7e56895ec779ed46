package devserver

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
)

// webUI is the Temporal Web UI serving one frontend.
type webUI struct {
	server *uiserver.Server
	url    string
}

// startUI serves the Web UI on host:port for the frontend at frontendAddr and
// returns once it answers its health check.
//
// The UI server binds inside its blocking Start and, if the bind fails, logs
// at Fatal level, which exits the process. Start checked that the port was
// free a moment ago; that is the best available, since the UI server takes no
// listener from outside.
func startUI(ctx context.Context, host string, port int, frontendAddr, namespace, codecEndpoint string) (*webUI, error) {
	uiHost := host
	if strings.Contains(host, ":") {
		uiHost = "[" + host + "]" // the UI server formats host:port with %s:%d
	}
	srv := uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{
		Host:                uiHost,
		Port:                port,
		TemporalGRPCAddress: frontendAddr,
		EnableUI:            true,
		DefaultNamespace:    namespace,
		// The UI is plain HTTP on loopback; a Secure CSRF cookie would never
		// be sent back and every action in the UI would fail.
		CORS:     uiconfig.CORS{CookieInsecure: true},
		HideLogs: true,
		// The browser sends payloads here to decrypt them; empty shows them as stored.
		Codec: uiconfig.Codec{Endpoint: codecEndpoint},
	}))
	ui := &webUI{server: srv, url: "http://" + hostPort(dialHost(host), port)}

	go func() { _ = srv.Start() }()

	if err := waitHTTP(ctx, ui.url+"/healthz"); err != nil {
		srv.Stop()
		return nil, fmt.Errorf("web UI on %s: %w", ui.url, err)
	}
	return ui, nil
}

// stop closes the UI's listener and connections.
func (u *webUI) stop() {
	u.server.Stop()
}

// waitHTTP polls url until it answers 200 or ctx ends.
func waitHTTP(ctx context.Context, url string) error {
	httpClient := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := httpClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("health check answered %s", resp.Status)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last attempt: %v)", ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
