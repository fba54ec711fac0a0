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

	"github.com/coffer-kms/coffer/internal/azsd"
	"github.com/coffer-kms/coffer/internal/sdblob"
)

// newHSMSecurityDomainCmd is `coffer hsm sd`: the custodians' side of a managed HSM pool's
// security domain. Like `coffer byok` it runs offline, on the custodians' machines, and
// writes the request bodies the pool's security-domain endpoints take (docs/HSM.md). The
// security domain is the Azure CLI's format: `az keyvault security-domain restore-blob` and
// `coffer hsm sd upload` are interchangeable.
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
		Short: "Write the body of POST /securitydomain/download from 3-10 custodian certificates",
		Long: `Write the body of POST /securitydomain/download (CertificateInfoObject) from the
custodians' certificates (PEM, or JWKs with x5c): the body ` + "`az keyvault security-domain download`" + `
sends. The pool answers with its security domain (202, {"value": ...}); keep that answer: it
is the only copy of the shares, each readable only with one custodian's private key, and
--quorum of them are needed to restore the domain into a new pool. A bare public key is not
enough: the Azure CLI finds a custodian's share by the SHA-256 of its certificate.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var jwks []sdblob.JWK
			for _, f := range certs {
				j, err := readCustodianCert(f)
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
	download.Flags().StringArrayVar(&certs, "cert", nil, "a custodian's certificate: PEM, or a JWK with x5c (3-10 times)")
	download.Flags().IntVar(&quorum, "quorum", 2, "how many custodians are needed to restore the domain")
	download.Flags().StringVar(&out, "out", "", "write the request body here instead of stdout")

	var sdFile, tkFile string
	var keys []string
	upload := &cobra.Command{
		Use:   "upload --security-domain FILE --transfer-key FILE --key FILE --key FILE [--out FILE]",
		Short: "Write the body of POST /securitydomain/upload from a quorum of custodians' private keys",
		Long: `Write the body of POST /securitydomain/upload ({"value": restore blob}): the quorum's
