package soft_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/provider/providertest"
	"github.com/coffer-kms/coffer/internal/provider/soft"
)

// TestConformance runs the provider conformance suite against the software provider.
func TestConformance(t *testing.T) {
	providertest.Run(t, soft.New(), providertest.Options{})
}

func TestName(t *testing.T) {
	if got := soft.New().Name(); got != "software" {
		t.Errorf("Name() = %q; want software", got)
	}
}

// TestGenerateInvalidSpecs: specs that mix members of the other key type are bad
// parameters, not unsupported features.
func TestGenerateInvalidSpecs(t *testing.T) {
	for name, spec := range map[string]provider.KeySpec{
		"rsa-with-curve":      {Type: provider.RSA, Size: 2048, Curve: provider.P256},
		"ec-size-mismatch":    {Type: provider.EC, Curve: provider.P256, Size: 384},
		"ec-with-exponent":    {Type: provider.EC, Curve: provider.P256, PublicExponent: 65537},
		"p256k-size-mismatch": {Type: provider.EC, Curve: provider.P256K, Size: 521},
	} {
		if k, err := soft.New().Generate(context.Background(), spec); k != nil || !errors.Is(err, provider.ErrInvalidParameter) {
			t.Errorf("Generate(%s) = %v, %v; want nil, ErrInvalidParameter", name, k, err)
		}
	}
	// The curve's own size is accepted.
	if _, err := soft.New().Generate(context.Background(), provider.KeySpec{Type: provider.EC, Curve: provider.P521, Size: 521}); err != nil {
		t.Errorf("Generate(P-521, 521 bits) = %v", err)
	}
}

// TestImportUnsupportedTypes: oct, the -HSM types and BYOK blobs belong to an HSM provider.
func TestImportUnsupportedTypes(t *testing.T) {
	p := soft.New()
	for _, j := range []*provider.JWK{
		{Kty: provider.Oct, K: bytes.Repeat([]byte{1}, 32)},
		{Kty: provider.OctHSM, K: bytes.Repeat([]byte{1}, 32)},
		{Kty: provider.RSAHSM, T: []byte("{}")},
		{Kty: provider.ECHSM, Crv: provider.P256, T: []byte("{}")},
		{Kty: provider.RSA, T: []byte("{}")},
	} {
		if k, err := p.Import(context.Background(), j); k != nil || !errors.Is(err, provider.ErrUnsupported) {
			t.Errorf("Import(%v) = %v, %v; want nil, ErrUnsupported", j, k, err)
		}
	}
	if k, err := p.Import(context.Background(), &provider.JWK{Kty: "OKP"}); k != nil || !errors.Is(err, provider.ErrInvalidKey) {
		t.Errorf("Import(kty OKP) = %v, %v; want nil, ErrInvalidKey", k, err)
	}
}

// TestImportShortD: an EC d that lost its leading zero bytes is left-padded (RFC 7518 asks
// for the full length, but some encoders strip it); a longer d is refused by the suite.
func TestImportShortD(t *testing.T) {
	for {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		j := providertest.ECJWK(priv, provider.EC, provider.P256)
		if j.D[0] != 0 {
			continue
		}
		j.D = j.D[1:]
		k, err := soft.New().Import(context.Background(), j)
		if err != nil {
			t.Fatalf("Import(31-byte d) = %v", err)
		}
		digest := sha256.Sum256([]byte("x"))
		sig, err := k.Sign(context.Background(), provider.AlgES256, digest[:])
		if err != nil || !ecdsa.VerifyASN1(&priv.PublicKey, digest[:], derOf(sig)) {
			t.Errorf("the key imported with a short d does not sign for the original: %v", err)
		}
		return
	}
}

// TestImportPublic: public JWKs verify and encrypt; private JWKs are refused.
func TestImportPublic(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	j := providertest.RSAJWK(priv, provider.RSA)
	if k, err := soft.ImportPublic(j); k != nil || !errors.Is(err, provider.ErrInvalidKey) {
		t.Errorf("ImportPublic(private JWK) = %v, %v; want nil, ErrInvalidKey", k, err)
	}
	if k, err := soft.ImportPublic(nil); k != nil || !errors.Is(err, provider.ErrInvalidKey) {
		t.Errorf("ImportPublic(nil) = %v, %v; want nil, ErrInvalidKey", k, err)
	}
	pub, err := soft.ImportPublic(&provider.JWK{Kty: provider.RSA, N: j.N, E: j.E})
	if err != nil {
		t.Fatal(err)
	}
	if pub.Type() != provider.RSA || pub.Size() != 2048 || pub.Curve() != "" || pub.Public().Private() {
		t.Errorf("ImportPublic = %s %d %q", pub.Type(), pub.Size(), pub.Curve())
	}
	ct, err := pub.Encrypt(context.Background(), provider.EncryptParams{Algorithm: provider.AlgRSAOAEP256, Value: []byte("hello")})
	if err != nil {
		t.Fatal(err)
	}
	pt, err := rsa.DecryptOAEP(sha256.New(), nil, priv, ct.Value, nil)
	if err != nil || string(pt) != "hello" {
		t.Errorf("a ciphertext of ImportPublic's key does not decrypt: %v", err)
	}
}

