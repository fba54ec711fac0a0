package providertest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"math/big"
	"sync"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	k1ecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/coffer-kms/coffer/internal/provider"
)

// randomBytes returns n bytes from crypto/rand.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// sigAlgsFor are the offered signature algorithms that fit k.
func (s *suite) sigAlgsFor(k provider.Key) []string {
	var out []string
	for _, alg := range provider.SignatureAlgorithms() {
		if s.offr[alg] && sigFits(alg, k.Type(), k.Curve()) {
			out = append(out, alg)
		}
	}
	return out
}

// sigLen is the signature length of a key: the modulus length for RSA, 2·size for EC.
func sigLen(k provider.Key) int {
	if baseType(k.Type()) == provider.RSA {
		return k.Size() / 8
	}
	return 2 * curveSize[k.Curve()]
}

// independentVerify checks a signature with the standard library (decred for P-256K), with
// PSS salt length fixed to the hash length.
func independentVerify(pub crypto.PublicKey, alg string, digest, sig []byte) bool {
	h := sigHash[alg]
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if alg[0] == 'P' {
			return rsa.VerifyPSS(p, h, digest, sig, &rsa.PSSOptions{SaltLength: h.Size()}) == nil
		}
		return rsa.VerifyPKCS1v15(p, h, digest, sig) == nil
	case *ecdsa.PublicKey:
		n := len(sig) / 2
		return ecdsa.Verify(p, digest, new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:]))
	case *secp256k1.PublicKey:
		var r, s secp256k1.ModNScalar
		if len(sig) != 64 || r.SetByteSlice(sig[:32]) || s.SetByteSlice(sig[32:]) {
			return false
		}
		return k1ecdsa.NewSignature(&r, &s).Verify(digest, p)
	}
	return false
}

func (s *suite) testSignVerify(t *testing.T) {
	ctx := context.Background()
	for _, g := range s.keys {
		pub, err := publicKeyOf(g.key.Public())
		if err != nil {
			t.Fatalf("%s: Public() does not parse: %v", specName(g.spec), err)
		}
		for _, alg := range s.sigAlgsFor(g.key) {
			t.Run(specName(g.spec)+"/"+alg, func(t *testing.T) {
				digest := randomBytes(sigHash[alg].Size())
				sig, err := g.key.Sign(ctx, alg, digest)
				if err != nil {
					t.Fatalf("Sign(%s) = %v", alg, err)
				}
				if len(sig) != sigLen(g.key) {
					t.Fatalf("Sign(%s) gave %d bytes; want %d", alg, len(sig), sigLen(g.key))
				}
				if ok, err := g.key.Verify(ctx, alg, digest, sig); !ok || err != nil {
					t.Errorf("Verify(Sign()) = %v, %v; want true, nil", ok, err)
				}
				if !independentVerify(pub, alg, digest, sig) {
					t.Errorf("the signature does not verify with an independent implementation")
				}
				if alg[0] == 'R' { // PKCS #1 v1.5 signatures are deterministic
					if again, _ := g.key.Sign(ctx, alg, digest); string(again) != string(sig) {
						t.Errorf("two %s signatures of one digest differ", alg)
					}
				}
				tamper := []struct {
					name        string
					digest, sig []byte
				}{
					{"flipped-last-bit", digest, flipBit(sig, len(sig)*8-1)},
					{"flipped-first-bit", digest, flipBit(sig, 0)},
					{"flipped-middle-bit", digest, flipBit(sig, len(sig)*4)},
					{"flipped-digest", flipBit(digest, 3), sig},
					{"zero", digest, make([]byte, len(sig))},
					{"ones", digest, bytesOf(0xff, len(sig))},
				}
				if baseType(g.key.Type()) == provider.EC {
					n := len(sig) / 2
					tamper = append(tamper, struct {
						name        string
						digest, sig []byte
					}{"swapped-r-s", digest, append(append([]byte(nil), sig[n:]...), sig[:n]...)})
				}
				for _, tc := range tamper {
					if ok, err := g.key.Verify(ctx, alg, tc.digest, tc.sig); ok || err != nil {
						t.Errorf("Verify(%s) = %v, %v; want false, nil", tc.name, ok, err)
					}
				}
			})
		}
	}
}

