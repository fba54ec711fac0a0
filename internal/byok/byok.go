// Package byok builds Azure Key Vault BYOK transfer blobs (the key_hsm of an import,
// KEYVAULT-NOTES §1.7.6) for `coffer byok`, on the machine that holds the key to move:
// the target key (PKCS #8 for RSA and EC, raw bytes for AES) is wrapped with a fresh
// ephemeral AES-256 key by RFC 5649 (keywrap), and the ephemeral key with the KEK's public
// key by RSA-OAEP — CKM_RSA_AES_KEY_WRAP. Coffer's server unwraps such blobs inside its HSM.
//
// Threat model: the target key is in clear in this process only; the blob is safe to send.
// The ephemeral key is cleared after use. Inputs (key files) are the user's own.
//
// This package must not import net/http or any server-side Coffer package (provider only
// for the shared names of the transfer's enc).
package byok

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"

	"github.com/coffer-kms/coffer/internal/keywrap"
	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/strictb64"
)

// Blob is the transfer blob's JSON.
type Blob struct {
	SchemaVersion string `json:"schema_version"`
	Header        Header `json:"header"`
	Ciphertext    string `json:"ciphertext"`
	Generator     string `json:"generator,omitempty"`
}

// Header names the KEK and the wrapping.
type Header struct {
	KID string `json:"kid"`
	Alg string `json:"alg"`
	Enc string `json:"enc"`
}

// Ciphertext returns RSA-OAEP(kek, ephemeral AES-256 key) ‖ RFC 5649(ephemeral, target)
// with hash h for OAEP and MGF1.
func Ciphertext(kek *rsa.PublicKey, h crypto.Hash, target []byte) ([]byte, error) {
	if kek == nil || kek.N.BitLen() < 2048 {
		return nil, errors.New("byok: the key-exchange key must be RSA with at least 2048 bits")
	}
	if !h.Available() {
		return nil, errors.New("byok: the OAEP hash is not available")
	}
	eph := make([]byte, 32)
	defer clear(eph)
	if _, err := rand.Read(eph); err != nil {
		return nil, fmt.Errorf("byok: no randomness: %w", err)
	}
	head, err := rsa.EncryptOAEP(h.New(), rand.Reader, kek, eph, nil)
	if err != nil {
		return nil, fmt.Errorf("byok: RSA-OAEP: %w", err)
	}
	tail, err := keywrap.WrapPad(eph, target)
	if err != nil {
		return nil, err
	}
	return append(head, tail...), nil
}

// Build returns the transfer blob JSON for target under kek (kid names the KEK in the vault;
// enc is CKM_RSA_AES_KEY_WRAP, RSA_AES_KEY_WRAP_256 or RSA_AES_KEY_WRAP_384).
func Build(kek *rsa.PublicKey, kid, enc string, target []byte, generator string) ([]byte, error) {
	h, ok := provider.TransferHash(enc)
	if !ok {
		return nil, fmt.Errorf("byok: enc %q: use CKM_RSA_AES_KEY_WRAP, RSA_AES_KEY_WRAP_256 or RSA_AES_KEY_WRAP_384", enc)
	}
	if kid == "" {
		return nil, errors.New("byok: the KEK's kid is needed (the vault checks the blob names its KEK)")
	}
	ct, err := Ciphertext(kek, h, target)
	if err != nil {
		return nil, err
	}
	return json.Marshal(Blob{SchemaVersion: "1.0.0", Header: Header{KID: kid, Alg: "dir", Enc: enc},
		Ciphertext: base64.RawURLEncoding.EncodeToString(ct), Generator: generator})
}

// TargetFromPEM reads a private key from PEM (PKCS #8, PKCS #1 or SEC 1) and returns it as
// PKCS #8 DER with its Key Vault kty (RSA-HSM or EC-HSM) and curve.
func TargetFromPEM(b []byte) (der []byte, kty, crv string, err error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, "", "", errors.New("byok: the key file is not PEM")
	}
	var key any
	switch blk.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, "", "", fmt.Errorf("byok: PEM block %q is not an unencrypted private key", blk.Type)
	}
	if err != nil {
		return nil, "", "", fmt.Errorf("byok: parsing the private key: %w", err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		kty = "RSA-HSM"
	case *ecdsa.PrivateKey:
		kty, crv = "EC-HSM", ecCurves[k.Curve.Params().BitSize]
		if crv == "" {
			return nil, "", "", errors.New("byok: the EC curve is not one Key Vault offers")
		}
	default:
		return nil, "", "", fmt.Errorf("byok: %T keys cannot be imported", key)
	}
	der, err = x509.MarshalPKCS8PrivateKey(key)
	return der, kty, crv, err
}

// KEKFromPEMOrJWK reads the KEK's public key: a PEM public key (SPKI or PKCS #1), or the
// JSON of a Key Vault key bundle or JWK as `az keyvault key show` or GetKey returns it; in
// the JSON case the kid is returned too.
func KEKFromPEMOrJWK(b []byte) (*rsa.PublicKey, string, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		var pub any
		var err error
		switch blk.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(blk.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(blk.Bytes)
		default:
			return nil, "", fmt.Errorf("byok: PEM block %q is not a public key", blk.Type)
		}
		if err != nil {
			return nil, "", fmt.Errorf("byok: parsing the KEK public key: %w", err)
		}
		rk, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, "", errors.New("byok: the KEK is not an RSA key")
		}
		return rk, "", nil
	}
	var doc struct {
		Key *jwk `json:"key"`
		jwk
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, "", errors.New("byok: the KEK file is neither PEM nor JSON")
	}
	j := doc.jwk
	if doc.Key != nil {
		j = *doc.Key
	}
	n, errN := strictb64.URL.DecodeString("n", j.N)
	e, errE := strictb64.URL.DecodeString("e", j.E)
	if err := errors.Join(errN, errE); err != nil {
		return nil, "", fmt.Errorf("byok: the KEK JSON: %w", err)
	}
	if len(n) == 0 || len(e) == 0 || len(e) > 4 {
		return nil, "", errors.New("byok: the KEK JSON has no RSA n and e (base64url)")
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, j.KID, nil
}

// jwk is the part of a JWK the KEK needs.
type jwk struct {
	KID string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// Open reverses Ciphertext with the private half of the wrapping key: what a TEE does with a
// key Coffer released to it (or a test with a transfer blob). It fails without saying why
// (wrong key, wrong hash, tampering), as an unwrap must.
func Open(priv *rsa.PrivateKey, h crypto.Hash, ciphertext []byte) ([]byte, error) {
	errOpen := errors.New("byok: the ciphertext cannot be unwrapped with this key")
	if priv == nil || !h.Available() {
		return nil, errOpen
	}
	n := priv.Size()
	if len(ciphertext) <= n {
		return nil, errOpen
	}
	eph, err := rsa.DecryptOAEP(h.New(), nil, priv, ciphertext[:n], nil)
	if err != nil || len(eph) != 32 {
		return nil, errOpen
	}
	defer clear(eph)
	out, err := keywrap.UnwrapPad(eph, ciphertext[n:])
	if err != nil {
		return nil, errOpen
	}
	return out, nil
}
