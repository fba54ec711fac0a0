package cli

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/coffer-kms/coffer/internal/sdblob"
)

// newHSMSecurityDomainCmd is `coffer hsm sd`: the custodians' side of a managed HSM pool's
// security domain. Like `coffer byok` it runs offline, on the custodians' machines, and
// writes the request bodies the pool's security-domain endpoints take (docs/HSM.md).
func newHSMSecurityDomainCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sd",
		Short: "Build security-domain download and upload requests for a managed HSM pool (offline)",
	}
	var certs []string
	var quorum int
	var out string
	download := &cobra.Command{
		Use:   "download --cert FILE --cert FILE --cert FILE [--quorum 2] [--out FILE]",
		Short: "Write the body of POST /securitydomain/download from 3-10 custodian public keys",
		Long: `Write the body of POST /securitydomain/download (CertificateInfoObject) from the
custodians' public keys: PEM certificates, PEM public keys, or JWKs. The pool answers with
its security domain (202, {"value": ...}); keep that answer: it is the only copy of the
shares, each readable only with one custodian's private key, and --quorum of them are needed
to restore the domain into a new pool.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var jwks []sdblob.JWK
			for _, f := range certs {
				j, err := readCustodianKey(f)
				if err != nil {
					return fmt.Errorf("--cert %s: %w", f, err)
				}
				jwks = append(jwks, j)
			}
			if len(jwks) < sdblob.MinCustodians || len(jwks) > sdblob.MaxCustodians {
				return fmt.Errorf("%d --cert given: a security domain needs 3 to 10 custodian keys", len(jwks))
			}
			if quorum < sdblob.MinQuorum || quorum > len(jwks) {
				return fmt.Errorf("--quorum %d: it must be from 2 to the number of --cert (%d)", quorum, len(jwks))
			}
			body, err := json.Marshal(map[string]any{"certificates": jwks, "required": quorum})
			if err != nil {
				return err
			}
			return writeOut(cmd.OutOrStdout(), out, append(body, '\n'))
		},
	}
	download.Flags().StringArrayVar(&certs, "cert", nil, "a custodian's public key: PEM certificate, PEM public key or JWK (3-10 times)")
	download.Flags().IntVar(&quorum, "quorum", 2, "how many custodians are needed to restore the domain")
	download.Flags().StringVar(&out, "out", "", "write the request body here instead of stdout")

	var sdFile, tkFile string
	var keys []string
	upload := &cobra.Command{
		Use:   "upload --security-domain FILE --transfer-key FILE --key FILE --key FILE [--out FILE]",
		Short: "Write the body of POST /securitydomain/upload from a quorum of custodians' private keys",
		Long: `Write the body of POST /securitydomain/upload: each custodian's share of the security
domain is decrypted with their private key (--key, PEM RSA) and encrypted again to the new
pool's transfer key (--transfer-key: the answer of GET /securitydomain/upload, or its
transfer_key JWK). --security-domain is the download's answer ({"value": ...}) or the blob.
The decrypted shares exist only in this process's memory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			blob, err := readSecurityDomain(sdFile)
			if err != nil {
				return fmt.Errorf("--security-domain %s: %w", sdFile, err)
			}
			b, err := sdblob.ParseBlob(blob)
			if err != nil {
				return fmt.Errorf("--security-domain %s: %w", sdFile, err)
			}
			tk, err := readTransferKey(tkFile)
			if err != nil {
				return fmt.Errorf("--transfer-key %s: %w", tkFile, err)
			}
			if len(keys) < b.Required {
				return fmt.Errorf("%d --key given: this security domain needs %d custodians (its quorum)", len(keys), b.Required)
			}
			var shares [][]byte
			defer func() {
				for _, s := range shares {
					clear(s)
				}
			}()
			for _, f := range keys {
				priv, err := readRSAPrivateKey(f)
				if err != nil {
					return fmt.Errorf("--key %s: %w", f, err)
				}
				s, err := sdblob.DecryptShare(b, priv)
				if err != nil {
					return fmt.Errorf("--key %s: %w", f, err)
				}
				shares = append(shares, s)
			}
			up, err := sdblob.BuildUpload(blob, tk, shares)
			if err != nil {
				return err
			}
			body, err := json.Marshal(map[string]string{"value": up})
			if err != nil {
				return err
			}
			return writeOut(cmd.OutOrStdout(), out, append(body, '\n'))
		},
	}
	uf := upload.Flags()
	uf.StringVar(&sdFile, "security-domain", "", "the security domain the download returned")
	uf.StringVar(&tkFile, "transfer-key", "", "the new pool's transfer key (GET /securitydomain/upload)")
	uf.StringArrayVar(&keys, "key", nil, "a custodian's PEM RSA private key (a quorum of them)")
	uf.StringVar(&out, "out", "", "write the request body here instead of stdout")
	cmd.AddCommand(download, upload)
	return cmd
}

