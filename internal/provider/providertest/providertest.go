// Package providertest is the conformance suite of the crypto-provider seam: every
// provider.Provider (the software one, and the PKCS#11 one against SoftHSM2) runs Run and
// must pass it unchanged. It checks generation, the public JWK, sign/verify for every
// algorithm (cross-checked with an independent implementation: the standard library, and
// decred for secp256k1), tampering, digest and signature lengths, encrypt/decrypt and
// wrap/unwrap, plaintext limits, the single ErrDecrypt over corrupted ciphertexts (the
// Bleichenbacher and Manger classes built by textbook RSA), the wrong-algorithm matrix of
// Key Vault's table, handles, and import with Key Vault's rules.
//
// The suite keeps its own copy of Key Vault's algorithm table (table.go) instead of asking
// the provider, so a provider cannot pass by agreeing with itself.
//
// This package must not import net/http, a storage backend or a concrete provider, and uses
// crypto/rand only (no math/rand, SECURITY-NOTES C7).
package providertest

import (
	"context"
	"crypto/fips140"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/provider"
)

// Options says what a provider offers. The zero value describes the software provider.
type Options struct {
	// Specs are the key specs Generate must accept; nil means SoftwareSpecs(). RSA specs
	// with Size > 2048 are skipped under -short.
	Specs []provider.KeySpec
	// Unsupported are specs Generate must refuse with provider.ErrUnsupported; nil means
	// UnsupportedSoftwareSpecs().
	Unsupported []provider.KeySpec
	// Algorithms are the algorithm names the provider offers; nil means DefaultAlgorithms().
	// An algorithm that fits a key by Key Vault's table but is not listed must be refused
	// with provider.ErrUnsupported.
	Algorithms []string
	// NoImport says the provider does not import JWKs; the import tests are skipped.
	NoImport bool
	// ImportKty maps the base key type (RSA, EC) to the kty an imported JWK carries and
	// the imported key reports (e.g. RSA-HSM for an HSM provider); nil keeps RSA and EC.
	ImportKty func(provider.KeyType) provider.KeyType
	// DestroyRemoves says Destroy removes the key material, so Load of a destroyed handle
	// must fail (an HSM provider); the software provider's Destroy has nothing to remove.
	DestroyRemoves bool
}

// SoftwareSpecs are the specs the software provider generates: RSA 2048/3072/4096 and EC
// P-256, P-384, P-521, P-256K.
func SoftwareSpecs() []provider.KeySpec {
	return []provider.KeySpec{
		{Type: provider.RSA, Size: 2048},
		{Type: provider.RSA, Size: 3072},
		{Type: provider.RSA, Size: 4096, PublicExponent: 65537},
		{Type: provider.EC, Curve: provider.P256},
		{Type: provider.EC, Curve: provider.P384},
		{Type: provider.EC, Curve: provider.P521},
		{Type: provider.EC, Curve: provider.P256K},
	}
}

// UnsupportedSoftwareSpecs are specs the software provider refuses with ErrUnsupported:
// weak or odd RSA sizes and exponents, unknown curves, oct and every -HSM type.
func UnsupportedSoftwareSpecs() []provider.KeySpec {
	return []provider.KeySpec{
		{Type: provider.RSA, Size: 1024},
		{Type: provider.RSA, Size: 2047},
		{Type: provider.RSA, Size: 8192},
		{Type: provider.RSA},
		{Type: provider.RSA, Size: 2048, PublicExponent: 3},
		{Type: provider.RSA, Size: 2048, PublicExponent: 65539},
		{Type: provider.EC},
		{Type: provider.EC, Curve: "P-192"},
		{Type: provider.EC, Curve: "secp256k1"},
		{Type: provider.EC, Curve: "p-256"},
		{Type: provider.Oct, Size: 256},
		{Type: provider.OctHSM, Size: 256},
		{Type: provider.RSAHSM, Size: 2048},
		{Type: provider.ECHSM, Curve: provider.P256},
		{Type: "OKP"},
		{Type: ""},
	}
}

