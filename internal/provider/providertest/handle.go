package providertest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/provider"
)

// testHandle: Load(Handle()) is the same key (same public key; it signs what the original
// verifies and the other way round; RSA PKCS #1 v1.5 signatures are byte-identical; it
// decrypts the original's ciphertexts); Handle returns a copy; broken handles fail without
// repeating their bytes; Destroy works.
func (s *suite) testHandle(t *testing.T) {
	ctx := context.Background()
	for _, g := range s.keys {
		t.Run(specName(g.spec), func(t *testing.T) {
			h := g.key.Handle()
			if len(h) == 0 {
				t.Fatal("Handle() is empty")
			}
			h[0] ^= 0xff
			if h2 := g.key.Handle(); h2[0] == h[0] {
				t.Errorf("Handle() shares its bytes with the key")
			}
			h = g.key.Handle()
			loaded, err := s.p.Load(ctx, h)
			if err != nil {
				t.Fatalf("Load(Handle()) = %v", err)
			}
			if loaded.Type() != g.key.Type() || loaded.Size() != g.key.Size() || loaded.Curve() != g.key.Curve() || !jwkEqual(loaded.Public(), g.key.Public()) {
				t.Errorf("Load(Handle()) is %s %d %s with another public key; want the same key", loaded.Type(), loaded.Size(), loaded.Curve())
			}
			for _, alg := range s.sigAlgsFor(g.key) {
				digest := randomBytes(sigHash[alg].Size())
				sig1, err1 := g.key.Sign(ctx, alg, digest)
				sig2, err2 := loaded.Sign(ctx, alg, digest)
				if err1 != nil || err2 != nil {
					t.Fatalf("Sign(%s) = %v, %v", alg, err1, err2)
				}
				ok1, _ := loaded.Verify(ctx, alg, digest, sig1)
				ok2, _ := g.key.Verify(ctx, alg, digest, sig2)
				if !ok1 || !ok2 {
					t.Errorf("%s: the loaded key and the original do not verify each other's signatures", alg)
				}
				if alg[0] == 'R' && !bytes.Equal(sig1, sig2) {
					t.Errorf("%s: the loaded key signs differently from the original", alg)
				}
			}
			for _, alg := range s.encAlgsFor(g.key) {
				msg := randomBytes(24)
				ct, err := g.key.Encrypt(ctx, provider.EncryptParams{Algorithm: alg, Value: msg})
				if err != nil {
					t.Fatal(err)
				}
				if pt, err := loaded.Decrypt(ctx, provider.EncryptParams{Algorithm: alg, Value: ct.Value}); err != nil || !bytes.Equal(pt, msg) {
					t.Errorf("%s: the loaded key does not decrypt the original's ciphertext: %v", alg, err)
				}
			}
			bad := map[string][]byte{
				"nil":       nil,
				"empty":     {},
				"garbage":   randomBytes(64),
				"truncated": h[:len(h)/2],
				"doubled":   append(append([]byte(nil), h...), h...),
				"json-null": []byte("null"),
				"json-obj":  []byte("{}"),
			}
			for name, b := range bad {
				k, err := s.p.Load(ctx, b)
				if err == nil || k != nil {
					t.Errorf("Load(%s handle) = %v, %v; want an error", name, k, err)
					continue
				}
				if leaks(err.Error(), h) {
					t.Errorf("Load(%s handle) error repeats handle bytes: %q", name, err)
				}
			}
		})
	}
	// Destroy: of a fresh key, and (for providers that hold material) Load fails afterwards.
	k, err := s.p.Generate(ctx, s.keys[len(s.keys)-1].spec)
	if err != nil {
		t.Fatal(err)
	}
	h := k.Handle()
	if err := s.p.Destroy(ctx, h); err != nil {
		t.Errorf("Destroy = %v", err)
	}
	if _, err := s.p.Load(ctx, h); s.opts.DestroyRemoves && err == nil {
		t.Errorf("Load after Destroy succeeded")
	}
}

// leaks reports whether msg contains a 12-byte window of secret, raw or in hex, base64url or
// base64, or (for text secrets such as JSON handles) as text.
func leaks(msg string, secret []byte) bool {
	const w = 12
	if len(secret) < w {
		return false
	}
	encodings := []string{
		hex.EncodeToString(secret),
		base64.RawURLEncoding.EncodeToString(secret),
		base64.StdEncoding.EncodeToString(secret),
		string(secret),
	}
	for _, enc := range encodings {
		for i := 0; i+2*w <= len(enc); i += w {
			if strings.Contains(msg, enc[i:i+2*w]) {
				return true
			}
		}
	}
	return false
}
