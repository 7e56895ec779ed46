package cli

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/keyturn/keyturn/codec"
)

// newCodecKeyCmd makes and rotates payload key files, so an image without a shell (the
// distroless one) and an operator without openssl can do both.
func newCodecKeyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "codec-key",
		Short: "Create or rotate a payload encryption key file",
		Long: "A key file holds hex-encoded AES-256 keys, one per line: the first encrypts, every key decrypts.\n" +
			"Workers and commands read it when they start, the codec server whenever it changes. To rotate\n" +
			"with several processes: `add` (a new key second), restart every process that reads the file,\n" +
			"then `promote` (the new key first). `rotate` does both at once, for a single process.",
	}
	cmd.AddCommand(newCodecKeyNewCmd(), newCodecKeyEditCmd("rotate"), newCodecKeyEditCmd("add"), newCodecKeyEditCmd("promote"))
	return cmd
}

func newCodecKeyNewCmd() *cobra.Command {
	var ifMissing bool
	cmd := &cobra.Command{
		Use:   "new FILE",
		Short: "Write a new key file holding one fresh key (mode 0600)",
		Long: "Writes FILE with one fresh AES-256 key, mode 0600, creating its directory (0700) when missing.\n" +
			"An existing FILE is never replaced: it is an error (exit 1), or with --if-missing it is kept, after\n" +
			"checking that it loads, so a container can run it at every start. Give the workers, the CLI and the\n" +
			"codec server the same file (--codec-key-file, KEYTURN_CODEC_KEY_FILE).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			created, err := codec.CreateKeyFile(path)
			switch {
			case err != nil:
				return err
			case created:
				fmt.Fprintf(cmd.OutOrStdout(), "created %s with one key (mode 0600)\n", path)
			case ifMissing:
				keys, err := codec.LoadKeyFile(path, false)
				if err != nil {
					return fmt.Errorf("%s exists but does not load, so nothing can use it: %w", path, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s exists with %d key(s): kept it unchanged\n", path, len(keys))
			default:
				return fmt.Errorf("%s exists: nothing changed; to add a key run `keyturn codec-key add %s`", path, path)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&ifMissing, "if-missing", false, "succeed without a change when FILE exists and loads")
	return cmd
}

// codecKeyEdits are the changes to an existing key file, with what each is for and what
// to do next.
var codecKeyEdits = map[string]struct {
	short, long string
	do          func(string) (int, error)
	done        string // printf: path, keys; then the next step
}{
	"rotate": {
		short: "Put a fresh key first and keep the older keys for decrypting (one process)",
		long: "Adds a fresh key at the top of FILE: it encrypts from the next start of each process, and every older key\n" +
			"still decrypts. A process still running with the old file cannot decrypt what a restarted one writes,\n" +
			"so with several workers use `add`, restart them all, then `promote`.",
		do:   codec.RotateKeyFile,
		done: "%s: a new key is first (%d keys). Restart every worker and command that reads it; a process still running with the old file cannot decrypt what a restarted one writes.\n",
	},
	"add": {
		short: "Add a fresh key second: it decrypts, nothing encrypts with it yet",
		long: "Adds a fresh key right after the current one, with a comment marking it as not promoted yet. Processes\n" +
			"that read FILE learn to decrypt with it; nothing encrypts with it until `promote`. Restart every worker and command that reads FILE (the codec server\n" +
			"reads it by itself), then run `keyturn codec-key promote FILE`.",
		do:   codec.AddKeyFile,
		done: "%s: a new key is second (%d keys): it decrypts, nothing encrypts with it yet. Restart every worker that reads the file, then run `keyturn codec-key promote` on it.\n",
	},
	"promote": {
		short: "Make the second key (the one `add` put there) the one that encrypts",
		long: "Makes the key `add` put second (and marked) the first: it encrypts from each process's next start, the\n" +
			"previous one stays to decrypt. Run it once every process has loaded the file since `add`. Without a key\n" +
			"added and not yet promoted it changes nothing, so a second promote never brings an older key back.",
		do:   codec.PromoteKeyFile,
		done: "%s: the second key is now first (%d keys) and encrypts from each worker's next start; the previous one still decrypts.\n",
	},
}

func newCodecKeyEditCmd(name string) *cobra.Command {
	e := codecKeyEdits[name]
	return &cobra.Command{
		Use:   name + " FILE",
		Short: e.short,
		Long: e.long + "\n\nFILE (or the file a link names) is changed under a lock, written with its owner and mode 0600, and\n" +
			"replaced in one rename; a file others may read, or one that does not load, is refused unchanged.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := e.do(args[0])
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%s does not exist: nothing changed; make one with `keyturn codec-key new %s`", args[0], args[0])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), e.done, args[0], n)
			return nil
		},
	}
}
