package pkcs11

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	"github.com/coffer-kms/coffer/internal/provider"
)

// The handle of a token key is this JSON document, version 1 (docs/FORMAT.md should list
// it with the soft provider's):
//
//	{"v":1,"id":"<32 hex digits: CKA_ID>","kty":"RSA-HSM","size":2048,"pub":"<base64url SPKI DER>"}
//	{"v":1,"id":"<32 hex digits: CKA_ID>","kty":"EC-HSM","crv":"P-256","pub":"<base64url SPKI DER>"}
//	{"v":1,"id":"<32 hex digits: CKA_ID>","kty":"oct-HSM","size":256}
//
// "exportable": true (absent: false) marks a key made for secure key release: its object was
// created CKA_EXTRACTABLE=true (still CKA_SENSITIVE) and ExportWrapped may wrap it (export.go).
//
// It holds no private material: the private key stays in the token, found by CKA_ID (and
// labelled "coffer-<id>"). The public key is kept so Public, Verify, Encrypt and WrapKey
// need no token round trip. Load checks size/crv against pub and, for RSA, the token's
// CKA_MODULUS against pub. A later format gets a new v.
const handleVersion = 1

type handleDoc struct {
	V    int              `json:"v"`
	ID   string           `json:"id"`
	Kty  provider.KeyType `json:"kty"`
	Size int              `json:"size,omitempty"`
	Crv  provider.Curve   `json:"crv,omitempty"`
	Pub  provider.B64     `json:"pub,omitempty"`
	// Exportable marks a key secure key release may export (export.go).
	Exportable bool `json:"exportable,omitempty"`
	// Tok is the label of the token holding the object (token.go); absent in handles made
	// before per-pool tokens, which mean the installation's default token.
	Tok string `json:"tok,omitempty"`
}

func marshalHandle(pub *publicKey, id []byte, exportable bool) []byte {
	doc := handleDoc{V: handleVersion, ID: hex.EncodeToString(id), Kty: pub.kty, Exportable: exportable}
	var err error
	if pub.isRSA() {
		doc.Size = pub.bits
		doc.Pub, err = x509.MarshalPKIXPublicKey(pub.rsa)
	} else {
		doc.Crv = pub.curve.crv
		doc.Pub, err = x509.MarshalPKIXPublicKey(pub.ec)
	}
	if err != nil {
		panic("pkcs11: cannot encode a validated public key") // unreachable
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic("pkcs11: cannot encode a handle") // unreachable
	}
	return b
}

// marshalAESHandle is the handle of an oct-HSM key: CKA_ID and size (no public part).
func marshalAESHandle(id []byte, bits int, exportable bool) []byte {
	b, err := json.Marshal(handleDoc{V: handleVersion, ID: hex.EncodeToString(id), Kty: provider.OctHSM, Size: bits, Exportable: exportable})
	if err != nil {
		panic("pkcs11: cannot encode a handle") // unreachable
	}
	return b
}

// parsed is a handle's CKA_ID and, for an oct-HSM key, its size in bits (0 otherwise).
type parsed struct {
	ID         []byte
	AESBits    int
	Exportable bool
	Label      string // the handle's tok (its token's label), "" if it has none
}

// errHandle is the one error of a malformed handle; it never repeats handle bytes.
var errHandle = fmt.Errorf("%w: not a valid pkcs11 key handle", provider.ErrInvalidKey)

// parseHandle parses and checks a version 1 handle strictly: no unknown members, no
// trailing data, an id of idLen bytes, a public key of an offered type matching kty, size
// and crv.
func parseHandle(h []byte) (parsed, *publicKey, error) {
	dec := json.NewDecoder(bytes.NewReader(h))
	dec.DisallowUnknownFields()
	var doc handleDoc
	if err := dec.Decode(&doc); err != nil {
		return parsed{}, nil, errHandle
	}
	if _, err := dec.Token(); err != io.EOF {
		return parsed{}, nil, errHandle
	}
	if doc.V != handleVersion {
		return parsed{}, nil, fmt.Errorf("%w: unknown pkcs11 handle version", provider.ErrInvalidKey)
	}
	if len(doc.Tok) > maxLabel {
		return parsed{}, nil, errHandle
	}
	id, err := hex.DecodeString(doc.ID)
	if err != nil || len(id) != idLen || doc.ID != hex.EncodeToString(id) {
		return parsed{}, nil, errHandle
	}
	if doc.Kty == provider.OctHSM {
		if !aesSizes[doc.Size] || doc.Crv != "" || len(doc.Pub) != 0 {
			return parsed{}, nil, errHandle
		}
		return parsed{ID: id, AESBits: doc.Size, Exportable: doc.Exportable, Label: doc.Tok}, nil, nil
	}
	key, err := x509.ParsePKIXPublicKey(doc.Pub)
	if err != nil {
		return parsed{}, nil, errHandle
	}
	var pub *publicKey
	switch k := key.(type) {
	case *rsa.PublicKey:
		if doc.Kty != provider.RSAHSM || doc.Crv != "" || k.E != rsaExponent || !rsaSizes[k.N.BitLen()] || k.N.BitLen() != doc.Size {
			return parsed{}, nil, errHandle
		}
		pub = newRSAPublic(k, provider.RSAHSM)
	case *ecdsa.PublicKey:
		c := curveOf(k.Curve)
		if c == nil || doc.Kty != provider.ECHSM || doc.Crv != c.crv || doc.Size != 0 {
			return parsed{}, nil, errHandle
		}
		pub = newECPublic(k, c)
	default:
		return parsed{}, nil, errHandle
	}
	return parsed{ID: id, Exportable: doc.Exportable, Label: doc.Tok}, pub, nil
}