shares of the security domain are decrypted with their private keys (--key, PEM RSA),
combined, and the domain wrapped again to the new pool's exchange key (--transfer-key: the
answer of GET /securitydomain/upload, its transfer_key JWK, or the PEM certificate of
` + "`coffer hsm sd exchange-key`" + ` or ` + "`az keyvault security-domain init-recovery`" + `). This is
` + "`az keyvault security-domain restore-blob`" + `; either tool's output uploads. --security-domain is
the download's answer ({"value": ...}) or the security-domain file; files downloaded before
Coffer used the Azure format (coffer-sd/1) work too. The shares and the domain exist only in
this process's memory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sd, err := readSecurityDomain(sdFile)
			if err != nil {
				return fmt.Errorf("--security-domain %s: %w", sdFile, err)
			}
			pub, cert, err := readTransferKey(tkFile)
			if err != nil {
				return fmt.Errorf("--transfer-key %s: %w", tkFile, err)
			}
			var privs []*rsa.PrivateKey
			for _, f := range keys {
				priv, err := readRSAPrivateKey(f)
				if err != nil {
					return fmt.Errorf("--key %s: %w", f, err)
				}
				privs = append(privs, priv)
			}
			var up string
			if isV1SecurityDomain(sd) {
				up, err = uploadV1(sd, pub, privs)
			} else {
				up, err = restoreBlob(sd, cert, privs)
			}
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
	uf.StringVar(&tkFile, "transfer-key", "", "the new pool's transfer key (GET /securitydomain/upload) or its exchange-key PEM")
	uf.StringArrayVar(&keys, "key", nil, "a custodian's PEM RSA private key (a quorum of them)")
	uf.StringVar(&out, "out", "", "write the request body here instead of stdout")

	exchange := &cobra.Command{
		Use:   "exchange-key --transfer-key FILE [--out FILE]",
		Short: "Write the PEM certificate of a pool's transfer key, for az keyvault security-domain restore-blob --sd-exchange-key",
		Long: `Write the certificate of a new pool's transfer key (the answer of GET
/securitydomain/upload) as PEM: the exchange-key file that ` + "`az keyvault security-domain\ninit-recovery`" + ` writes and ` + "`az keyvault security-domain restore-blob --sd-exchange-key`" + ` reads.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, cert, err := readTransferKey(tkFile)
			if err != nil {
				return fmt.Errorf("--transfer-key %s: %w", tkFile, err)
			}
			if cert == nil {
				return fmt.Errorf("--transfer-key %s: the transfer key has no certificate (x5c): get it again from the pool", tkFile)
			}
			return writeOut(cmd.OutOrStdout(), out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
		},
	}
	exchange.Flags().StringVar(&tkFile, "transfer-key", "", "the new pool's transfer key (GET /securitydomain/upload)")
	exchange.Flags().StringVar(&out, "out", "", "write the PEM here instead of stdout")
	cmd.AddCommand(download, upload, exchange)
	return cmd
}

// restoreBlob is `az keyvault security-domain restore-blob` (azsd.Restore): every key is
// tried on every share, so the custodians' certificates are not needed.
func restoreBlob(sd string, exchange *x509.Certificate, privs []*rsa.PrivateKey) (string, error) {
	if exchange == nil {
		return "", errors.New("--transfer-key has no certificate (x5c): get the transfer key again from the pool")
	}
	f, err := azsd.ParseFile([]byte(sd))
	if err != nil {
		return "", fmt.Errorf("--security-domain: %w", err)
	}
	holders := make([]azsd.Holder, len(privs))
	for i, p := range privs {
		holders[i] = azsd.Holder{Key: p}
	}
	return azsd.Restore(f, holders, exchange)
}

// isV1SecurityDomain reports whether sd is a blob of Coffer's first format (coffer-sd/1).
func isV1SecurityDomain(sd string) bool {
	var peek struct {
		Format *string `json:"format"`
	}
	return json.Unmarshal([]byte(sd), &peek) == nil && peek.Format != nil
}

// uploadV1 makes the upload of a coffer-sd/1 blob: each share decrypted, then encrypted
// again to the transfer key.
func uploadV1(blob string, transfer *rsa.PublicKey, privs []*rsa.PrivateKey) (string, error) {
	b, err := sdblob.ParseBlob(blob)
	if err != nil {
		return "", fmt.Errorf("--security-domain: %w", err)
	}
	if len(privs) < b.Required {
		return "", fmt.Errorf("%d --key given: this security domain needs %d custodians (its quorum)", len(privs), b.Required)
	}
	var shares [][]byte
	defer func() {
		for _, s := range shares {
			clear(s)
		}
	}()
	for _, p := range privs {
		s, err := sdblob.DecryptShare(b, p)
		if err != nil {
			return "", err
		}
		shares = append(shares, s)
	}
	return sdblob.BuildUpload(blob, transfer, shares)
}

func writeOut(stdout io.Writer, path string, b []byte) error {
	if path == "" {
		_, err := stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// readCustodianCert reads a PEM certificate or a JWK with x5c.
func readCustodianCert(path string) (sdblob.JWK, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return sdblob.JWK{}, err
	}
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "CERTIFICATE" {
			return sdblob.JWK{}, fmt.Errorf("PEM block %q: want CERTIFICATE (the Azure CLI finds a custodian's share by its certificate)", blk.Type)
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return sdblob.JWK{}, err
		}
		pub, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return sdblob.JWK{}, errors.New("the certificate's key is not RSA")
		}
		// What az sends: n/e, x5c, the thumbprint, the algorithm.
		j := sdblob.PublicJWK(pub)
		j.Kid = ""
		j.X5c = []string{base64.StdEncoding.EncodeToString(blk.Bytes)}
		j.X5tS256 = azsd.CertThumbprint(blk.Bytes)
		j.KeyOps = []string{"verify", "encrypt", "wrapKey"}
		return j, checkJWK(j)
	}
	var j sdblob.JWK
	if err := json.Unmarshal(b, &j); err != nil {
		return sdblob.JWK{}, errors.New("neither a PEM certificate nor a JWK")
	}
	return j, checkJWK(j)
}

func checkJWK(j sdblob.JWK) error {
	if _, err := j.PublicKey(); err != nil {
		return err
	}
	_, err := j.CertThumbprint()
	return err
}

// readSecurityDomain reads a download answer ({"value": file}) or the file itself.
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

// readTransferKey reads a transfer key: the answer of GET /securitydomain/upload
// ({"transfer_key": JWK as JSON text, or as an object}), a bare JWK, or a PEM certificate
// (an exchange-key file). cert is nil for a JWK without x5c.
func readTransferKey(path string) (*rsa.PublicKey, *x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "CERTIFICATE" {
			return nil, nil, fmt.Errorf("PEM block %q: want CERTIFICATE", blk.Type)
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, nil, err
		}
		pub, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, nil, errors.New("the certificate's key is not RSA")
		}
		return pub, cert, nil
	}
	var wrapped struct {
		TransferKey json.RawMessage `json:"transfer_key"`
	}
	if err := json.Unmarshal(b, &wrapped); err != nil {
		return nil, nil, errors.New("neither JSON nor a PEM certificate")
	}
	raw := []byte(wrapped.TransferKey)
	var text string
	switch {
	case len(raw) == 0:
		raw = b // a bare JWK
	case json.Unmarshal(raw, &text) == nil:
		raw = []byte(text) // Key Vault's shape: the JWK as JSON text
	}
	var j sdblob.JWK
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, nil, errors.New("not a JWK")
	}
	pub, err := j.PublicKey()
	if err != nil {
		return nil, nil, err
	}
	if len(j.X5c) == 0 {
		return pub, nil, nil
	}
	cert, err := j.Certificate()
	return pub, cert, err
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
