package demo

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyturn/keyturn/rotators/localca"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/stores/file"
)

// CAID is where `keyturn dev` keeps its local CA in the file store: fields certificate
// and private_key.
const CAID secret.ID = "localca/dev-ca"

// caValidity is how long the dev CA is valid; far longer than any certificate it signs.
const caValidity = 5 * 365 * 24 * time.Hour

// EnsureCA creates the dev CA in the store unless it is there already, so restarting
// `keyturn dev` keeps the CA that earlier certificates chain to.
func EnsureCA(ctx context.Context, store *file.Store) (created bool, err error) {
	_, _, err = store.Read(ctx, CAID, secret.StageCurrent)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, stores.ErrNotFound) {
		return false, fmt.Errorf("read the dev CA: %w", err)
	}
	certPEM, keyPEM, err := localca.NewCA("Keyturn dev CA", caValidity)
	if err != nil {
		return false, fmt.Errorf("make the dev CA: %w", err)
	}
	material := secret.Material{"certificate": secret.NewSensitive(string(certPEM)), "private_key": keyPEM}
	if _, err := store.Put(ctx, CAID, material, map[string]string{"purpose": "keyturn dev local CA"}); err != nil {
		return false, fmt.Errorf("store the dev CA: %w", err)
	}
	return true, nil
}

// CertSecret is a localca entry of a generated inventory.
type CertSecret struct {
	ID secret.ID
	// CommonName is the certificate's name; localhost names keep the demo's TLS handshake
	// local.
	CommonName string
	AltNames   []string
	TTL        string
	Grace      string
	// CRLFile is where the dev CA publishes its revocation list.
	CRLFile string
	// Store is the store type; empty means the default (file).
	Store string
}

// DemoCert is the certificate `keyturn dev` rotates out of the box, its CA publishing
// its revocation list to crl.
func DemoCert(crl, storeType string) CertSecret {
	if abs, err := filepath.Abs(crl); err == nil {
		crl = abs // the worker may run from another directory than the one that wrote it
	}
	return CertSecret{
		ID: "demo/cert", CommonName: "demo.localhost", AltNames: []string{"localhost"},
		TTL: "24h", Grace: "10s", CRLFile: crl, Store: storeType,
	}
}

// CertInventory renders inventory entries for certificates from the dev CA, to follow
// Inventory's header and entries.
func CertInventory(certs []CertSecret) string {
	var b strings.Builder
	for _, c := range certs {
		fmt.Fprintf(&b, "  - id: %s\n    kind: localca\n    grace: %s\n    tags: [demo, tls]\n", c.ID, c.Grace)
		if c.Store != "" {
			fmt.Fprintf(&b, "    store: {type: %s}\n", c.Store)
		}
		b.WriteString("    localca:\n")
		fmt.Fprintf(&b, "      ca_cert: %q\n      ca_key: %q\n", "file:"+string(CAID)+"#certificate", "file:"+string(CAID)+"#private_key")
		fmt.Fprintf(&b, "      crl_file: %q\n      common_name: %s\n", c.CRLFile, c.CommonName)
		if len(c.AltNames) > 0 {
			fmt.Fprintf(&b, "      alt_names: [%s]\n", strings.Join(c.AltNames, ", "))
		}
		fmt.Fprintf(&b, "      ip_sans: [127.0.0.1]\n      ttl: %s\n", c.TTL)
	}
	return b.String()
}