// DefaultAlgorithms are Key Vault's RSA and EC algorithms except RSNULL (never offered,
// SECURITY-NOTES H4). In FIPS 140-only mode RSA1_5 and RSA-OAEP (SHA-1) are left out (F7).
func DefaultAlgorithms() []string {
	algs := []string{
		provider.AlgRS256, provider.AlgRS384, provider.AlgRS512,
		provider.AlgPS256, provider.AlgPS384, provider.AlgPS512,
		provider.AlgES256, provider.AlgES384, provider.AlgES512, provider.AlgES256K,
		provider.AlgRSAOAEP256,
	}
	if !fips140.Enforced() {
		algs = append(algs, provider.AlgRSA15, provider.AlgRSAOAEP)
	}
	return algs
}

// suite is one run of the conformance tests.
type suite struct {
	p    provider.Provider
	opts Options
	offr map[string]bool
	keys []genKey // one generated key per spec, in Specs order
}

// genKey is a generated key with the spec that made it.
type genKey struct {
	spec provider.KeySpec
	key  provider.Key
}

// Run runs the conformance suite against p.
func Run(t *testing.T, p provider.Provider, opts Options) {
	if opts.Specs == nil {
		opts.Specs = SoftwareSpecs()
	}
	if opts.Unsupported == nil {
		opts.Unsupported = UnsupportedSoftwareSpecs()
	}
	if opts.Algorithms == nil {
		opts.Algorithms = DefaultAlgorithms()
	}
	if opts.ImportKty == nil {
		opts.ImportKty = func(k provider.KeyType) provider.KeyType { return k }
	}
	s := &suite{p: p, opts: opts, offr: map[string]bool{}}
	for _, a := range opts.Algorithms {
		s.offr[a] = true
	}
	if p.Name() == "" {
		t.Errorf("Name() is empty")
	}
	t.Run("Generate", s.testGenerate)
	if len(s.keys) == 0 {
		t.Fatal("no key could be generated: the remaining tests need one")
	}
	t.Run("Unsupported", s.testUnsupported)
	t.Run("Public", s.testPublic)
	t.Run("SignVerify", s.testSignVerify)
	t.Run("DigestLength", s.testDigestLength)
	t.Run("SignatureShape", s.testSignatureShape)
	t.Run("WrongAlgorithm", s.testWrongAlgorithm)
	t.Run("EncryptDecrypt", s.testEncryptDecrypt)
	t.Run("PlaintextLimits", s.testPlaintextLimits)
	t.Run("UniformDecryptError", s.testUniformDecryptError)
	t.Run("Handle", s.testHandle)
	t.Run("NonceUniqueness", s.testNonceUniqueness)
	t.Run("Concurrent", s.testConcurrent)
	if opts.NoImport {
		return
	}
	t.Run("Import", s.testImport)
	t.Run("ImportRejects", s.testImportRejects)
}

// specName names a spec for subtest names: RSA-2048, EC-P-256, RSA-2048-e3.
func specName(s provider.KeySpec) string {
	var b strings.Builder
	b.WriteString(string(s.Type))
	if s.Type == "" {
		b.WriteString("none")
	}
	if s.Size != 0 {
		fmt.Fprintf(&b, "-%d", s.Size)
	}
	if s.Curve != "" {
		fmt.Fprintf(&b, "-%s", s.Curve)
	}
	if s.PublicExponent != 0 {
		fmt.Fprintf(&b, "-e%d", s.PublicExponent)
	}
	return b.String()
}

