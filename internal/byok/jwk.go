package byok

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
)

// ImportKey is the key member of the import request for a transfer blob: kty, key_hsm and,
// for an EC target, crv and the public point. A vault's HSM does not derive the public key
// of a transferred EC key, so Coffer needs x and y in the request (and checks them against
// the key inside its HSM).
type ImportKey struct {
	Kty    string `json:"kty"`
	Crv    string `json:"crv,omitempty"`
	X      string `json:"x,omitempty"`
	Y      string `json:"y,omitempty"`
	KeyHSM string `json:"key_hsm"`
}

// ecCurves are the curve names Key Vault gives the EC curves, by size.
var ecCurves = map[int]string{256: "P-256", 384: "P-384", 521: "P-521"}

// NewImportKey returns the import key for blob, whose target is kty (RSA-HSM, EC-HSM or
// oct-HSM); for EC-HSM, pk8 is the target's PKCS #8 DER, from which only the public point
// is taken.
func NewImportKey(blob []byte, kty string, pk8 []byte) (ImportKey, error) {
	ik := ImportKey{Kty: kty, KeyHSM: base64.RawURLEncoding.EncodeToString(blob)}
	if kty != "EC-HSM" {
		return ik, nil
	}
	key, err := x509.ParsePKCS8PrivateKey(pk8)
	ek, ok := key.(*ecdsa.PrivateKey)
	if err != nil || !ok {
		return ImportKey{}, errors.New("byok: the EC target is not a PKCS #8 EC key")
	}
	ik.Crv = ecCurves[ek.Curve.Params().BitSize]
	pt, err := ek.PublicKey.Bytes()
	if ik.Crv == "" || err != nil {
		return ImportKey{}, errors.New("byok: the EC curve is not one Key Vault offers")
	}
	n := (len(pt) - 1) / 2
	ik.X = base64.RawURLEncoding.EncodeToString(pt[1 : 1+n])
	ik.Y = base64.RawURLEncoding.EncodeToString(pt[1+n:])
	return ik, nil
}
