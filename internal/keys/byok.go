package keys

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"strings"

	"github.com/coffer-kms/coffer/internal/provider"
)

// BYOK (KEYVAULT-NOTES §1.7.6). A key-exchange key (KEK) is an RSA-HSM key created in the
// vault with key_ops ["import"], which permits nothing else. A key is imported with
// key.key_hsm holding the transfer blob
//
//	{"schema_version":"1.0.0","header":{"kid":"<KEK kid>","alg":"dir","enc":"CKM_RSA_AES_KEY_WRAP"},
//	 "ciphertext":"<base64url>","generator":"..."}
//
// whose ciphertext the HSM provider unwraps inside the token (provider.TransferImporter).
// Problems with the KEK (not in this vault, not a KEK, disabled, outside nbf–exp) are
// BadParameter with their own messages: the caller can read the KEK anyway. Every problem
// of the ciphertext is one uniform BadParameter (provider.ErrTransfer), so the import is no
// padding or format oracle.

// transferBlob is the JSON of key_hsm; members other than these are ignored.
type transferBlob struct {
	SchemaVersion string `json:"schema_version"`
	Header        *struct {
		KID string `json:"kid"`
		Alg string `json:"alg"`
		Enc string `json:"enc"`
	} `json:"header"`
	Ciphertext provider.B64 `json:"ciphertext"`
}

// maxTransferCiphertext bounds the ciphertext: a 4096-bit OAEP block and a wrapped
// PKCS #8 RSA-4096 key are well under it.
const maxTransferCiphertext = 16 << 10

// parseTransfer parses key_hsm. Errors never repeat its content.
func parseTransfer(b []byte) (*transferBlob, crypto.Hash, error) {
	var blob transferBlob
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&blob); err != nil || dec.More() || blob.Header == nil {
		return nil, 0, badParam("key_hsm is not a BYOK transfer blob: want base64url of {\"schema_version\",\"header\":{\"kid\",\"alg\",\"enc\"},\"ciphertext\"}")
	}
	if blob.SchemaVersion != "1.0.0" {
		return nil, 0, badParam("key_hsm schema_version %.20q is not supported: use 1.0.0", blob.SchemaVersion)
	}
	if blob.Header.Alg != "dir" {
		return nil, 0, badParam("key_hsm header.alg %.20q is not supported: use dir", blob.Header.Alg)
	}
	h, ok := provider.TransferHash(blob.Header.Enc)
	if !ok {
		return nil, 0, badParam("key_hsm header.enc %.40q is not supported: use CKM_RSA_AES_KEY_WRAP, RSA_AES_KEY_WRAP_256 or RSA_AES_KEY_WRAP_384", blob.Header.Enc)
	}
	if len(blob.Ciphertext) == 0 || len(blob.Ciphertext) > maxTransferCiphertext {
		return nil, 0, badParam("key_hsm ciphertext is empty or longer than %d bytes", maxTransferCiphertext)
	}
	return &blob, h, nil
}

// kekName splits a KEK kid into name and version; it must name a key of this vault.
func (sc scope) kekName(kid string) (string, string, error) {
	prefix := sc.base + "/keys/"
	if len(kid) <= len(prefix) || !strings.EqualFold(kid[:len(prefix)], prefix) {
		return "", "", badParam("key_hsm header.kid must name a key-exchange key of this vault (%s...)", prefix)
	}
	name, version, _ := strings.Cut(kid[len(prefix):], "/")
	return name, version, nil
}

// checkKEKOps enforces the KEK rule on a version's key_ops: "import" is only for an
// RSA-HSM key created in the HSM, and then it is the only operation.
func checkKEKOps(kty provider.KeyType, ops []string, created bool) error {
	if !contains(ops, OpImport) {
		return nil
	}
	if kty != provider.RSAHSM || !created || len(ops) != 1 {
		return badParam("key operation import marks a key-exchange key: an RSA-HSM key created in the HSM whose only operation is import")
	}
	return nil
}

// checkKEKUpdate refuses key_ops changes that would make a KEK do anything else, or make a
// key a KEK after its creation.
func checkKEKUpdate(ver *versionRecord, ops []string) error {
	if ops == nil || contains(ver.KeyOps, OpImport) == contains(ops, OpImport) && (!contains(ops, OpImport) || len(ops) == 1) {
		return nil
	}
	return badParam("the key_ops of a key-exchange key stay [import], and no other key can get import")
}

// importTransfer unwraps a BYOK transfer with its KEK inside the HSM provider.
func (s *Service) importTransfer(ctx context.Context, sc scope, jwk *provider.JWK) (provider.Key, error) {
	imp, ok := s.prov.(provider.TransferImporter)
	if !ok || !s.hsmPools {
		return nil, errorf(ErrKeyTypeNotSupported, "Invalid kty value: %.20s (BYOK imports need a PKCS#11 token configured)", jwk.Kty)
	}
	if len(jwk.N)+len(jwk.E) > 0 || jwk.Private() || jwk.Kty != provider.ECHSM && len(jwk.X)+len(jwk.Y) > 0 {
		return nil, badParam("a key with key_hsm carries no other key material (an EC-HSM key only its public x and y)")
	}
	if jwk.Kty == provider.ECHSM && (jwk.Crv == "" || (len(jwk.X) == 0) != (len(jwk.Y) == 0)) {
		return nil, badParam("an EC-HSM key with key_hsm needs crv, and either both coordinates x, y of its public point or neither")
	}
	blob, h, err := parseTransfer(jwk.T)
	if err != nil {
		return nil, err
	}
	name, version, err := sc.kekName(blob.Header.KID)
	if err != nil {
		return nil, err
	}
	_, kek, err := s.resolve(ctx, sc, name, version)
	if errors.Is(err, ErrKeyNotFound) || errors.Is(err, ErrBadParameter) {
		return nil, badParam("key_hsm header.kid names no key of this vault")
	}
	if err != nil {
		return nil, err
	}
	now := s.clock().Unix()
	switch {
	case kek.Kty != provider.RSAHSM || len(kek.KeyOps) != 1 || kek.KeyOps[0] != OpImport:
		return nil, badParam("key_hsm header.kid is not a key-exchange key: create an RSA-HSM key with key_ops [\"import\"]")
	case !kek.Enabled:
		return nil, badParam("the key-exchange key is disabled")
	case kek.NotBefore != nil && now < *kek.NotBefore, kek.Expires != nil && now >= *kek.Expires:
		return nil, badParam("the key-exchange key is not valid now (nbf/exp)")
	}
	return imp.ImportTransfer(ctx, provider.Transfer{KEK: kek.Handle, Hash: h, Ciphertext: blob.Ciphertext, Type: jwk.Kty, Curve: jwk.Crv, X: jwk.X, Y: jwk.Y, SecurityDomain: sc.pool()})
}
