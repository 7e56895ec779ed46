package localca

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/certs"
	"github.com/keyturn/keyturn/secret"
)

// issuedSuffix names the CA's issuance log: CRLFile + ".issued".
const issuedSuffix = ".issued"

// issued is one line of the issuance log: a serial the CA reserved for a certificate,
// and the version token that asked for it. Neither is secret.
type issued struct {
	Serial string    `json:"serial"`
	Token  string    `json:"token"`
	At     time.Time `json:"at"`
}

// issuedPath is where the issuance log of this CA lives, next to its CRL.
func (r *Rotator) issuedPath() string { return r.crlPath + issuedSuffix }

// readIssued returns the serials the log records for token. A line that does not parse
// is the torn end of a write a crash interrupted: the certificate it was for was never
// signed (signing comes after the line is synced), so it is skipped.
func (r *Rotator) readIssued(token secret.VersionToken) ([]*big.Int, error) {
	f, err := os.Open(r.issuedPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the issuance log: %w", err)
	}
	defer f.Close()
	var out []*big.Int
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		var e issued
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Token != string(token) {
			continue
		}
		if n, err := certs.ParseSerial(e.Serial); err == nil {
			out = append(out, n)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read the issuance log: %w", err)
	}
	return out, nil
}

// recordIssued appends serial and token to the log and syncs it, so that the serial is
// on disk before any certificate carries it. The caller holds the CRL lock. If the log
// ends in a torn line, a newline comes first so the new line stays whole.
func (r *Rotator) recordIssued(serial *big.Int, token secret.VersionToken) error {
	line, err := json.Marshal(issued{Serial: certs.FormatSerial(serial), Token: string(token), At: r.now().UTC()})
	if err != nil {
		return fmt.Errorf("record the serial: %w", err)
	}
	path := r.issuedPath()
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("record the serial: %w", err)
	}
	defer f.Close()
	if torn, err := endsTorn(f); err != nil {
		return fmt.Errorf("record the serial: %w", err)
	} else if torn {
		line = append([]byte{'\n'}, line...)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("record the serial: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("record the serial: %w", err)
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		// A new file's name must survive a crash too.
		if d, err := os.Open(filepath.Dir(path)); err == nil {
			_ = d.Sync()
			_ = d.Close()
		}
	}
	return nil
}

// endsTorn reports whether f is not empty and does not end in a newline.
func endsTorn(f *os.File) (bool, error) {
	info, err := f.Stat()
	if err != nil || info.Size() == 0 {
		return false, err
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, info.Size()-1); err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	return !bytes.Equal(last, []byte{'\n'}), nil
}

// orphanSerials returns the serials a killed Mint of this version left: those the log
// records for req.Token and those req.Abandoned names, less those a version in req.Known
// holds (the store has their key).
func (r *Rotator) orphanSerials(req rotators.MintRequest) ([]*big.Int, error) {
	logged, err := r.readIssued(req.Token)
	if err != nil {
		return nil, err
	}
	for _, md := range req.Abandoned {
		if s := md[certs.MetadataSerial]; s != "" {
			n, err := certs.ParseSerial(s)
			if err != nil {
				return nil, fmt.Errorf("abandoned certificate: %w: %w", rotators.ErrInvalidConfig, err)
			}
			logged = append(logged, n)
		}
	}
	var out []*big.Int
	for _, n := range logged {
		if !knownSerial(req.Known, n) && !containsSerial(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// revokeOrphansLocked puts the serials orphanSerials finds on the CRL and returns the
// handles of those this call added. The caller holds the CA's lock. Mint runs it before
// it reserves a serial, Sweep on its own, so both find the same certificates.
func (r *Rotator) revokeOrphansLocked(req rotators.MintRequest) ([]map[string]string, error) {
	orphans, err := r.orphanSerials(req)
	if err != nil {
		return nil, err
	}
	added, err := r.revokeLocked(orphans)
	if err != nil {
		return nil, fmt.Errorf("revoke abandoned certificates: %w", err)
	}
	removed := make([]map[string]string, 0, len(added))
	for _, n := range added {
		removed = append(removed, map[string]string{certs.MetadataSerial: certs.FormatSerial(n)})
	}
	return removed, nil
}

func knownSerial(known []map[string]string, n *big.Int) bool {
	for _, md := range known {
		if k, err := certs.ParseSerial(md[certs.MetadataSerial]); err == nil && k.Cmp(n) == 0 {
			return true
		}
	}
	return false
}

func containsSerial(list []*big.Int, n *big.Int) bool {
	for _, m := range list {
		if m.Cmp(n) == 0 {
			return true
		}
	}
	return false
}
