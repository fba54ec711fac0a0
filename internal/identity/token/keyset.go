package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/coffer-kms/coffer/internal/strictb64"
)

// KeySet finds the verification key a token names in its kid header.
type KeySet interface {
	// Lookup returns the key whose id is kid. The kid comes from an unverified token: an
	// implementation must use it only as a lookup key (never as a path, URL or query).
	Lookup(kid string) (Key, bool)
}

// Key is a public verification key and the algorithms tokens signed with it may use.
type Key struct {
	// KID is the key id.
	KID string
	// Public is an *ecdsa.PublicKey (P-256 or P-384) or an *rsa.PublicKey.
	Public crypto.PublicKey
	// Algs are the JWS algorithms allowed with this key: ES256 for P-256, ES384 for P-384,
	// RS256 and/or PS256 for RSA. A token whose alg is not listed is rejected. Callers must
	// not modify the slice.
	Algs []string
}

// JWKS limits (SECURITY-NOTES A15).
const (
	// MaxJWKSLen is the largest JWKS document ParseJWKS accepts, in bytes.
	MaxJWKSLen = 256 << 10
	// MaxJWKSKeys is the most keys a JWKS document may hold.
	MaxJWKSKeys = 100
	// MaxJWKLen is the largest single key ParseJWKS considers, in bytes; larger keys are dropped.
	MaxJWKLen  = 16 << 10
	minRSABits = 2048
	maxRSABits = 4096
)

// StaticKeySet is a fixed set of verification keys, usually parsed from a JWKS document.
type StaticKeySet struct {
	keys map[string]Key
}

var _ KeySet = (*StaticKeySet)(nil)

// Lookup returns the key with id kid.
func (s *StaticKeySet) Lookup(kid string) (Key, bool) {
	k, ok := s.keys[kid]
	return k, ok
}

// Len returns the number of usable keys in s.
func (s *StaticKeySet) Len() int { return len(s.keys) }

// ParseJWKS parses a JWKS document ({"keys":[...]}) into a StaticKeySet. It fails if the
// document is larger than MaxJWKSLen, is not a JSON object with a "keys" array, or holds more
// than MaxJWKSKeys keys. It drops, without failing, every key that cannot be used safely:
// larger than MaxJWKLen; without a kid or with a kid another key also has; use present and
// not "sig"; key_ops present without "verify"; carrying private or symmetric material; kty
// other than EC or RSA; EC on a curve other than P-256 or P-384, with coordinates of the
// wrong length, or not on the curve; RSA smaller than 2048 or larger than 4096 bits, with an
// exponent other than 65537, or with the ROCA fingerprint; alg present and not the one
// algorithm the key type allows (ES256 on P-256, ES384 on P-384, RS256 or PS256 on RSA).
// An RSA key without alg allows both RS256 and PS256.
func ParseJWKS(b []byte) (*StaticKeySet, error) {
	if len(b) > MaxJWKSLen {
		return nil, fmt.Errorf("jwks: document larger than %d bytes", MaxJWKSLen)
	}
	if err := checkJSONObject(b, []string{"keys"}); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	if doc.Keys == nil {
		return nil, errors.New(`jwks: no "keys" array`)
	}
	if len(doc.Keys) > MaxJWKSKeys {
		return nil, fmt.Errorf("jwks: %d keys, more than %d", len(doc.Keys), MaxJWKSKeys)
	}
	set := &StaticKeySet{keys: make(map[string]Key, len(doc.Keys))}
	dup := make(map[string]bool)
	for _, raw := range doc.Keys {
		k, err := parseJWK(raw)
		if err != nil {
			continue
		}
		if _, seen := set.keys[k.KID]; seen || dup[k.KID] {
			delete(set.keys, k.KID) // ambiguous: drop every key with this kid
			dup[k.KID] = true
			continue
		}
		set.keys[k.KID] = k
	}
	return set, nil
}

// jwk holds the members of a JSON Web Key that ParseJWKS reads.
type jwk struct {
	Kty    string   `json:"kty"`
	Use    string   `json:"use,omitempty"`
	KeyOps []string `json:"key_ops,omitempty"`
	Alg    string   `json:"alg,omitempty"`
	KID    string   `json:"kid"`
	Crv    string   `json:"crv,omitempty"`
	X      string   `json:"x,omitempty"`
	Y      string   `json:"y,omitempty"`
	N      string   `json:"n,omitempty"`
	E      string   `json:"e,omitempty"`
	// Private or symmetric material: present means the key is dropped.
	D json.RawMessage `json:"d,omitempty"`
	K json.RawMessage `json:"k,omitempty"`
	P json.RawMessage `json:"p,omitempty"`
}

var jwkNames = []string{"kty", "use", "key_ops", "alg", "kid", "crv", "x", "y", "n", "e", "d", "k", "p"}

