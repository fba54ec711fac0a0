package pkcs11

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/provider"
)

// aesAlgsFor lists the algorithm names of a key size by kind.
func aesAlgsFor(bits int) (gcm, cbc, cbcpad, kw string) {
	n := map[int]string{128: "128", 192: "192", 256: "256"}[bits]
	return "A" + n + "GCM", "A" + n + "CBC", "A" + n + "CBCPAD", "A" + n + "KW"
}

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAESKeys generates oct-HSM keys of each size and round-trips every algorithm through
// the token; tampering gives exactly ErrDecrypt.
func TestAESKeys(t *testing.T) {
	p := newToken(t)
	ctx := context.Background()
	for _, bits := range []int{128, 192, 256} {
		k, err := p.Generate(ctx, provider.KeySpec{Type: provider.OctHSM, Size: bits})
		if err != nil {
			t.Fatalf("Generate(oct-HSM %d) = %v", bits, err)
		}
		if k.Type() != provider.OctHSM || k.Size() != bits || k.Curve() != "" {
			t.Errorf("key = %s %d %q; want oct-HSM %d", k.Type(), k.Size(), k.Curve(), bits)
		}
		if j := k.Public(); j.Kty != provider.OctHSM || j.Private() || len(j.N)+len(j.X)+len(j.K) != 0 {
			t.Errorf("Public() = %v; want kty oct-HSM and nothing else", j)
		}
		gcm, cbc, cbcpad, kw := aesAlgsFor(bits)

		// GCM: server-generated IV, tag and aad returned; every tampering fails alike.
		for _, aad := range [][]byte{nil, []byte("header")} {
			msg := []byte("attack at dawn")
			r, err := k.Encrypt(ctx, provider.EncryptParams{Algorithm: gcm, Value: msg, AAD: aad})
			if err != nil {
				t.Fatalf("Encrypt(%s) = %v", gcm, err)
			}
			if len(r.IV) != 12 || len(r.Tag) != 16 || len(r.Value) != len(msg) || !bytes.Equal(r.AAD, aad) {
				t.Fatalf("Encrypt(%s) = iv %d, tag %d, ct %d, aad %q", gcm, len(r.IV), len(r.Tag), len(r.Value), r.AAD)
			}
			r2, _ := k.Encrypt(ctx, provider.EncryptParams{Algorithm: gcm, Value: msg, AAD: aad})
			if bytes.Equal(r.IV, r2.IV) || bytes.Equal(r.Value, r2.Value) {
				t.Errorf("two GCM encryptions share the IV or ciphertext")
			}
			dec := provider.EncryptParams{Algorithm: gcm, Value: r.Value, IV: r.IV, Tag: r.Tag, AAD: aad}
			if pt, err := k.Decrypt(ctx, dec); err != nil || !bytes.Equal(pt, msg) {
				t.Errorf("Decrypt(%s) = %q, %v; want %q", gcm, pt, err, msg)
			}
			for name, mutate := range map[string]func(p *provider.EncryptParams){
				"ct":  func(p *provider.EncryptParams) { p.Value = flip(p.Value) },
				"tag": func(p *provider.EncryptParams) { p.Tag = flip(p.Tag) },
				"iv":  func(p *provider.EncryptParams) { p.IV = flip(p.IV) },
				"aad": func(p *provider.EncryptParams) { p.AAD = append([]byte("x"), p.AAD...) },
			} {
				bad := dec
				mutate(&bad)
				if _, err := k.Decrypt(ctx, bad); err != provider.ErrDecrypt {
					t.Errorf("Decrypt(%s, tampered %s) = %v; want exactly ErrDecrypt", gcm, name, err)
				}
			}
		}

		// CBC and CBC-PAD with the caller's IV.
		iv := randBytes(t, 16)
		for alg, msg := range map[string][]byte{cbc: randBytes(t, 32), cbcpad: []byte("five!")} {
			r, err := k.Encrypt(ctx, provider.EncryptParams{Algorithm: alg, Value: msg, IV: iv})
			if err != nil {
				t.Fatalf("Encrypt(%s) = %v", alg, err)
			}
			if !bytes.Equal(r.IV, iv) || len(r.Value)%16 != 0 || len(r.Tag) != 0 {
				t.Errorf("Encrypt(%s) = iv %x, %d bytes, tag %x", alg, r.IV, len(r.Value), r.Tag)
			}
			if pt, err := k.Decrypt(ctx, provider.EncryptParams{Algorithm: alg, Value: r.Value, IV: iv}); err != nil || !bytes.Equal(pt, msg) {
				t.Errorf("Decrypt(%s) = %x, %v; want %x", alg, pt, err, msg)
			}
		}

		// Key wrap: RFC 3394 by name and as CKM_AES_KEY_WRAP, RFC 5649 for odd lengths.
		for _, tc := range []struct {
			alg string
			msg []byte
		}{{kw, randBytes(t, 32)}, {provider.AlgCKMAESKeyWrap, randBytes(t, 16)}, {provider.AlgCKMAESKeyWrapPad, randBytes(t, 24)}, {provider.AlgCKMAESKeyWrapPad, randBytes(t, 5)}, {provider.AlgCKMAESKeyWrapPad, randBytes(t, 20)}} {
			r, err := k.WrapKey(ctx, provider.EncryptParams{Algorithm: tc.alg, Value: tc.msg})
			if len(tc.msg)%8 != 0 && !p.kwp {
				if !errors.Is(err, provider.ErrUnsupported) {
					t.Errorf("WrapKey(%s, %d bytes) = %v on a token failing probeKWP; want ErrUnsupported", tc.alg, len(tc.msg), err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("WrapKey(%s, %d bytes) = %v", tc.alg, len(tc.msg), err)
			}
			if pt, err := k.UnwrapKey(ctx, provider.EncryptParams{Algorithm: tc.alg, Value: r.Value}); err != nil || !bytes.Equal(pt, tc.msg) {
				t.Errorf("UnwrapKey(%s) = %x, %v; want %x", tc.alg, pt, err, tc.msg)
			}
			if _, err := k.UnwrapKey(ctx, provider.EncryptParams{Algorithm: tc.alg, Value: flip(r.Value)}); err != provider.ErrDecrypt {
				t.Errorf("UnwrapKey(%s, tampered) = %v; want exactly ErrDecrypt", tc.alg, err)
			}
		}
	}
}

// flip returns a copy of b with its first bit flipped.
func flip(b []byte) []byte {
	c := append([]byte(nil), b...)
	if len(c) > 0 {
		c[0] ^= 1
	}
	return c
}

// TestAESRejects: parameters that do not fit are refused before the token is used, each
// with its class of error.
func TestAESRejects(t *testing.T) {
	p := newToken(t)
	ctx := context.Background()
	k, err := p.Generate(ctx, provider.KeySpec{Type: provider.OctHSM, Size: 128})
	if err != nil {
		t.Fatal(err)
	}
	iv16, iv12, tag := make([]byte, 16), make([]byte, 12), make([]byte, 16)
	type op int
	const (
		enc op = iota
		dec
		wrap
		unwrap
	)
	cases := []struct {
		name string
		op   op
		p    provider.EncryptParams
		want error
	}{
		{"gcm-wrong-size", enc, provider.EncryptParams{Algorithm: "A256GCM", Value: []byte("x")}, provider.ErrWrongKeyType},
		{"kw-wrong-size", wrap, provider.EncryptParams{Algorithm: "A192KW", Value: make([]byte, 16)}, provider.ErrWrongKeyType},
		{"rsa-alg", enc, provider.EncryptParams{Algorithm: "RSA-OAEP", Value: []byte("x")}, provider.ErrWrongKeyType},
		{"sig-alg", enc, provider.EncryptParams{Algorithm: "PS256", Value: []byte("x")}, provider.ErrUnsupported},
		{"unknown", dec, provider.EncryptParams{Algorithm: "A128GCMKW", Value: []byte("x")}, provider.ErrUnsupported},
		{"gcm-caller-iv", enc, provider.EncryptParams{Algorithm: "A128GCM", Value: []byte("x"), IV: iv12}, provider.ErrInvalidParameter},
		{"gcm-caller-tag", enc, provider.EncryptParams{Algorithm: "A128GCM", Value: []byte("x"), Tag: tag}, provider.ErrInvalidParameter},
		{"gcm-short-iv", dec, provider.EncryptParams{Algorithm: "A128GCM", Value: []byte("x"), IV: iv12[:11], Tag: tag}, provider.ErrInvalidParameter},
		{"gcm-short-tag", dec, provider.EncryptParams{Algorithm: "A128GCM", Value: []byte("x"), IV: iv12, Tag: tag[:12]}, provider.ErrInvalidParameter},
		{"gcm-no-tag", dec, provider.EncryptParams{Algorithm: "A128GCM", Value: []byte("x"), IV: iv12}, provider.ErrInvalidParameter},
		{"cbc-no-iv", enc, provider.EncryptParams{Algorithm: "A128CBCPAD", Value: []byte("x")}, provider.ErrInvalidParameter},
		{"cbc-short-iv", dec, provider.EncryptParams{Algorithm: "A128CBC", Value: make([]byte, 16), IV: iv12}, provider.ErrInvalidParameter},
		{"cbc-partial-block", enc, provider.EncryptParams{Algorithm: "A128CBC", Value: make([]byte, 15), IV: iv16}, provider.ErrInvalidParameter},
		{"cbc-ct-partial", dec, provider.EncryptParams{Algorithm: "A128CBCPAD", Value: make([]byte, 17), IV: iv16}, provider.ErrInvalidParameter},
		{"cbc-ct-empty", dec, provider.EncryptParams{Algorithm: "A128CBCPAD", Value: nil, IV: iv16}, provider.ErrInvalidParameter},
		{"cbc-aad", enc, provider.EncryptParams{Algorithm: "A128CBC", Value: make([]byte, 16), IV: iv16, AAD: []byte("a")}, provider.ErrInvalidParameter},
		{"kw-on-encrypt", enc, provider.EncryptParams{Algorithm: "A128KW", Value: make([]byte, 16)}, provider.ErrInvalidParameter},
		{"gcm-on-wrap", wrap, provider.EncryptParams{Algorithm: "A128GCM", Value: make([]byte, 16)}, provider.ErrInvalidParameter},
		{"kw-15", wrap, provider.EncryptParams{Algorithm: "A128KW", Value: make([]byte, 15)}, provider.ErrInvalidParameter},
		{"kw-8", wrap, provider.EncryptParams{Algorithm: "CKM_AES_KEY_WRAP", Value: make([]byte, 8)}, provider.ErrInvalidParameter},
		{"kwp-empty", wrap, provider.EncryptParams{Algorithm: "CKM_AES_KEY_WRAP_PAD"}, provider.ErrInvalidParameter},
		{"kw-iv", wrap, provider.EncryptParams{Algorithm: "A128KW", Value: make([]byte, 16), IV: iv16}, provider.ErrInvalidParameter},
		{"unwrap-16", unwrap, provider.EncryptParams{Algorithm: "A128KW", Value: make([]byte, 16)}, provider.ErrInvalidParameter},
		{"unwrap-25", unwrap, provider.EncryptParams{Algorithm: "CKM_AES_KEY_WRAP_PAD", Value: make([]byte, 25)}, provider.ErrInvalidParameter},
		{"too-large", enc, provider.EncryptParams{Algorithm: "A128GCM", Value: make([]byte, maxAESInput+1)}, provider.ErrInvalidParameter},
	}
	for _, tc := range cases {
		var err error
		switch tc.op {
		case enc:
			_, err = k.Encrypt(ctx, tc.p)
		case dec:
			_, err = k.Decrypt(ctx, tc.p)
		case wrap:
			_, err = k.WrapKey(ctx, tc.p)
		case unwrap:
			_, err = k.UnwrapKey(ctx, tc.p)
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v; want %v", tc.name, err, tc.want)
		}
	}
	if _, err := k.Sign(ctx, provider.AlgPS256, make([]byte, 32)); !errors.Is(err, provider.ErrWrongKeyType) {
		t.Errorf("Sign(PS256) = %v; want ErrWrongKeyType", err)
	}
	if _, err := k.Verify(ctx, provider.AlgHS256, make([]byte, 32), make([]byte, 32)); !errors.Is(err, provider.ErrUnsupported) {
		t.Errorf("Verify(HS256) = %v; want ErrUnsupported", err)
	}
}

// TestAESNotExtractable: the key object is sensitive and never extractable, CKA_VALUE is
// unreadable; the handle holds id and size only and Loads back; a destroyed key neither
// Loads nor decrypts.
func TestAESNotExtractable(t *testing.T) {
	p := newToken(t)
	ctx := context.Background()
	k, err := p.Generate(ctx, provider.KeySpec{Type: provider.OctHSM, Size: 256})
	if err != nil {
		t.Fatal(err)
	}
	key := k.(*aesKey)
	checkProtected(t, p, p11.CKO_SECRET_KEY, key.id, []uint{p11.CKA_VALUE}, true)
	h := k.Handle()
	if want := `{"v":1,"id":"` + hexID(key.id) + `","kty":"oct-HSM","size":256,"tok":"coffer-test"}`; string(h) != want {
		t.Errorf("Handle() = %s; want %s", h, want)
	}
	k2, err := p.Load(ctx, h)
	if err != nil || k2.Type() != provider.OctHSM || k2.Size() != 256 {
		t.Fatalf("Load = %v, %v", k2, err)
	}
	r, err := k.Encrypt(ctx, provider.EncryptParams{Algorithm: "A256GCM", Value: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	dec := provider.EncryptParams{Algorithm: "A256GCM", Value: r.Value, IV: r.IV, Tag: r.Tag}
	if pt, err := k2.Decrypt(ctx, dec); err != nil || string(pt) != "x" {
		t.Errorf("loaded key Decrypt = %q, %v", pt, err)
	}
	for name, bad := range map[string]string{
		"size":       strings.Replace(string(h), `"size":256`, `"size":128`, 1),
		"size-512":   strings.Replace(string(h), `"size":256`, `"size":512`, 1),
		"pub":        strings.Replace(string(h), `"size":256`, `"size":256,"pub":"AA"`, 1),
		"other-id":   strings.Replace(string(h), hexID(key.id), hexID(make([]byte, 16)), 1),
		"crv":        strings.Replace(string(h), `"size":256`, `"size":256,"crv":"P-256"`, 1),
		"kty-oct":    strings.Replace(string(h), `oct-HSM`, `oct`, 1),
		"no-size":    strings.Replace(string(h), `,"size":256`, ``, 1),
		"unknown-kv": strings.Replace(string(h), `"size":256`, `"size":256,"k":"AA"`, 1),
	} {
		if _, err := p.Load(ctx, []byte(bad)); !errors.Is(err, provider.ErrInvalidKey) {
			t.Errorf("Load(%s) = %v; want ErrInvalidKey", name, err)
		}
	}
	if err := p.Destroy(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Load(ctx, h); !errors.Is(err, provider.ErrInvalidKey) {
		t.Errorf("Load(destroyed) = %v; want ErrInvalidKey", err)
	}
	if _, err := k.Decrypt(ctx, dec); !goneNotHSM(err) {
		t.Errorf("Decrypt with a destroyed key = %v; want ErrKeyGone, not ErrHSM or ErrDecrypt", err)
	}
	if err := p.Destroy(ctx, h); err != nil {
		t.Errorf("second Destroy = %v", err)
	}
}
