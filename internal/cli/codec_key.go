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
	}
	cmd.AddCommand(newCodecKeyNewCmd(), newCodecKeyRotateCmd())
	return cmd
}

func newCodecKeyNewCmd() *cobra.Command {
	var ifMissing bool
	cmd := &cobra.Command{
		Use:   "new FILE",
		Short: "Write a new key file holding one fresh key (mode 0600)",
		Long: "Writes FILE with one fresh AES-256 key, mode 0600, creating its directory (0700) when missing.\n" +
			"An existing FILE is never replaced: it is an error (exit 1), or with --if-missing it is kept and the\n" +
			"command succeeds, so a container can run it at every start. Give the workers, the CLI and the codec\n" +
			"server the same file (--codec-key-file, KEYTURN_CODEC_KEY_FILE).",
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
				fmt.Fprintf(cmd.OutOrStdout(), "%s exists: kept it unchanged\n", path)
			default:
				return fmt.Errorf("%s exists: nothing changed; to add a key run `keyturn codec-key rotate %s`", path, path)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&ifMissing, "if-missing", false, "succeed without a change when FILE exists")
	return cmd
}

func newCodecKeyRotateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate FILE",
		Short: "Put a fresh key first in a key file and keep the older keys for decrypting",
		Long: "Adds a fresh key at the top of FILE, above every key already there, and keeps those: the new key\n" +
			"encrypts from now on, the older ones still decrypt the payloads they wrote. FILE is replaced in one\n" +
			"rename with mode 0600. The codec server reads the file again by itself; workers and commands read it\n" +
			"when they start, so restart the workers to encrypt with the new key. Remove an old key only when no\n" +
			"workflow history within the namespace's retention was written with it.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := codec.RotateKeyFile(args[0])
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%s does not exist: nothing changed; make one with `keyturn codec-key new %s`", args[0], args[0])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: a new key is first; %d older key(s) kept for decrypting. Restart the workers to encrypt with it.\n", args[0], n-1)
			return nil
		},
	}
}
