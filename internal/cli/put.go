package cli

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/internal/binding"
	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/rotators/redisacl"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores/file"
)

// maxPutSize caps what `keyturn put` accepts. Credentials, keys and certificate chains
// are a few KiB; anything bigger is almost certainly the wrong file, and the store keeps
// every version of a secret in one document.
const maxPutSize = 64 << 10

func newPutCmd(g *globals) *cobra.Command {
	var (
		field    string
		fromFile string
		asBase64 bool
		meta     map[string]string
	)
	cmd := &cobra.Command{
		Use:   "put <secret-id>",
		Short: "Write a value read from stdin or --from-file as the current version of a secret in the file store",
		Long: "Reads all of standard input (or the file given with --from-file) and stores it, encrypted, as\n" +
			"the current version of the secret. The bytes are kept exactly, with one exception: input that is\n" +
			"a single line loses its one trailing newline (\"\\n\" or \"\\r\\n\"), so a password piped from echo\n" +
			"is stored without it. Input of two lines or more, such as a PEM key or certificate, is kept byte\n" +
			"for byte, final newline included. The value must be UTF-8 text; binary input is refused unless\n" +
			"--base64 is given, which stores the standard base64 encoding of the bytes (consumers decode it).\n" +
			"Input over 64 KiB is refused. Nothing is written when the input is refused.\n\n" +
			"Use it to seed credentials the inventory references, e.g.:\n" +
			"  keyturn put admin/orders-db --field password < password.txt\n" +
			"  keyturn put admin/tls --field private_key --from-file key.pem\n" +
			"or, with -f, to record the credential a managed secret's consumers use now, so that the\n" +
			"first rotation revokes it after the grace period and has a version to roll back to:\n" +
			"  keyturn put prod/orders-db/app -f keyturn.yaml --meta role=app < current-password.txt",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := secret.ID(args[0])
			if err := id.Validate(); err != nil {
				return err
			}
			if field == "" {
				return fmt.Errorf("--field is empty: name the field the value is stored under, e.g. --field password")
			}
			path, err := g.storePath(id)
			if err != nil {
				return err
			}
			managedSecret, managed := g.managedSecret(id)
			kind := managedSecret.Kind
			if managed {
				// A managed secret's versions carry the handle its rotator needs later.
				key, what := binding.HandleKey(kind)
				if key != "" && meta[key] == "" {
					return fmt.Errorf("%s is a managed %s secret: pass --meta %s=<%s> so the credential can be revoked and restored later", id, kind, key, what)
				}
				if problem := binding.HandleProblem(managedSecret, meta[key]); problem != "" {
					return fmt.Errorf("%s: --meta %s: %s; nothing was stored", id, key, problem)
				}
				if (kind == inventory.KindPostgres || kind == inventory.KindRedis || kind == inventory.KindMariaDB) && meta["username"] == "" {
					meta["username"] = meta[key]
				}
				// The rotator reads the password from this field (both kinds name it
				// "password"); another field would break a rollback's re-apply.
				if (kind == inventory.KindRedis || kind == inventory.KindMariaDB) && field != redisacl.FieldPassword {
					return fmt.Errorf("%s is a managed %s secret: its password is stored under --field %s", id, kind, redisacl.FieldPassword)
				}
			}
			// Read and check the whole value before the store is opened: a refused
			// value must leave nothing behind, not even a new store.
			raw, source, err := readPutInput(cmd, fromFile)
			if err != nil {
				return err
			}
			defer clear(raw)
			value, err := putValue(raw, source, asBase64)
			if err != nil {
				return err
			}
			if value == "" {
				if fromFile != "" {
					return fmt.Errorf("%s is empty: nothing to store", source)
				}
				return fmt.Errorf("no value on stdin: pipe it in, e.g. `keyturn put %s < file`, or pass --from-file", id)
			}
			if managed && kind == inventory.KindRedis {
				// The rotator finds this password among the user's by its hash's prefix.
				meta[redisacl.MetadataPasswordID] = redisacl.PasswordID(value)
			}
			// The audit trail is opened first: a trail that cannot be written changes nothing.
			trail, err := g.auditLog(false)
			if err != nil {
				return err
			}
			defer func() { _ = trail.Sink.Close() }()
			store, err := file.Open(g.storeDir)
			if err != nil {
				return fmt.Errorf("open file store %s: %w", g.storeDir, err)
			}
			v, err := store.Put(cmd.Context(), path, secret.Material{field: secret.NewSensitive(value)}, meta)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stored %s version %d (field %s, %d bytes) in %s\n", path, v.Number, field, len(value), g.storeDir)
			rec := audit.Record{
				ID: audit.EventID("put", string(path), string(v.Token)), Time: time.Now(), Event: audit.EventPut,
				Actor: audit.Actor{Type: audit.ActorOperator, Name: whoami()}, SecretID: id, Kind: kind,
				VersionToken: v.Token, VersionNumber: v.Number, Handles: meta,
			}
			if _, err := trail.Append(cmd.Context(), rec); err != nil {
				return fmt.Errorf("version %d is stored, but its audit record was not written: %w", v.Number, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&field, "field", "password", "field name to store the value under")
	cmd.Flags().StringVar(&fromFile, "from-file", "", "read the value from this file instead of standard input")
	cmd.Flags().BoolVar(&asBase64, "base64", false, "store the input's standard base64 encoding (for binary values; consumers decode it)")
	cmd.Flags().StringToStringVar(&meta, "meta", map[string]string{}, "non-secret metadata, e.g. --meta role=app (required for managed secrets)")
	return cmd
}

// readPutInput reads the whole value from path, or from stdin when path is empty, and
// names where it came from for errors. It reads one byte past the cap to tell "exactly
// 64 KiB" from "more".
func readPutInput(cmd *cobra.Command, path string) ([]byte, string, error) {
	var (
		in     io.Reader
		source string
	)
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, "", fmt.Errorf("read value: %w", err)
		}
		defer f.Close()
		in, source = f, fmt.Sprintf("--from-file %q", path)
	} else {
		in, source = cmd.InOrStdin(), "stdin"
		if isTerminal(in) {
			fmt.Fprintln(cmd.ErrOrStderr(), "keyturn: reading the value from the terminal until end of input (Ctrl-D); it is echoed as you type, so prefer a pipe or --from-file")
		}
	}
	raw, err := io.ReadAll(io.LimitReader(in, maxPutSize+1))
	if err != nil {
		clear(raw)
		return nil, "", fmt.Errorf("read value from %s: %w", source, err)
	}
	if len(raw) > maxPutSize {
		clear(raw)
		return nil, "", fmt.Errorf("value from %s is larger than %d KiB: refused, nothing written (a credential is a few KiB; is it the right file?)", source, maxPutSize>>10)
	}
	return raw, source, nil
}

// putValue turns the bytes read into the value stored. Material fields are strings
// (they travel as JSON), so bytes that are not UTF-8 text are refused rather than
// mangled, unless asBase64 asks for them to be encoded. Only single-line input loses
// its one line ending: that is the `echo pw |` case, while a multi-line value such as a
// PEM must round-trip byte for byte.
func putValue(raw []byte, source string, asBase64 bool) (string, error) {
	if asBase64 {
		return base64.StdEncoding.EncodeToString(raw), nil
	}
	if !utf8.Valid(raw) || bytes.IndexByte(raw, 0) >= 0 {
		return "", fmt.Errorf("value from %s is binary (not UTF-8 text): refused, nothing written; pass --base64 to store it base64-encoded", source)
	}
	body := raw
	if bytes.HasSuffix(body, []byte("\n")) {
		body = body[:len(body)-1]
		body = bytes.TrimSuffix(body, []byte("\r"))
	}
	if bytes.IndexByte(body, '\n') >= 0 {
		// Several lines: keep them all, final newline included.
		return string(raw), nil
	}
	return string(body), nil
}

// isTerminal reports whether r is an interactive terminal, where reading to end of
// input needs a hint.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