// parseJWK returns the Key for one JWK, or an error saying why it cannot be used.
func parseJWK(raw json.RawMessage) (Key, error) {
	if len(raw) > MaxJWKLen {
		return Key{}, errors.New("jwk too large")
	}
	if err := checkJSONObject(raw, jwkNames); err != nil {
		return Key{}, err
	}
	var j jwk
	if err := json.Unmarshal(raw, &j); err != nil {
		return Key{}, err
	}
	switch {
	case j.KID == "" || len(j.KID) > maxKIDLen:
		return Key{}, errors.New("jwk: kid missing or too long")
	case j.Use != "" && j.Use != "sig":
		return Key{}, errors.New("jwk: use is not sig")
	case j.KeyOps != nil && !allowed(j.KeyOps, "verify"):
		return Key{}, errors.New("jwk: key_ops lacks verify")
	case j.D != nil || j.K != nil || j.P != nil:
		return Key{}, errors.New("jwk: private or symmetric material")
	}
	var (
		pub  crypto.PublicKey
		algs []string
		err  error
	)
	switch j.Kty {
	case "EC":
		pub, algs, err = parseECJWK(j)
	case "RSA":
		pub, algs, err = parseRSAJWK(j)
	default:
		err = errors.New("jwk: unsupported kty")
	}
	if err != nil {
		return Key{}, err
	}
	if j.Alg != "" {
		if !allowed(algs, j.Alg) {
			return Key{}, errors.New("jwk: alg does not match the key type")
		}
		algs = []string{j.Alg}
	}
	return Key{KID: j.KID, Public: pub, Algs: algs}, nil
}

func parseECJWK(j jwk) (crypto.PublicKey, []string, error) {
	var (
		curve elliptic.Curve
		alg   string
	)
	switch j.Crv {
	case "P-256":
		curve, alg = elliptic.P256(), "ES256"
	case "P-384":
		curve, alg = elliptic.P384(), "ES384"
	default:
		return nil, nil, errors.New("jwk: unsupported crv")
	}
	size := (curve.Params().BitSize + 7) / 8
	x, errX := strictb64.URL.DecodeString("x", j.X)
	y, errY := strictb64.URL.DecodeString("y", j.Y)
	if errX != nil || errY != nil || len(x) != size || len(y) != size {
		return nil, nil, errors.New("jwk: bad EC coordinates")
	}
	point := append(append([]byte{4}, x...), y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point) // rejects points off the curve
	if err != nil {
		return nil, nil, fmt.Errorf("jwk: %w", err)
	}
	return pub, []string{alg}, nil
}

func parseRSAJWK(j jwk) (crypto.PublicKey, []string, error) {
	nb, errN := strictb64.URL.DecodeString("n", j.N)
	eb, errE := strictb64.URL.DecodeString("e", j.E)
	if errN != nil || errE != nil {
		return nil, nil, errors.New("jwk: bad RSA parameters")
	}
	if string(eb) != "\x01\x00\x01" {
		return nil, nil, errors.New("jwk: RSA exponent is not 65537")
	}
	n := new(big.Int).SetBytes(nb)
	if bits := n.BitLen(); bits < minRSABits || bits > maxRSABits || n.Bit(0) == 0 {
		return nil, nil, errors.New("jwk: RSA modulus size not in [2048, 4096] bits or even")
	}
	if rocaFingerprint(n) {
		return nil, nil, errors.New("jwk: RSA modulus has the ROCA fingerprint (CVE-2017-15361)")
	}
	return &rsa.PublicKey{N: n, E: 65537}, []string{"RS256", "PS256"}, nil
}

// rocaPrimes are the small primes of the ROCA fingerprint (Nemec et al., CCS 2017): moduli
// made by the vulnerable Infineon library are, modulo each of them, a power of 65537.
var rocaPrimes = []int64{3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73,
	79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167}

// rocaFingerprint reports whether n has the ROCA fingerprint. The chance that a sound
// modulus has it by accident is below 2^-100.
func rocaFingerprint(n *big.Int) bool {
	var m, p big.Int
	for _, q := range rocaPrimes {
		r := m.Mod(n, p.SetInt64(q)).Int64()
		inSubgroup := false
		for g, i := int64(1), int64(0); i < q; i++ {
			if g == r {
				inSubgroup = true
				break
			}
			g = g * (65537 % q) % q
		}
		if !inSubgroup {
			return false
		}
	}
	return true
}

// jwkJSON is the public JWK of a key as published by Signer.JWKS.
type jwkJSON struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	KID string `json:"kid"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// ecJWK returns the public JWK of a P-256 key.
func ecJWK(kid string, pub *ecdsa.PublicKey) (jwkJSON, error) {
	b, err := pub.Bytes() // 0x04 ‖ x ‖ y
	if err != nil || len(b) != 65 {
		return jwkJSON{}, errors.New("jwk: not an uncompressed P-256 point")
	}
	return jwkJSON{Kty: "EC", Use: "sig", Alg: "ES256", KID: kid, Crv: "P-256",
		X: b64.EncodeToString(b[1:33]), Y: b64.EncodeToString(b[33:])}, nil
}
