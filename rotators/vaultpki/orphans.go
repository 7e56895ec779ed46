package vaultpki

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/certs"
)

// How far before MintRequest.Since a certificate's NotBefore may lie and still count as
// signed during the rotation. Vault backdates NotBefore by the role's not_before_duration,
// 30 seconds unless the role says otherwise, and Since comes from the Temporal server's
// clock, not Vault's: orphanMargin absorbs skew between the two. A role with a longer
// not_before_duration makes certificates look older than they are, and an orphan of such
// a role is only found through the heartbeat's hint (docs/kinds/vaultpki.md).
const (
	vaultBackdate = 30 * time.Second
	orphanMargin  = 5 * time.Second
)

// seenCert is what the orphan scan needs to know of one certificate Vault stores. A
// certificate never changes and a revocation is never undone, so it is cached for the
// life of the Rotator: each scan reads only the certificates issued since the last one.
type seenCert struct {
	notBefore time.Time
	cn        string
	dnsNames  []string
	isCA      bool
	revoked   bool
}

// certCache holds the certificates a Rotator has read, by serial in Vault's form.
type certCache struct {
	mu    sync.Mutex
	certs map[string]seenCert
}

func (c *certCache) get(serial string) (seenCert, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sc, ok := c.certs[serial]
	return sc, ok
}

func (c *certCache) put(serial string, sc seenCert) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.certs == nil {
		c.certs = map[string]seenCert{}
	}
	c.certs[serial] = sc
}

// revoked notes that the certificate is revoked now.
func (c *certCache) revoked(serial string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sc, ok := c.certs[serial]; ok {
		sc.revoked = true
		c.certs[serial] = sc
	}
}

// orphanSerials returns the serials of the certificates an interrupted Mint of this
// version had Vault sign and the store never got: those req.Abandoned names, and, when
// req.Since is known, every certificate on the mount that is not revoked, not a CA, not
// held by a version in req.Known, carries this request's common name and DNS names, and
// has a NotBefore no earlier than Since less Vault's backdating and orphanMargin.
//
// Vault keeps no field of its own for the version token that a default role lets a CSR
// set (a URI SAN or a subject serialNumber need allowed_uri_sans or
// allowed_serial_numbers), so names and time are what tell this rotation's certificates
// apart: another issuer of the same names on the same mount during the rotation would be
// taken for an orphan too.
func (r *Rotator) orphanSerials(ctx context.Context, req rotators.MintRequest) ([]string, error) {
	known := func(serial string) bool {
		return slices.ContainsFunc(req.Known, func(md map[string]string) bool { return certs.SameSerial(serial, md[certs.MetadataSerial]) })
	}
	var out []string
	add := func(serial string) {
		if !known(serial) && !slices.ContainsFunc(out, func(s string) bool { return certs.SameSerial(s, serial) }) {
			out = append(out, serial)
		}
	}
	for _, md := range req.Abandoned {
		if s := md[certs.MetadataSerial]; s != "" {
			add(s)
		}
	}
	if req.Since.IsZero() {
		return out, nil
	}
	serials, err := r.listCerts(ctx)
	if err != nil {
		return nil, err
	}
	from := req.Since.Add(-vaultBackdate - orphanMargin)
	for _, serial := range serials {
		sc, err := r.seen(ctx, serial)
		if err != nil {
			return nil, err
		}
		if sc.isCA || sc.revoked || sc.notBefore.Before(from) || sc.cn != r.cfg.Request.CommonName ||
			!req.Until.IsZero() && sc.notBefore.After(req.Until.Add(orphanMargin)) {
			continue
		}
		if !hasAll(sc.dnsNames, r.cfg.Request.DNSNames) {
			continue
		}
		add(serial)
	}
	return out, nil
}

// revokeOrphans revokes the certificates orphanSerials finds and returns the handles
// (serials) of those it revoked. Mint runs it before it signs, Sweep on its own, so both
// find the same certificates.
func (r *Rotator) revokeOrphans(ctx context.Context, req rotators.MintRequest) ([]map[string]string, error) {
	orphans, err := r.orphanSerials(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("find the certificates of an interrupted attempt: %w", err)
	}
	var removed []map[string]string
	for _, serial := range orphans {
		if err := r.revokeSerial(ctx, serial); err != nil {
			return removed, fmt.Errorf("revoke abandoned certificate %s: %w", serial, err)
		}
		r.cache.revoked(serial)
		if n, err := certs.ParseSerial(serial); err == nil {
			// Vault lists serials with dashes; the metadata form has colons.
			serial = certs.FormatSerial(n)
		}
		removed = append(removed, map[string]string{certs.MetadataSerial: serial})
	}
	return removed, nil
}

// Sweep revokes the certificates a Mint for req.Token had Vault sign and the store never
// got, found as Mint finds them (see orphanSerials): with req.Since, every certificate of
// this request's names on the mount, not revoked, unknown to req.Known and signed since
// the rotation began; without it, only those req.Abandoned names. The rollback of a
// Create that gave up after Vault signed calls it. A certificate revoked already is not
// found, so a second Sweep revokes and reports nothing.
func (r *Rotator) Sweep(ctx context.Context, req rotators.MintRequest) ([]map[string]string, error) {
	removed, err := r.revokeOrphans(ctx, req)
	if err != nil {
		return removed, fmt.Errorf("sweep: %w", err)
	}
	return removed, nil
}

// listCerts lists the serials of every certificate the mount stores (LIST <mount>/certs).
func (r *Rotator) listCerts(ctx context.Context) ([]string, error) {
	path := r.cfg.Mount + "/certs"
	sec, err := r.client.Logical().ListWithContext(ctx, path)
	if err != nil {
		return nil, r.explain(err, "list certificates", path, capList, "")
	}
	if sec == nil || sec.Data == nil {
		return nil, nil
	}
	keys, _ := sec.Data["keys"].([]any)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if s, ok := k.(string); ok && s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// seen returns what the scan needs of one certificate, from the cache or from Vault
// (GET <mount>/cert/<serial>). A cached certificate may have been revoked since it was
// read; revoking it again is harmless, so it is not read again.
func (r *Rotator) seen(ctx context.Context, serial string) (seenCert, error) {
	if sc, ok := r.cache.get(serial); ok {
		return sc, nil
	}
	path := r.cfg.Mount + "/cert/" + serial
	sec, err := r.client.Logical().ReadWithContext(ctx, path)
	if err != nil {
		return seenCert{}, r.explain(err, "read certificate", path, capRead, "")
	}
	if sec == nil || sec.Data == nil {
		// Tidied away between the list and the read: it has expired.
		return seenCert{revoked: true}, nil
	}
	pemText, _ := sec.Data["certificate"].(string)
	parsed, err := certs.ParseCertificates(pemText)
	if err != nil {
		return seenCert{}, fmt.Errorf("read certificate (%s at %s): %w", path, r.addr, err)
	}
	c := parsed[0]
	sc := seenCert{
		notBefore: c.NotBefore, cn: c.Subject.CommonName, dnsNames: c.DNSNames,
		isCA: c.IsCA, revoked: intField(sec.Data["revocation_time"]) != 0,
	}
	r.cache.put(serial, sc)
	return sc, nil
}

// hasAll reports whether have holds every name in want.
func hasAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
