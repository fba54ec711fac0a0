package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/storage/mem"
)

const (
	testIssuer   = "https://login.coffer.test/11111111-2222-3333-4444-555555555555/v2.0"
	testAudience = "https://vault.coffer.test"
	testTenant   = "11111111-2222-3333-4444-555555555555"
	testKeysPath = "identity/token/keys"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// testClock is an injectable clock, safe for concurrent use.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock { return &testClock{t: t0} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// rsaTestKey is one 2048-bit key shared by the tests (generation is slow under -race).
var rsaTestKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// rsaOther is a second RSA key, for signatures by the wrong key.
var rsaOther = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// fixture is a Signer, its current key, and a second, RSA key, all in one key set.
type fixture struct {
	clk     *testClock
	signer  *Signer
	ecKID   string
	ecPriv  *ecdsa.PrivateKey
	rsaKID  string
	rsaPriv *rsa.PrivateKey
	keys    KeySet
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	clk := newClock()
	s, err := NewSigner(mem.New(), testKeysPath, clk.Now, time.Hour)
	if err != nil {
		t.Fatalf("NewSigner = %v", err)
	}
	f := &fixture{clk: clk, signer: s, ecKID: s.keys[0].rec.KID, ecPriv: s.keys[0].priv,
		rsaKID: "rsa-1", rsaPriv: rsaTestKey()}
	rsaSet, err := ParseJWKS(jwksOf(t, rsaJWK(f.rsaKID, &f.rsaPriv.PublicKey, "")))
	if err != nil || rsaSet.Len() != 1 {
		t.Fatalf("ParseJWKS(rsa) = %v, %v", rsaSet, err)
	}
	f.keys = keySets{s.KeySet(), rsaSet}
	return f
}

func (f *fixture) expect() Expect {
	return Expect{Issuers: []string{testIssuer}, Audiences: []string{testAudience}, TenantID: testTenant,
		Now: f.clk.Now(), Keys: f.keys}
}

// claims returns the JSON of valid claims, changed by mod (a nil value deletes a claim).
func (f *fixture) claims(mod map[string]any) string {
	now := f.clk.Now().Unix()
	m := map[string]any{
		"iss": testIssuer, "aud": testAudience, "tid": testTenant, "oid": "oid-1", "sub": "oid-1",
		"appid": "app-1", "iat": now, "nbf": now, "exp": now + 3600, "jti": "id-1", "ver": "2.0",
	}
	for k, v := range mod {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// keySets looks a kid up in each set in turn.
type keySets []KeySet

func (ks keySets) Lookup(kid string) (Key, bool) {
	for _, s := range ks {
		if k, ok := s.Lookup(kid); ok {
			return k, true
		}
	}
	return Key{}, false
}

func enc(s string) string { return b64.EncodeToString([]byte(s)) }

// compact builds header.payload.signature from raw JSON strings and a signing function.
func compact(header, payload string, sign func(input string) string) string {
	input := enc(header) + "." + enc(payload)
	return input + "." + sign(input)
}

func es256(priv *ecdsa.PrivateKey) func(string) string {
	return func(input string) string {
		d := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, priv, d[:])
		if err != nil {
			panic(err)
		}
		var sig [64]byte
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return b64.EncodeToString(sig[:])
	}
}

func es256DER(priv *ecdsa.PrivateKey) func(string) string {
	return func(input string) string {
		d := sha256.Sum256([]byte(input))
		sig, err := ecdsa.SignASN1(rand.Reader, priv, d[:])
		if err != nil {
			panic(err)
		}
		return b64.EncodeToString(sig)
	}
}

func rs256(priv *rsa.PrivateKey) func(string) string {
	return func(input string) string {
		d := sha256.Sum256([]byte(input))
		sig, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, d[:])
		if err != nil {
			panic(err)
		}
		return b64.EncodeToString(sig)
	}
}

func ps256(priv *rsa.PrivateKey) func(string) string {
	return func(input string) string {
		d := sha256.Sum256([]byte(input))
		sig, err := rsa.SignPSS(rand.Reader, priv, crypto.SHA256, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		if err != nil {
			panic(err)
		}
		return b64.EncodeToString(sig)
	}
}

func hs256(key []byte) func(string) string {
	return func(input string) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(input))
		return b64.EncodeToString(m.Sum(nil))
	}
}

func noSig(string) string { return "" }

// rsaJWK returns the public JWK of an RSA key as a JSON object string.
func rsaJWK(kid string, pub *rsa.PublicKey, alg string) map[string]any {
	m := map[string]any{"kty": "RSA", "use": "sig", "kid": kid,
		"n": b64.EncodeToString(pub.N.Bytes()), "e": b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes())}
	if alg != "" {
		m["alg"] = alg
	}
	return m
}

func jwksOf(t testing.TB, keys ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
