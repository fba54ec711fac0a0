package soft_test

import (
	"crypto"
	_ "crypto/sha1" // hashes named by the vector files
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/provider/providertest"
)

// The Wycheproof harness (testdata/wycheproof, see SOURCE.md there). Each vector file is run
// through the provider's own entry points: keys come in as JWKs through provider.ParseJWK
// and then Provider.Import (private keys) or ImportPublic (public keys; a Key's Verify and
// Encrypt are the very same methods), messages are hashed here because Key Vault signs
// digests, and the result is compared with the vector's: every "valid" vector must succeed,
// every "invalid" one fail, "acceptable" ones may do either and are counted. Vectors outside
// Key Vault's rules (key size, exponent, hash pairing, OAEP label) are skipped and counted by
// reason; where a skip is because Coffer refuses something, the refusal itself is checked.

// The vector file format (providertest.LoadWycheproof reads it); a group's key comes as a
// JWK or as a hex dictionary.
type (
	wpFile  = providertest.WycheproofFile
	wpGroup = providertest.WycheproofGroup
	wpTest  = providertest.WycheproofTest
)

// rsaHexKey is the hex dictionary form of an RSA key.
type rsaHexKey struct {
	Modulus         string     `json:"modulus"`
	PublicExponent  string     `json:"publicExponent"`
	PrivateExponent string     `json:"privateExponent"`
	Prime1          string     `json:"prime1"`
	Prime2          string     `json:"prime2"`
	Exponent1       string     `json:"exponent1"`
	Exponent2       string     `json:"exponent2"`
	Coefficient     string     `json:"coefficient"`
	OtherPrimeInfos [][]string `json:"otherPrimeInfos"`
}

// tally counts one file's outcomes.
type tally struct {
	file                          string
	total, valid, invalid, accept int
	passed, failed                int
	acceptAccepted, acceptRefused int
	skipped                       map[string]int
	notes                         map[string]int
}

func (c *tally) skip(reason string, n int) { c.skipped[reason] += n }
func (c *tally) note(what string)          { c.notes[what]++ }

// record compares an outcome with the vector's result.
func (c *tally) record(t *testing.T, tc wpTest, accepted bool, detail string) {
	t.Helper()
	switch tc.Result {
	case "valid":
		c.valid++
		if !accepted {
			c.failed++
			t.Errorf("%s tc%d (%s %v): valid vector rejected: %s", c.file, tc.TcID, tc.Comment, tc.Flags, detail)
			return
		}
	case "invalid":
		c.invalid++
		if accepted {
			c.failed++
			t.Errorf("%s tc%d (%s %v): invalid vector accepted", c.file, tc.TcID, tc.Comment, tc.Flags)
			return
		}
	default:
		c.accept++
		if accepted {
			c.acceptAccepted++
		} else {
			c.acceptRefused++
		}
	}
	c.passed++
}

// fail counts a vector as failed for a reason other than its outcome (a wrong error class).
func (c *tally) fail(t *testing.T, tc wpTest, format string, args ...any) {
	t.Helper()
	c.failed++
	t.Errorf("%s tc%d (%s): %s", c.file, tc.TcID, tc.Comment, fmt.Sprintf(format, args...))
}

func (c *tally) String() string {
	var skips []string
	for r, n := range c.skipped {
		skips = append(skips, fmt.Sprintf("%d %s", n, r))
	}
	sort.Strings(skips)
	var notes []string
	for r, n := range c.notes {
		notes = append(notes, fmt.Sprintf("%d %s", n, r))
	}
	sort.Strings(notes)
	s := fmt.Sprintf("%-52s %5d vectors: passed %4d (valid %d, invalid %d, acceptable %d: %d accepted/%d refused), failed %d, skipped %d",
		c.file, c.total, c.passed, c.valid, c.invalid, c.accept, c.acceptAccepted, c.acceptRefused, c.failed, sum(c.skipped))
	if len(skips) > 0 {
		s += "\n      skipped: " + strings.Join(skips, "; ")
	}
	if len(notes) > 0 {
		s += "\n      notes: " + strings.Join(notes, "; ")
	}
	return s
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// loadVectors reads a vector file from testdata/wycheproof (its count checked).
func loadVectors(t *testing.T, name string) *wpFile {
	t.Helper()
	return providertest.LoadWycheproof(t, filepath.Join("testdata", "wycheproof", name))
}

// hashes maps Wycheproof hash names to crypto.Hash.
var hashes = map[string]crypto.Hash{
	"SHA-1": crypto.SHA1, "SHA-224": crypto.SHA224, "SHA-256": crypto.SHA256,
	"SHA-384": crypto.SHA384, "SHA-512": crypto.SHA512,
	"SHA-512/224": crypto.SHA512_224, "SHA-512/256": crypto.SHA512_256,
}

// digestOf hashes msg with the named hash.
func digestOf(t *testing.T, name string, msg []byte) []byte {
	t.Helper()
	h, ok := hashes[name]
	if !ok {
		t.Fatalf("unknown hash %q", name)
	}
	hh := h.New()
	hh.Write(msg)
	return hh.Sum(nil)
}

// unhex decodes a hex field.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in vector: %v", err)
	}
	return b
}