func writeOut(stdout io.Writer, path string, b []byte) error {
	if path == "" {
		_, err := stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// readCustodianKey reads a PEM certificate, PEM public key or JWK.
func readCustodianKey(path string) (sdblob.JWK, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return sdblob.JWK{}, err
	}
	if blk, _ := pem.Decode(b); blk != nil {
		switch blk.Type {
		case "CERTIFICATE":
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return sdblob.JWK{}, err
			}
			pub, ok := cert.PublicKey.(*rsa.PublicKey)
			if !ok {
				return sdblob.JWK{}, errors.New("the certificate's key is not RSA")
			}
			j := sdblob.PublicJWK(pub)
			j.X5c = []string{base64.StdEncoding.EncodeToString(blk.Bytes)}
			j.KeyOps, j.Alg = nil, ""
			return j, checkJWK(j)
		case "PUBLIC KEY":
			k, err := x509.ParsePKIXPublicKey(blk.Bytes)
			if err != nil {
				return sdblob.JWK{}, err
			}
			pub, ok := k.(*rsa.PublicKey)
			if !ok {
				return sdblob.JWK{}, errors.New("the public key is not RSA")
			}
			j := sdblob.PublicJWK(pub)
			j.KeyOps, j.Alg = nil, ""
			return j, checkJWK(j)
		}
		return sdblob.JWK{}, fmt.Errorf("PEM block %q: want CERTIFICATE or PUBLIC KEY", blk.Type)
	}
	var j sdblob.JWK
	if err := json.Unmarshal(b, &j); err != nil {
		return sdblob.JWK{}, errors.New("neither PEM nor a JWK")
	}
	return j, checkJWK(j)
}

func checkJWK(j sdblob.JWK) error {
	_, err := j.PublicKey()
	return err
}

// readSecurityDomain reads a download answer ({"value": blob}) or the blob itself.
func readSecurityDomain(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var wrapped struct {
		Value string `json:"value"`
	}
	if json.Unmarshal(b, &wrapped) == nil && wrapped.Value != "" {
		return wrapped.Value, nil
	}
	return string(bytes.TrimSpace(b)), nil
}

// readTransferKey reads a transfer-key answer ({"transfer_key": JWK}) or the JWK.
func readTransferKey(path string) (*rsa.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var wrapped struct {
		TransferKey *sdblob.JWK `json:"transfer_key"`
	}
	if err := json.Unmarshal(b, &wrapped); err != nil {
		return nil, errors.New("not JSON")
	}
	j := wrapped.TransferKey
	if j == nil {
		j = new(sdblob.JWK)
		if err := json.Unmarshal(b, j); err != nil {
			return nil, errors.New("not a JWK")
		}
	}
	return j.PublicKey()
}

// readRSAPrivateKey reads a PEM RSA private key (PKCS #8 or PKCS #1).
func readRSAPrivateKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	defer clear(blk.Bytes)
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, errors.New("not a PKCS #8 or PKCS #1 private key")
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an RSA private key")
	}
	return rk, nil
}
