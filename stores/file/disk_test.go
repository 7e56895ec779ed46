package file

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/filelock"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

func TestPlaintextNeverReachesDisk(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	canaries := []string{"canary-password-7f3a9c", "canary-pending-52be01", "canary-key-e4d8a6"}
	if _, err := s.Put(t.Context(), "dev/app", secret.Material{
		"password":    secret.NewSensitive(canaries[0]),
		"private_key": secret.NewSensitive(canaries[2]),
	}, nil); err != nil {
		t.Fatalf("Put: %v", err)
	}
	stage(t, s, "dev/app", "v2", pw(canaries[1]))

	files := 0
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		files++
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, c := range canaries {
			for _, form := range []string{c, base64.StdEncoding.EncodeToString([]byte(c)), fmt.Sprintf("%x", c)} {
				if strings.Contains(string(data), form) {
					t.Errorf("%s holds material in the clear", path)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk store: %v", err)
	}
	if files < 2 {
		t.Fatalf("walked %d files, want the key and a document at least", files)
	}
}

// editDocument rewrites a secret's file through a function on its decoded form, as an
// attacker or a careless operator with write access, but without the key, might.
func editDocument(t *testing.T, dir string, id secret.ID, edit func(d *document)) {
	t.Helper()
	d := readDocument(t, dir, id)
	edit(d)
	if err := saveDocument(filepath.Join(dir, secretsDirName), d); err != nil {
		t.Fatalf("save edited document: %v", err)
	}
}

// editAndResign edits a secret's file and signs it again with s's key, so the edit
// passes the document MAC and only the material's own binding is left to catch it:
// the two layers are tested apart.
func editAndResign(t *testing.T, s *Store, dir string, id secret.ID, edit func(d *document)) {
	t.Helper()
	editDocument(t, dir, id, func(d *document) {
		edit(d)
		s.sealer.sign(d)
	})
}

func TestBlobMovedToAnotherVersionFailsToDecrypt(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	const id = secret.ID("dev/app")
	for _, p := range []string{"old", "new"} {
		if _, err := s.Put(t.Context(), id, pw(p), nil); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	// Give current the previous version's blob: an attempt to roll a password back
	// behind the store's back.
	move := func(d *document) {
		cur, prev := d.holder(secret.StageCurrent), d.holder(secret.StagePrevious)
		cur.Nonce, cur.Ciphertext = prev.Nonce, prev.Ciphertext
	}
	original, err := os.ReadFile(filepath.Join(dir, secretsDirName, "dev%2Fapp.json"))
	if err != nil {
		t.Fatal(err)
	}
	editDocument(t, dir, id, move)
	if _, _, err := s.Read(t.Context(), id, secret.StageCurrent); !errors.Is(err, ErrTampered) {
		t.Fatalf("Read of a moved blob: %v, want ErrTampered", err)
	}
	if err := os.WriteFile(filepath.Join(dir, secretsDirName, "dev%2Fapp.json"), original, 0o600); err != nil {
		t.Fatal(err)
	}
	editAndResign(t, s, dir, id, move)
	_, _, err = s.Read(t.Context(), id, secret.StageCurrent)
	if !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Read of a moved blob: %v, want ErrDecrypt", err)
	}
	if _, _, err := s.Read(t.Context(), id, secret.StagePrevious); err != nil {
		t.Fatalf("the untouched version no longer reads: %v", err)
	}
}

func TestBlobMovedToAnotherSecretFailsToDecrypt(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	donor, _ := s.Put(t.Context(), "dev/donor", pw("donor"), nil)
	stage(t, s, "dev/victim", donor.Token, pw("victim"))
	blob := readDocument(t, dir, "dev/donor").Versions[0]
	editAndResign(t, s, dir, "dev/victim", func(d *document) {
		d.Versions[0].Nonce, d.Versions[0].Ciphertext = blob.Nonce, blob.Ciphertext
	})
	if _, _, err := s.ReadVersion(t.Context(), "dev/victim", donor.Token); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Read of a blob from another secret: %v, want ErrDecrypt", err)
	}
}

func TestTwoStoresOnOneDirectoryLoseNothing(t *testing.T) {
	dir := t.TempDir()
	// A worker and a CLI: two Stores with separate mutexes, so only the flock keeps
	// their read-modify-write cycles apart.
	both := []*Store{openTest(t, dir), openTest(t, dir)}
	const (
		goroutines = 8
		perG       = 6
		shared     = secret.ID("dev/shared")
	)
	var (
		mu      sync.Mutex
		numbers []int
		wg      sync.WaitGroup
	)
	errs := make(chan error, goroutines*perG*2)
	for g := range goroutines {
		s := both[g%2]
		wg.Go(func() {
			for i := range perG {
				token := secret.VersionToken(fmt.Sprintf("g%d-%d", g, i))
				v, err := s.StagePending(t.Context(), stores.StageRequest{SecretID: shared, Token: token, Material: pw(string(token))})
				if err != nil {
					errs <- err
					continue
				}
				mu.Lock()
				numbers = append(numbers, v.Number)
				mu.Unlock()
				if _, err := s.Put(t.Context(), secret.ID(fmt.Sprintf("dev/own-%d", g)), pw(string(token)), nil); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent write: %v", err)
	}

	// A lost update would hand one number to two versions.
	slices.Sort(numbers)
	for i, n := range numbers {
		if n != i+1 {
			t.Fatalf("staged versions got numbers %v, want 1..%d each once", numbers, goroutines*perG)
		}
	}
	for _, s := range both {
		v, _, err := s.Read(t.Context(), shared, secret.StagePending)
		if err != nil || v.Number != goroutines*perG {
			t.Fatalf("pending is number %d (err %v), want the last staged, %d", v.Number, err, goroutines*perG)
		}
		for g := range goroutines {
			vs, err := s.ListVersions(t.Context(), secret.ID(fmt.Sprintf("dev/own-%d", g)))
			if err != nil || len(vs) != 2 || vs[1].Number != perG {
				t.Fatalf("dev/own-%d has %d versions, last %+v (err %v)", g, len(vs), vs, err)
			}
		}
	}
}

func TestWaitForTheLockHonoursTheContext(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	unlock, err := filelock.Lock(t.Context(), filepath.Join(dir, lockFileName))
	if err != nil {
		t.Fatalf("take lock: %v", err)
	}
	defer unlock()

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = s.StagePending(ctx, stores.StageRequest{SecretID: "dev/app", Token: "v1", Material: pw("p")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("StagePending while another holds the lock: %v, want DeadlineExceeded", err)
	}
	// Readers never wait for writers.
	if _, err := s.ListVersions(t.Context(), "dev/app"); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("ListVersions while locked: %v", err)
	}
}

func TestCorruptDocumentIsAnError(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	stage(t, s, "dev/app", "v1", pw("p"))
	path := filepath.Join(dir, secretsDirName, "dev%2Fapp.json")
	for name, content := range map[string]string{
		"truncated":      `{"format": 2, "secret_id": "dev/app", "versions": [`,
		"future format":  `{"format": 3, "secret_id": "dev/app", "next_number": 2, "versions": []}`,
		"other secret":   `{"format": 2, "secret_id": "dev/other", "next_number": 2, "versions": []}`,
		"unknown stages": `{"format": 2, "secret_id": "dev/app", "next_number": 2, "versions": [{"token": "v1", "stages": ["latest"]}]}`,
		"no MAC":         `{"format": 2, "secret_id": "dev/app", "next_number": 2, "versions": []}`,
		"format 1":       `{"format": 1, "secret_id": "dev/app", "next_number": 2, "versions": []}`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatalf("write: %v", err)
			}
			if _, err := s.ListVersions(t.Context(), "dev/app"); err == nil || errors.Is(err, stores.ErrNotFound) {
				t.Fatalf("ListVersions of a %s document: %v", name, err)
			}
			if _, err := s.StagePending(t.Context(), stores.StageRequest{SecretID: "dev/app", Token: "v2", Material: pw("p")}); err == nil {
				t.Fatalf("StagePending over a %s document succeeded", name)
			}
		})
	}
}