// hexInt decodes a hex integer to its minimal big-endian bytes.
func hexInt(t *testing.T, s string) []byte {
	t.Helper()
	return new(big.Int).SetBytes(unhex(t, s)).Bytes()
}

// rsaJWKFromHex builds a JWK (public, or private with CRT) from a hex dictionary.
func rsaJWKFromHex(t *testing.T, raw json.RawMessage) *provider.JWK {
	t.Helper()
	var k rsaHexKey
	if err := json.Unmarshal(raw, &k); err != nil {
		t.Fatal(err)
	}
	j := &provider.JWK{Kty: provider.RSA, N: hexInt(t, k.Modulus), E: hexInt(t, k.PublicExponent)}
	if k.PrivateExponent != "" {
		j.D, j.P, j.Q = hexInt(t, k.PrivateExponent), hexInt(t, k.Prime1), hexInt(t, k.Prime2)
		j.DP, j.DQ, j.QI = hexInt(t, k.Exponent1), hexInt(t, k.Exponent2), hexInt(t, k.Coefficient)
	}
	return j
}

// parseVectorJWK runs a vector's JWK through provider.ParseJWK, the path request bodies
// take. Wycheproof spells secp256k1 "secp256k1" in some files; Key Vault's name is P-256K.
func parseVectorJWK(t *testing.T, c *tally, raw json.RawMessage) *provider.JWK {
	t.Helper()
	j, err := provider.ParseJWK(raw)
	if err != nil {
		t.Fatalf("%s: ParseJWK(vector key) = %v", c.file, err)
	}
	if j.Crv == "secp256k1" {
		j.Crv = provider.P256K
		c.note("JWK crv secp256k1 renamed P-256K")
	}
	return j
}

// groupJWK returns the group's key as a JWK: its JWK member if it has one, else built from
// the hex dictionary.
func groupJWK(t *testing.T, c *tally, g wpGroup) *provider.JWK {
	t.Helper()
	for _, raw := range []json.RawMessage{g.PrivateKeyJwk, g.KeyJwk, g.PublicKeyJwk} {
		if len(raw) > 0 {
			return parseVectorJWK(t, c, raw)
		}
	}
	if len(g.PrivateKey) > 0 {
		return rsaJWKFromHex(t, g.PrivateKey)
	}
	var ec struct {
		Type, Curve string
		Wx, Wy      string
	}
	if err := json.Unmarshal(g.PublicKey, &ec); err == nil && ec.Type == "EcPublicKey" {
		c.note("EC key built from the hex point (no JWK in the group)")
		return ecJWKFromHex(t, ec.Curve, ec.Wx, ec.Wy)
	}
	return rsaJWKFromHex(t, g.PublicKey)
}

// ecCurves maps Wycheproof curve names to Key Vault's and their coordinate sizes.
var ecCurves = map[string]struct {
	crv  provider.Curve
	size int
}{
	"secp256r1": {provider.P256, 32}, "secp384r1": {provider.P384, 48},
	"secp521r1": {provider.P521, 66}, "secp256k1": {provider.P256K, 32},
}

// ecJWKFromHex builds a public EC JWK from hex coordinates (which may carry a sign byte).
func ecJWKFromHex(t *testing.T, curve, wx, wy string) *provider.JWK {
	t.Helper()
	c, ok := ecCurves[curve]
	if !ok {
		t.Fatalf("unknown curve %q", curve)
	}
	x, y := new(big.Int).SetBytes(unhex(t, wx)), new(big.Int).SetBytes(unhex(t, wy))
	return &provider.JWK{Kty: provider.EC, Crv: c.crv, X: x.FillBytes(make([]byte, c.size)), Y: y.FillBytes(make([]byte, c.size))}
}

// rsaPolicySkip says why an RSA group's key is outside Key Vault's rules, "" if it is not.
func rsaPolicySkip(j *provider.JWK) string {
	bits := new(big.Int).SetBytes(j.N).BitLen()
	switch {
	case bits != 2048 && bits != 3072 && bits != 4096:
		return "RSA key size not 2048/3072/4096 (import refusal verified)"
	case new(big.Int).SetBytes(j.E).Int64() != 65537:
		return "RSA e != 65537 (import refusal verified)"
	}
	return ""
}
