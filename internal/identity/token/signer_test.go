package token

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/storage/mem"
)

// jwksKIDs returns the kids of a JWKS document, in order, and checks every key's shape.
func jwksKIDs(t *testing.T, s *Signer) []string {
	t.Helper()
	b, err := s.JWKS()
	if err != nil {
		t.Fatalf("JWKS = %v", err)
	}
	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("JWKS = %s: %v", b, err)
	}
	var kids []string
	for _, k := range doc.Keys {
		if k["kty"] != "EC" || k["crv"] != "P-256" || k["use"] != "sig" || k["alg"] != "ES256" ||
			len(k["x"]) != 43 || len(k["y"]) != 43 || k["d"] != "" {
			t.Errorf("JWKS key = %v; want a public EC P-256 ES256 signing key", k)
		}
		kids = append(kids, k["kid"])
	}
	// What the Signer publishes, ParseJWKS accepts whole.
	set, err := ParseJWKS(b)
	if err != nil || set.Len() != len(kids) {
		t.Errorf("ParseJWKS(JWKS()) = %v keys, %v; want %d", set, err, len(kids))
	}
	return kids
}

func TestSignerRotation(t *testing.T) {
	clk := newClock()
	s, err := NewSigner(mem.New(), testKeysPath, clk.Now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	exp := func() Expect {
		return Expect{Issuers: []string{testIssuer}, Audiences: []string{testAudience}, Now: clk.Now(), Keys: s.KeySet()}
	}
	old := s.keys[0].rec.KID
	oldToken, err := s.Sign(Claims{Issuer: testIssuer, Audience: Audience{testAudience}})
	if err != nil {
		t.Fatal(err)
	}

	clk.Advance(10 * time.Minute)
	retiredAt := clk.Now()
	if err := s.Rotate(); err != nil {
		t.Fatalf("Rotate = %v", err)
	}
	cur := s.keys[0].rec.KID
	if cur == old {
		t.Fatalf("Rotate kept kid %q", old)
	}
	if got := jwksKIDs(t, s); len(got) != 2 || got[0] != cur || got[1] != old {
		t.Errorf("JWKS kids after Rotate = %v; want [%s %s]", got, cur, old)
	}
	newToken, err := s.Sign(Claims{Issuer: testIssuer, Audience: Audience{testAudience}})
	if err != nil || !strings.Contains(mustHeader(t, newToken), cur) {
		t.Fatalf("Sign after Rotate = %q, %v; want a token with kid %s", newToken, err, cur)
	}
	// The retired key lost its private part, in memory and in storage.
	if s.keys[1].priv != nil || s.keys[1].rec.PKCS8 != nil {
		t.Errorf("retired key still has its private key")
	}

	// Tokens of the old key stay valid until they expire (50 minutes from now).
	clk.Advance(49 * time.Minute)
	if _, err := (Validator{}).Validate(oldToken, exp()); err != nil {
		t.Errorf("Validate(old token) before its exp = %v; want valid", err)
	}
	clk.Advance(2*time.Minute + 121*time.Second) // past exp + default leeway
	if _, err := (Validator{}).Validate(oldToken, exp()); !errors.Is(err, errExpired) {
		t.Errorf("Validate(old token) after its exp = %v; want %v", err, errExpired)
	}
	// Still published until retirement + lifetime + RetireSkew ...
	clk.Advance(retiredAt.Add(time.Hour + RetireSkew).Sub(clk.Now()))
	if got := jwksKIDs(t, s); len(got) != 2 {
		t.Errorf("JWKS kids at retirement+lifetime+skew = %v; want both", got)
	}
	// ... and gone one second later, from JWKS and KeySet, then from storage on Prune.
	clk.Advance(time.Second)
	if got := jwksKIDs(t, s); len(got) != 1 || got[0] != cur {
		t.Errorf("JWKS kids after the publication period = %v; want [%s]", got, cur)
	}
	if _, ok := s.KeySet().Lookup(old); ok {
		t.Errorf("KeySet().Lookup(retired kid) found it after its publication period")
	}
	if err := s.Prune(); err != nil {
		t.Fatalf("Prune = %v", err)
	}
	if len(s.keys) != 1 || s.keys[0].rec.KID != cur {
		t.Errorf("keys after Prune = %d", len(s.keys))
	}
	if _, err := (Validator{}).Validate(newToken, exp()); !errors.Is(err, errExpired) {
		t.Errorf("Validate(new token) after the old key's publication period = %v; want %v", err, errExpired)
	}
}

func mustHeader(t *testing.T, raw string) string {
	t.Helper()
	b, err := b64.DecodeString(strings.SplitN(raw, ".", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSignerPersistence(t *testing.T) {
	store := mem.New()
	clk := newClock()
	a, err := NewSigner(store, testKeysPath, clk.Now, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSigner(store, testKeysPath, clk.Now, 0)
	if err != nil {
		t.Fatal(err)
	}
	if a.keys[0].rec.KID != b.keys[0].rec.KID {
		t.Errorf("NewSigner twice over one store: kids %q and %q; want the same", a.keys[0].rec.KID, b.keys[0].rec.KID)
	}
	// A token from one validates against the other.
	raw, _ := a.Sign(Claims{Issuer: testIssuer, Audience: Audience{testAudience}})
	if _, err := (Validator{}).Validate(raw, Expect{Issuers: []string{testIssuer}, Audiences: []string{testAudience}, Now: t0, Keys: b.KeySet()}); err != nil {
		t.Errorf("Validate(token of a) with b's keys = %v", err)
	}
	// A rotation is persisted: a third Signer sees the new current key and the retired one.
	if err := a.Rotate(); err != nil {
		t.Fatal(err)
	}
	c, err := NewSigner(store, testKeysPath, clk.Now, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.keys[0].rec.KID != a.keys[0].rec.KID || len(c.keys) != 2 || c.keys[1].rec.KID != b.keys[0].rec.KID {
		t.Errorf("after Rotate, a reloaded Signer has %d keys, current %q; want 2, current %q", len(c.keys), c.keys[0].rec.KID, a.keys[0].rec.KID)
	}
	// The kid is the thumbprint of the public key.
	if got := kidOf(c.keys[0].rec.SPKI); got != c.keys[0].rec.KID || len(got) != 22 {
		t.Errorf("kid = %q; want base64url(SHA-256(SPKI)[:16]) = %q", c.keys[0].rec.KID, got)
	}
}

func TestNewSignerRefuses(t *testing.T) {
	ctx := context.Background()
	fresh, err := newKeyFile(t0)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := newRecord(t0)
	mutate := func(f func(*keyFile)) []byte {
		var k keyFile
		_ = json.Unmarshal(fresh, &k)
		f(&k)
		b, _ := json.Marshal(k)
		return b
	}
	tests := []struct {
		name     string
		stored   []byte
		path     string
		lifetime time.Duration
	}{
		{name: "fail/not-json", stored: []byte("{"), path: testKeysPath},
		{name: "fail/unknown-version", stored: mutate(func(k *keyFile) { k.Version = 2 }), path: testKeysPath},
		{name: "fail/no-keys", stored: mutate(func(k *keyFile) { k.Keys = nil }), path: testKeysPath},
		{name: "fail/kid-mismatch", stored: mutate(func(k *keyFile) { k.Keys[0].KID = other.KID }), path: testKeysPath},
		{name: "fail/private-key-of-other-key", stored: mutate(func(k *keyFile) { k.Keys[0].PKCS8 = other.PKCS8 }), path: testKeysPath},
		{name: "fail/current-retired", stored: mutate(func(k *keyFile) { k.Keys[0].Retired = t0 }), path: testKeysPath},
		{name: "fail/second-key-not-retired", stored: mutate(func(k *keyFile) { k.Keys = append(k.Keys, other) }), path: testKeysPath},
		{name: "fail/lifetime-too-long", path: testKeysPath, lifetime: 2 * time.Hour},
		{name: "fail/lifetime-negative", path: testKeysPath, lifetime: -time.Second},
		{name: "fail/no-path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := mem.New()
			if tc.stored != nil {
				if err := store.Put(ctx, testKeysPath, tc.stored); err != nil {
					t.Fatal(err)
				}
			}
			if s, err := NewSigner(store, tc.path, nil, tc.lifetime); err == nil {
				t.Errorf("NewSigner = %v, nil; want an error", s)
			}
			// A key set that cannot be read is never replaced.
			if got, _ := store.Get(ctx, testKeysPath); string(got) != string(tc.stored) {
				t.Errorf("stored keys changed to %s", got)
			}
		})
	}
}

// failingStore fails every Put after the first puts.
type failingStore struct {
	*mem.Backend
	puts int
}

var _ storage.Backend = (*failingStore)(nil)

func (f *failingStore) Put(ctx context.Context, key string, value []byte) error {
	if f.puts--; f.puts < 0 {
		return errors.New("disk full")
	}
	return f.Backend.Put(ctx, key, value)
}

func TestRotateStoreFailureChangesNothing(t *testing.T) {
	store := &failingStore{Backend: mem.New()}
	s, err := NewSigner(store, testKeysPath, newClock().Now, 0) // created through Txn, not Put
	if err != nil {
		t.Fatal(err)
	}
	before := s.keys[0].rec.KID
	if err := s.Rotate(); err == nil {
		t.Fatal("Rotate with a failing store = nil; want an error")
	}
	if s.keys[0].rec.KID != before || len(s.keys) != 1 || s.keys[0].priv == nil {
		t.Errorf("after a failed Rotate the key set changed")
	}
	if _, err := s.Sign(Claims{Issuer: testIssuer, Audience: Audience{testAudience}}); err != nil {
		t.Errorf("Sign after a failed Rotate = %v", err)
	}
}

func TestSignerJWKSPublicOnly(t *testing.T) {
	f := newFixture(t)
	b, err := f.signer.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	d := b64.EncodeToString(f.ecPriv.D.Bytes())
	if strings.Contains(string(b), d) || strings.Contains(string(b), `"d"`) {
		t.Errorf("JWKS = %s contains the private key", b)
	}
	k, ok := f.signer.KeySet().Lookup(f.ecKID)
	if !ok || !k.Public.(*ecdsa.PublicKey).Equal(&f.ecPriv.PublicKey) || len(k.Algs) != 1 || k.Algs[0] != "ES256" {
		t.Errorf("KeySet().Lookup(current) = %+v, %v", k, ok)
	}
}

func TestSignerConcurrentSignAndRotate(t *testing.T) {
	clk := newClock()
	s, err := NewSigner(mem.New(), testKeysPath, clk.Now, 0)
	if err != nil {
		t.Fatal(err)
	}
	exp := Expect{Issuers: []string{testIssuer}, Audiences: []string{testAudience}, Now: t0, Keys: s.KeySet()}
	var wg sync.WaitGroup
	tokens := make(chan string, 200)
	for range 4 {
		wg.Go(func() {
			for range 50 {
				raw, err := s.Sign(Claims{Issuer: testIssuer, Audience: Audience{testAudience}})
				if err != nil {
					t.Error(err)
					return
				}
				tokens <- raw
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			if err := s.Rotate(); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	close(tokens)
	for raw := range tokens {
		if _, err := (Validator{}).Validate(raw, exp); err != nil {
			t.Errorf("Validate(token signed during rotations) = %v", err)
		}
	}
	if got := len(jwksKIDs(t, s)); got != 6 {
		t.Errorf("JWKS after 5 rotations within the lifetime has %d keys; want 6", got)
	}
}