func (s *suite) testDigestLength(t *testing.T) {
	ctx := context.Background()
	for _, g := range s.keys {
		for _, alg := range s.sigAlgsFor(g.key) {
			h := sigHash[alg].Size()
			for _, n := range []int{0, 1, h - 1, h + 1, 2 * h, 20} {
				digest := randomBytes(n)
				if sig, err := g.key.Sign(ctx, alg, digest); !wantErr(err, provider.ErrInvalidParameter) || sig != nil {
					t.Errorf("%s: Sign(%s, %d-byte digest) = %d bytes, %v; want nil, ErrInvalidParameter", specName(g.spec), alg, n, len(sig), err)
				}
				if ok, err := g.key.Verify(ctx, alg, digest, make([]byte, sigLen(g.key))); ok || !wantErr(err, provider.ErrInvalidParameter) {
					t.Errorf("%s: Verify(%s, %d-byte digest) = %v, %v; want false, ErrInvalidParameter", specName(g.spec), alg, n, ok, err)
				}
			}
		}
	}
}

// testSignatureShape: a signature of the wrong length (for EC: DER instead of raw r ‖ s) is
// ErrInvalidParameter, never true.
func (s *suite) testSignatureShape(t *testing.T) {
	ctx := context.Background()
	for _, g := range s.keys {
		for _, alg := range s.sigAlgsFor(g.key) {
			digest := randomBytes(sigHash[alg].Size())
			sig, err := g.key.Sign(ctx, alg, digest)
			if err != nil {
				t.Fatalf("%s: Sign(%s) = %v", specName(g.spec), alg, err)
			}
			bad := map[string][]byte{
				"empty":         nil,
				"one-byte":      {1},
				"truncated":     sig[:len(sig)-1],
				"leading-zero":  append([]byte{0}, sig...),
				"trailing-byte": append(append([]byte(nil), sig...), 0),
				"doubled":       append(append([]byte(nil), sig...), sig...),
			}
			if baseType(g.key.Type()) == provider.EC {
				n := len(sig) / 2
				der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])})
				if err != nil {
					t.Fatal(err)
				}
				bad["der"] = der
			}
			for name, b := range bad {
				ok, err := g.key.Verify(ctx, alg, digest, b)
				if ok || (len(b) != len(sig) && !wantErr(err, provider.ErrInvalidParameter)) {
					t.Errorf("%s: Verify(%s, %s signature of %d bytes) = %v, %v; want false, ErrInvalidParameter", specName(g.spec), alg, name, len(b), ok, err)
				}
			}
		}
	}
}

// testNonceUniqueness: ECDSA signatures of one digest never repeat r (SECURITY-NOTES C5
// asks 10⁴; the suite does 200 per key to stay fast, the providers' own tests do more).
func (s *suite) testNonceUniqueness(t *testing.T) {
	ctx := context.Background()
	for _, g := range s.keys {
		if baseType(g.key.Type()) != provider.EC || !s.offr[curveAlg[g.key.Curve()]] {
			continue
		}
		alg := curveAlg[g.key.Curve()]
		digest := randomBytes(sigHash[alg].Size())
		seen := map[string]bool{}
		for i := 0; i < 200; i++ {
			sig, err := g.key.Sign(ctx, alg, digest)
			if err != nil {
				t.Fatalf("%s: Sign = %v", specName(g.spec), err)
			}
			r := string(sig[:len(sig)/2])
			if seen[r] {
				t.Fatalf("%s: %s repeated r after %d signatures of one digest", specName(g.spec), alg, i)
			}
			seen[r] = true
		}
	}
}

// testConcurrent signs and verifies with one key from many goroutines (run with -race).
func (s *suite) testConcurrent(t *testing.T) {
	ctx := context.Background()
	for _, g := range s.keys {
		algs := s.sigAlgsFor(g.key)
		if len(algs) == 0 {
			continue
		}
		alg := algs[0]
		var wg sync.WaitGroup
		errs := make(chan string, 64)
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 4; i++ {
					digest := randomBytes(sigHash[alg].Size())
					sig, err := g.key.Sign(ctx, alg, digest)
					if err != nil {
						errs <- "Sign: " + err.Error()
						return
					}
					if ok, err := g.key.Verify(ctx, alg, digest, sig); !ok || err != nil {
						errs <- "Verify failed"
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Errorf("%s: concurrent %s: %s", specName(g.spec), alg, e)
		}
	}
}

// flipBit returns a copy of b with bit i (0 = most significant bit of b[0]) flipped.
func flipBit(b []byte, i int) []byte {
	out := append([]byte(nil), b...)
	out[i/8] ^= 0x80 >> (i % 8)
	return out
}

// bytesOf returns n bytes of value v.
func bytesOf(v byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = v
	}
	return b
}