func (s *suite) testGenerate(t *testing.T) {
	ctx := context.Background()
	for _, spec := range s.opts.Specs {
		t.Run(specName(spec), func(t *testing.T) {
			if baseType(spec.Type) == provider.RSA && spec.Size > 2048 && testing.Short() {
				t.Skip("RSA > 2048 bits skipped in -short mode")
			}
			k, err := s.p.Generate(ctx, spec)
			if err != nil {
				t.Fatalf("Generate(%s) = %v; want a key", specName(spec), err)
			}
			if k.Type() != spec.Type {
				t.Errorf("Type() = %q; want %q", k.Type(), spec.Type)
			}
			switch baseType(spec.Type) {
			case provider.RSA:
				if k.Size() != spec.Size || k.Curve() != "" {
					t.Errorf("Size(), Curve() = %d, %q; want %d, \"\"", k.Size(), k.Curve(), spec.Size)
				}
			case provider.EC:
				if k.Curve() != spec.Curve || k.Size() != curveBits[spec.Curve] {
					t.Errorf("Curve(), Size() = %q, %d; want %q, %d", k.Curve(), k.Size(), spec.Curve, curveBits[spec.Curve])
				}
			}
			s.keys = append(s.keys, genKey{spec, k})
		})
	}
	// Two generations of one spec give different keys.
	if len(s.keys) > 0 {
		k2, err := s.p.Generate(ctx, s.keys[0].spec)
		if err != nil {
			t.Fatalf("second Generate(%s) = %v", specName(s.keys[0].spec), err)
		}
		if jwkEqual(k2.Public(), s.keys[0].key.Public()) {
			t.Errorf("two Generate(%s) calls returned the same public key", specName(s.keys[0].spec))
		}
	}
	// A cancelled context is honoured before any work.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.p.Generate(cctx, s.opts.Specs[0]); !errors.Is(err, context.Canceled) {
		t.Errorf("Generate with a cancelled context = %v; want context.Canceled", err)
	}
}

func (s *suite) testUnsupported(t *testing.T) {
	for _, spec := range s.opts.Unsupported {
		k, err := s.p.Generate(context.Background(), spec)
		if !errors.Is(err, provider.ErrUnsupported) || k != nil {
			t.Errorf("Generate(%s) = %v, %v; want nil, ErrUnsupported", specName(spec), k, err)
		}
	}
}

func (s *suite) testPublic(t *testing.T) {
	for _, g := range s.keys {
		t.Run(specName(g.spec), func(t *testing.T) {
			j := g.key.Public()
			if j == nil {
				t.Fatal("Public() = nil")
			}
			checkPublicJWK(t, j, g.key)
			// Public returns fresh bytes: changing them does not change the key.
			member := j.N
			if len(member) == 0 {
				member = j.X
			}
			saved := append([]byte(nil), member...)
			for i := range member {
				member[i] ^= 0xff
			}
			again := g.key.Public()
			got := again.N
			if len(got) == 0 {
				got = again.X
			}
			if string(got) != string(saved) {
				t.Errorf("Public() shares its bytes with the key: changing them changed the key")
			}
		})
	}
}

// checkPublicJWK checks a key's public JWK: no private members, kty/crv matching the key,
// n of the key size with e = 65537, or x and y of the field size forming a point on the
// curve.
func checkPublicJWK(t *testing.T, j *provider.JWK, k provider.Key) {
	t.Helper()
	if j.Private() || len(j.D) > 0 || len(j.P) > 0 || len(j.Q) > 0 || len(j.DP) > 0 || len(j.DQ) > 0 || len(j.QI) > 0 || len(j.K) > 0 {
		t.Errorf("Public() has private members")
	}
	if j.Kty != k.Type() {
		t.Errorf("Public().Kty = %q; want %q", j.Kty, k.Type())
	}
	switch baseType(k.Type()) {
	case provider.RSA:
		if len(j.N) != k.Size()/8 || j.N[0] == 0 {
			t.Errorf("Public().N is %d bytes; want %d without a leading zero", len(j.N), k.Size()/8)
		}
		if string(j.E) != "\x01\x00\x01" {
			t.Errorf("Public().E = %x; want 010001", []byte(j.E))
		}
		if j.Crv != "" || len(j.X) > 0 || len(j.Y) > 0 {
			t.Errorf("Public() of an RSA key has EC members")
		}
	case provider.EC:
		size := curveSize[k.Curve()]
		if j.Crv != k.Curve() || len(j.X) != size || len(j.Y) != size {
			t.Errorf("Public() = crv %q, x %d bytes, y %d bytes; want %q, %d, %d", j.Crv, len(j.X), len(j.Y), k.Curve(), size, size)
		}
		if _, err := publicKeyOf(j); err != nil {
			t.Errorf("Public() is not a valid point: %v", err)
		}
		if len(j.N) > 0 || len(j.E) > 0 {
			t.Errorf("Public() of an EC key has RSA members")
		}
	}
}

// wantErr reports whether err matches one of the sentinel errors.
func wantErr(err error, targets ...error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