// TestHandleFormat pins handle version 1 and checks that Load re-applies the key policy and
// says nothing about the bytes it refuses.
func TestHandleFormat(t *testing.T) {
	ctx := context.Background()
	p := soft.New()
	for _, spec := range []provider.KeySpec{{Type: provider.RSA, Size: 2048}, {Type: provider.EC, Curve: provider.P384}, {Type: provider.EC, Curve: provider.P256K}} {
		k, err := p.Generate(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(k.Handle(), &doc); err != nil {
			t.Fatalf("handle is not JSON: %v", err)
		}
		want := map[string]bool{"v": true, "kty": true, "crv": spec.Type == provider.EC, "pkcs8": spec.Curve != provider.P256K, "d": spec.Curve == provider.P256K}
		for member, present := range want {
			if _, ok := doc[member]; ok != present {
				t.Errorf("%v handle: member %q present = %v; want %v", spec, member, ok, present)
			}
		}
		if doc["v"] != float64(1) || doc["kty"] != string(spec.Type) {
			t.Errorf("%v handle: v = %v, kty = %v", spec, doc["v"], doc["kty"])
		}
	}

	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	pk1024, _ := x509.MarshalPKCS8PrivateKey(rsa1024)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pkP256, _ := x509.MarshalPKCS8PrivateKey(p256)
	bad := map[string]any{
		"version-2":        map[string]any{"v": 2, "kty": "EC", "crv": "P-256", "pkcs8": provider.B64(pkP256)},
		"version-0":        map[string]any{"v": 0, "kty": "EC", "crv": "P-256", "pkcs8": provider.B64(pkP256)},
		"unknown-member":   map[string]any{"v": 1, "kty": "EC", "crv": "P-256", "pkcs8": provider.B64(pkP256), "x": 1},
		"rsa-1024":         map[string]any{"v": 1, "kty": "RSA", "pkcs8": provider.B64(pk1024)},
		"crv-mismatch":     map[string]any{"v": 1, "kty": "EC", "crv": "P-384", "pkcs8": provider.B64(pkP256)},
		"kty-mismatch":     map[string]any{"v": 1, "kty": "RSA", "pkcs8": provider.B64(pkP256)},
		"p256k-with-pkcs8": map[string]any{"v": 1, "kty": "EC", "crv": "P-256K", "pkcs8": provider.B64(pkP256)},
		"p256k-d-zero":     map[string]any{"v": 1, "kty": "EC", "crv": "P-256K", "d": provider.B64(make([]byte, 32))},
		"p256k-d-short":    map[string]any{"v": 1, "kty": "EC", "crv": "P-256K", "d": provider.B64([]byte{1})},
		"oct":              map[string]any{"v": 1, "kty": "oct", "d": provider.B64([]byte{1})},
	}
	for name, doc := range bad {
		h, _ := json.Marshal(doc)
		k, err := p.Load(ctx, h)
		if k != nil || !errors.Is(err, provider.ErrInvalidKey) {
			t.Errorf("Load(%s) = %v, %v; want nil, ErrInvalidKey", name, k, err)
			continue
		}
		if strings.Contains(err.Error(), string(provider.B64(pkP256)[:16])) {
			t.Errorf("Load(%s) error shows handle bytes", name)
		}
	}
	// A well-formed hand-made handle loads.
	h, _ := json.Marshal(map[string]any{"v": 1, "kty": "EC", "crv": "P-256", "pkcs8": provider.B64(pkP256)})
	if _, err := p.Load(ctx, h); err != nil {
		t.Errorf("Load(hand-made P-256 handle) = %v", err)
	}
	if err := p.Destroy(ctx, h); err != nil {
		t.Errorf("Destroy = %v", err)
	}
}

// TestECDSANonceUniqueness: 10,000 ES256 signatures of one digest have all-distinct r and
// all verify (SECURITY-NOTES C5); ES256K, hedged RFC 6979, likewise for 2,000.
func TestECDSANonceUniqueness(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		crv provider.Curve
		alg string
		n   int
	}{{provider.P256, provider.AlgES256, 10000}, {provider.P256K, provider.AlgES256K, 2000}} {
		n := tc.n
		if testing.Short() {
			n /= 10
		}
		k, err := soft.New().Generate(ctx, provider.KeySpec{Type: provider.EC, Curve: tc.crv})
		if err != nil {
			t.Fatal(err)
		}
		digest := sha256.Sum256([]byte("one digest"))
		seen := make(map[string]bool, n)
		for i := 0; i < n; i++ {
			sig, err := k.Sign(ctx, tc.alg, digest[:])
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := k.Verify(ctx, tc.alg, digest[:], sig); !ok || err != nil {
				t.Fatalf("%s signature %d does not verify: %v", tc.alg, i, err)
			}
			r := string(sig[:32])
			if seen[r] {
				t.Fatalf("%s: r repeated after %d signatures", tc.alg, i)
			}
			seen[r] = true
		}
		t.Logf("%s: %d signatures of one digest, %d distinct r, all verify", tc.alg, n, len(seen))
	}
}

// derOf converts a raw P-256 r ‖ s signature to ASN.1 DER for crypto/ecdsa.VerifyASN1.
func derOf(sig []byte) []byte {
	n := len(sig) / 2
	enc := func(b []byte) []byte {
		b = bytes.TrimLeft(b, "\x00")
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return append([]byte{2, byte(len(b))}, b...)
	}
	body := append(enc(sig[:n]), enc(sig[n:])...)
	return append([]byte{0x30, byte(len(body))}, body...)
}
