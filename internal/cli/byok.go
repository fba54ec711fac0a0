package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/coffer-kms/coffer/internal/byok"
)

// newBYOKCmd is `coffer byok`: it builds a BYOK transfer blob on the machine that holds the
// key, without talking to a server. The blob goes into an import as key.key_hsm.
func newBYOKCmd() *cobra.Command {
	var keyFile, kekFile, kid, enc, out string
	var aesKey, asJWK bool
	cmd := &cobra.Command{
		Use:   "byok --key FILE --kek FILE [--kek-kid KID] [--out FILE]",
		Short: "Build a BYOK transfer blob (key_hsm) for importing a key into an HSM-backed vault",
		Long: `Build an Azure Key Vault BYOK transfer blob (.byok) for a key you hold.

First create a key-exchange key (KEK) in the vault: an RSA-HSM key (2048, 3072 or 4096 bits)
with key_ops ["import"], and save its public key (a PEM public key, or the JSON of the key
as GetKey returns it, which also carries its kid). Then:

  coffer byok --key target.pem --kek kek.json --out target.byok
  coffer byok --key aes.bin --aes --kek kek.pem --kek-kid https://<vault>/keys/kek/<version>

--key is a PEM private key (PKCS #8, PKCS #1 or SEC 1: imported as RSA-HSM or EC-HSM) or,
with --aes, a raw 16, 24 or 32-byte AES key (imported as oct-HSM). The key is wrapped with a
fresh AES-256 key (RFC 5649), which is wrapped with the KEK by RSA-OAEP; only the KEK's
private key, inside the vault's HSM, can unwrap it.

Import the blob with the key type printed on stderr, e.g. with the REST API:
  PUT /keys/<name>?api-version=... {"key":{"kty":"RSA-HSM","key_hsm":"<base64url of the blob>"}}
An EC key also needs crv and its public point x, y in the request (printed on stderr); with
--jwk the output is that whole key, {"kty","crv","x","y","key_hsm"}, instead of the blob.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyFile == "" || kekFile == "" {
				return errors.New("--key and --kek are required")
			}
			keyBytes, err := os.ReadFile(keyFile)
			if err != nil {
				return err
			}
			defer clear(keyBytes)
			var target []byte
			kty, crv := "oct-HSM", ""
			if aesKey {
				if n := len(keyBytes); n != 16 && n != 24 && n != 32 {
					return fmt.Errorf("--aes: %s holds %d bytes: an AES key is 16, 24 or 32 bytes", keyFile, n)
				}
				target = keyBytes
			} else if target, kty, crv, err = byok.TargetFromPEM(keyBytes); err != nil {
				return err
			}
			defer clear(target)
			kekBytes, err := os.ReadFile(kekFile)
			if err != nil {
				return err
			}
			kek, fileKID, err := byok.KEKFromPEMOrJWK(kekBytes)
			if err != nil {
				return err
			}
			if kid == "" {
				kid = fileKID
			}
			if kid == "" {
				return errors.New("--kek-kid is required when --kek is a PEM file (the vault checks the blob names its KEK)")
			}
			blob, err := byok.Build(kek, kid, enc, target, "coffer byok "+Version)
			if err != nil {
				return err
			}
			ik, err := byok.NewImportKey(blob, kty, target)
			if err != nil {
				return err
			}
			if asJWK {
				if blob, err = json.Marshal(ik); err != nil {
					return err
				}
			}
			blob = append(blob, '\n')
			if out == "" {
				_, err = cmd.OutOrStdout().Write(blob)
			} else {
				err = os.WriteFile(out, blob, 0o600)
			}
			if err != nil {
				return err
			}
			if crv != "" {
				kty += " (crv " + crv + ")"
			}
			switch {
			case asJWK:
				fmt.Fprintf(cmd.ErrOrStderr(), "import it with this JSON as the request's key (kty %s)\n", kty)
			case ik.X != "":
				fmt.Fprintf(cmd.ErrOrStderr(), "import it as kty %s with key_hsm = base64url of the blob and the key's public point \"x\":%q,\"y\":%q (--jwk writes them all)\n", kty, ik.X, ik.Y)
			default:
				fmt.Fprintf(cmd.ErrOrStderr(), "import it as kty %s with key_hsm = base64url of the blob\n", kty)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyFile, "key", "", "the key to transfer: a PEM private key, or a raw AES key with --aes")
	f.BoolVar(&aesKey, "aes", false, "--key is a raw AES key (16, 24 or 32 bytes)")
	f.StringVar(&kekFile, "kek", "", "the KEK's public key: PEM, or the key's JSON from the vault")
	f.StringVar(&kid, "kek-kid", "", "the KEK's kid (taken from --kek when it is the key's JSON)")
	f.StringVar(&enc, "enc", "CKM_RSA_AES_KEY_WRAP", "CKM_RSA_AES_KEY_WRAP (OAEP SHA-1), RSA_AES_KEY_WRAP_256 or RSA_AES_KEY_WRAP_384")
	f.BoolVar(&asJWK, "jwk", false, "write the key of the import request (kty, crv, x, y, key_hsm) instead of the bare blob")
	f.StringVar(&out, "out", "", "write the blob here (mode 0600) instead of stdout")
	return cmd
}
