package vaultkv

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// ledgerPrefix starts every custom-metadata key this store owns on a consumer path:
// "keyturn.v7" describes KV version 7. Other keys are left alone.
const ledgerPrefix = "keyturn.v"

// stagingFormat marks a staging document this package wrote.
const stagingFormat = "1"

// Vault's limits on KV v2 custom metadata (vault-plugin-secrets-kv path_metadata.go).
const maxCustomMetadataValue = 512

// fromPending is the promote source of a pending version; a rollback names the consumer
// KV version to copy instead ("kv:5").
const fromPending = "pending"

// record is what the ledger says about one KV version of a consumer path: the Keyturn
// version it holds. It is stored as compact JSON under ledgerPrefix+<kv version>.
type record struct {
	Token    secret.VersionToken `json:"t"`
	Number   int                 `json:"n"`
	Created  int64               `json:"c"` // Unix milliseconds
	Metadata map[string]string   `json:"m,omitempty"`
}

func (r record) encode() (string, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("encode ledger record: %w", err)
	}
	return string(b), nil
}

func decodeRecord(s string) (record, error) {
	var r record
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return r, fmt.Errorf("decode ledger record: %w", err)
	}
	if r.Token == "" || r.Number < 1 {
		return r, fmt.Errorf("decode ledger record: no token or number")
	}
	return r, nil
}

func (r record) version(id secret.ID, stage secret.Stage) secret.Version {
	v := secret.Version{
		SecretID:  id,
		Token:     r.Token,
		Number:    r.Number,
		Stages:    []secret.Stage{stage},
		CreatedAt: time.UnixMilli(r.Created).UTC(),
	}
	if len(r.Metadata) > 0 {
		v.Metadata = maps.Clone(r.Metadata)
	}
	return v
}

// stagingDoc is the data of the staging path's latest KV version. Every change to it is
// a check-and-set write, which is what serializes the writers of one secret.
type stagingDoc struct {
	Format string `json:"keyturn"`
	// Pending is the pending version, material included; nil when there is none.
	Pending *pendingEntry `json:"pending,omitempty"`
	// Promote is a promotion under way: claimed, maybe written to the consumer path, not
	// yet recorded in the ledger. Any writer that finds one finishes it first.
	Promote *promoteIntent `json:"promote,omitempty"`
}

// pendingEntry is a staged version. Material holds revealed values: it exists only
// between Vault and this package, and is never printed.
type pendingEntry struct {
	Token    secret.VersionToken `json:"token"`
	Record   string              `json:"record"` // encoded record, as the ledger will hold it
	Material map[string]string   `json:"material"`
}

// promoteIntent says: write From's data to the consumer path as KV version To, then
// record Record under To in the ledger.
type promoteIntent struct {
	Token  secret.VersionToken `json:"token"`
	To     int                 `json:"to"`
	From   string              `json:"from"`
	Record string              `json:"record"`
}

// fromKV is the promote source that copies consumer KV version n (a rollback).
func fromKV(n int) string { return "kv:" + strconv.Itoa(n) }

// kvSource returns the KV version a rollback intent copies.
func (p *promoteIntent) kvSource() (int, bool) {
	rest, ok := strings.CutPrefix(p.From, "kv:")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n > 0
}

// toData turns the document into KV data. Values stay strings and nested objects, which
// is how Vault shows them in its UI.
func (d stagingDoc) toData() (map[string]any, error) {
	d.Format = stagingFormat
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode staging document: %w", err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("encode staging document: %w", err)
	}
	return out, nil
}

