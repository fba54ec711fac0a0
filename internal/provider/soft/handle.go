package soft

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"

	"github.com/coffer-kms/coffer/internal/provider"
)

// The handle of a software key is this JSON document, version 1 (docs/FORMAT.md should
// list it with the barrier's formats):
//
//	{"v":1,"kty":"RSA","pkcs8":"<base64url PKCS #8 DER>"}
//	{"v":1,"kty":"EC","crv":"P-256","pkcs8":"<base64url PKCS #8 DER>"}   (P-256, P-384, P-521)
//	{"v":1,"kty":"EC","crv":"P-256K","d":"<base64url 32-byte scalar>"}    (secp256k1: x509 has no OID for it)
//
// It holds the private key in clear: the keys domain stores it only through the barrier,
// which seals it with AES-256-GCM bound to the record's path. A later format gets a new v;
// Load keeps reading the old ones.
const handleVersion = 1

type handleDoc struct {
	V     int              `json:"v"`
	Kty   provider.KeyType `json:"kty"`
	Crv   provider.Curve   `json:"crv,omitempty"`
	PKCS8 provider.B64     `json:"pkcs8,omitempty"`
	D     provider.B64     `json:"d,omitempty"`
	// Exportable marks a key secure key release may export (export.go); absent is false.
	Exportable bool `json:"exportable,omitempty"`
}

func marshalHandle(k *Key) ([]byte, error) {
	doc := handleDoc{V: handleVersion, Kty: k.kty, Exportable: k.exportable}
	var err error
	switch {
	case k.rsaPriv != nil:
		doc.PKCS8, err = x509.MarshalPKCS8PrivateKey(k.rsaPriv)
	case k.ecPriv != nil:
		doc.Crv = k.curve.crv
		doc.PKCS8, err = x509.MarshalPKCS8PrivateKey(k.ecPriv)
	default:
		doc.Crv = provider.P256K
		d := k.k1Priv.Key.Bytes()
		doc.D = d[:]
	}
	if err != nil {
		return nil, fmt.Errorf("soft: encoding the key handle failed")
	}
	return json.Marshal(doc)
}

// errHandle is the one error of a handle that cannot be loaded; it says nothing about the
// bytes (which hold a private key).
var errHandle = fmt.Errorf("%w: not a software key handle of a supported version, or corrupt", provider.ErrInvalidKey)

// parseHandle rebuilds a key from its handle and re-applies the key policy (sizes, exponent,
// curve), so a handle can never yield a key Generate or Import would have refused.
func parseHandle(h []byte) (*Key, error) {
	dec := json.NewDecoder(bytes.NewReader(h))
	dec.DisallowUnknownFields()
	var doc handleDoc
	if err := dec.Decode(&doc); err != nil || doc.V != handleVersion {
		return nil, errHandle
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errHandle // trailing data
	}
	k, err := keyFromDoc(&doc)
	if err != nil {
		return nil, err
	}
	return markExportable(k, doc.Exportable)
}

// keyFromDoc rebuilds the key of a decoded handle document.
func keyFromDoc(doc *handleDoc) (*Key, error) {
	switch doc.Kty {
	case provider.RSA:
		if doc.Crv != "" || len(doc.D) > 0 {
			return nil, errHandle
		}
		priv, err := x509.ParsePKCS8PrivateKey(doc.PKCS8)
		rk, ok := priv.(*rsa.PrivateKey)
		if err != nil || !ok || !rsaSizes[rk.N.BitLen()] || rk.E != rsaExponent || len(rk.Primes) != 2 {
			return nil, errHandle
		}
		return newRSAKey(rk)
	case provider.EC:
		c, ok := curves[doc.Crv]
		if !ok {
			return nil, errHandle
		}
		if c.nist == nil {
			if len(doc.PKCS8) > 0 {
				return nil, errHandle
			}
			k, err := k1KeyFromScalar(doc.D)
			if err != nil {
				return nil, errHandle
			}
			return k, nil
		}
		if len(doc.D) > 0 {
			return nil, errHandle
		}
		priv, err := x509.ParsePKCS8PrivateKey(doc.PKCS8)
		ek, ok := priv.(*ecdsa.PrivateKey)
		if err != nil || !ok || ek.Curve != c.nist {
			return nil, errHandle
		}
		return newECKey(ek, c)
	}
	return nil, errHandle
}