func stagingFromData(data map[string]any) (stagingDoc, error) {
	var d stagingDoc
	if len(data) == 0 {
		return d, nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return d, fmt.Errorf("decode staging document: %w", err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		// The error names a JSON type problem, never a value.
		return stagingDoc{}, fmt.Errorf("decode staging document: %w", err)
	}
	if d.Format != stagingFormat {
		return stagingDoc{}, fmt.Errorf("staging path holds data keyturn did not write (format %q)", d.Format)
	}
	return d, nil
}

// kvVersion is what the consumer path's metadata says about one of its KV versions.
type kvVersion struct {
	deleted bool // soft-deleted or destroyed: no data to read
}

// state is one read of everything the store keeps for a secret.
type state struct {
	id      secret.ID
	path    string // consumer path under the mount
	staging string // staging path under the mount

	// kvCurrent is the consumer path's current KV version; 0 when it has none.
	kvCurrent  int
	kvVersions map[int]kvVersion
	// ledger holds the encoded records by KV version, from custom metadata.
	ledger map[int]string

	// stagingVersion is the staging path's current KV version; 0 when it has none.
	stagingVersion int
	doc            stagingDoc
}

// entry is one Keyturn version as the state shows it.
type entry struct {
	stage secret.Stage
	rec   record
	raw   string // encoded record
	kv    int    // consumer KV version holding it; 0 for pending
}

// view works out which versions hold which stage. A promotion whose consumer write has
// landed but whose ledger entry is not written yet counts as done, so readers see the
// consumer path as it is.
func (st *state) view() ([]entry, error) {
	ledger := maps.Clone(st.ledger)
	pending := st.doc.Pending
	if in := st.doc.Promote; in != nil && st.kvCurrent >= in.To {
		if _, ok := ledger[in.To]; !ok {
			ledger[in.To] = in.Record
		}
		if pending != nil && pending.Token == in.Token {
			pending = nil
		}
	}

	var out []entry
	if c := st.kvCurrent; c > 0 && st.live(c) && ledger[c] != "" {
		cur, err := decodeRecord(ledger[c])
		if err != nil {
			return nil, fmt.Errorf("ledger entry for KV version %d: %w", c, err)
		}
		out = append(out, entry{stage: secret.StageCurrent, rec: cur, raw: ledger[c], kv: c})
		// Previous is the KV version before current, when keyturn wrote it too.
		if p := c - 1; p > 0 && st.live(p) && ledger[p] != "" {
			prev, err := decodeRecord(ledger[p])
			if err != nil {
				return nil, fmt.Errorf("ledger entry for KV version %d: %w", p, err)
			}
			if prev.Token != cur.Token {
				out = append(out, entry{stage: secret.StagePrevious, rec: prev, raw: ledger[p], kv: p})
			}
		}
	}
	if pending != nil {
		rec, err := decodeRecord(pending.Record)
		if err != nil {
			return nil, fmt.Errorf("pending version: %w", err)
		}
		if !slices.ContainsFunc(out, func(e entry) bool { return e.rec.Token == rec.Token }) {
			out = append(out, entry{stage: secret.StagePending, rec: rec, raw: pending.Record})
		}
	}
	slices.SortFunc(out, func(a, b entry) int { return a.rec.Number - b.rec.Number })
	return out, nil
}

// live reports whether consumer KV version n still has data.
func (st *state) live(n int) bool {
	v, ok := st.kvVersions[n]
	return ok && !v.deleted
}

func find(entries []entry, pred func(entry) bool) (entry, bool) {
	i := slices.IndexFunc(entries, pred)
	if i < 0 {
		return entry{}, false
	}
	return entries[i], true
}

// ledgerKey is the custom-metadata key for consumer KV version n.
func ledgerKey(n int) string { return ledgerPrefix + strconv.Itoa(n) }

// parseLedger picks this store's entries out of custom metadata.
func parseLedger(custom map[string]any) map[int]string {
	out := map[int]string{}
	for k, v := range custom {
		rest, ok := strings.CutPrefix(k, ledgerPrefix)
		if !ok {
			continue
		}
		n, err := strconv.Atoi(rest)
		s, isString := v.(string)
		if err != nil || n < 1 || !isString {
			continue
		}
		out[n] = s
	}
	return out
}

// consumerData is what the consumer path holds for a version: its material and, for
// consumers that need them (a user name; for a database, the rest of AWS's structure for
// database credentials: engine, host, port, dbname), its non-secret metadata, the port
// as a JSON number (stores.ConsumerMetadataValue). The ledger keeps the metadata as text,
// so what Keyturn reads back is unchanged.
func consumerData(material, metadata map[string]string) map[string]any {
	out := make(map[string]any, len(material)+len(metadata))
	for k, v := range metadata {
		out[k] = stores.ConsumerMetadataValue(k, v)
	}
	for k, v := range material {
		out[k] = v
	}
	return out
}

// splitConsumerData takes the material back out of a consumer version's data: every
// field that is not one of the version's metadata keys.
func splitConsumerData(data map[string]any, metadata map[string]string) secret.Material {
	m := secret.Material{}
	for k, v := range data {
		if _, isMeta := metadata[k]; isMeta {
			continue
		}
		m[k] = secret.NewSensitive(dataString(v))
	}
	return m
}

// dataString renders a KV field as a string. Keyturn writes strings only; a field
// someone else wrote as a number or an object is kept in its JSON form.
func dataString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	}
}

// sameData reports whether two consumer data maps hold the same fields and values.
func sameData(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok || dataString(va) != dataString(vb) {
			return false
		}
	}
	return true
}
