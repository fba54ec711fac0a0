package providertest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"math/big"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/coffer-kms/coffer/internal/provider"
)

// RSAJWKWithExponent builds a consistent RSA private JWK with public exponent e (a prime),
// which crypto/rsa cannot generate: the import rules must refuse it for e, not for an
// inconsistency.
func RSAJWKWithExponent(bits, e int, kty provider.KeyType) *provider.JWK {
	one, eb := big.NewInt(1), big.NewInt(int64(e))
	for {
		p, err1 := rand.Prime(rand.Reader, bits/2)
		q, err2 := rand.Prime(rand.Reader, bits/2)
		if err1 != nil || err2 != nil {
			panic("crypto/rand failed")
		}
		pm1, qm1 := new(big.Int).Sub(p, one), new(big.Int).Sub(q, one)
		n := new(big.Int).Mul(p, q)
		if p.Cmp(q) == 0 || n.BitLen() != bits {
			continue
		}
		gcd := new(big.Int).GCD(nil, nil, pm1, qm1)
		lambda := new(big.Int).Div(new(big.Int).Mul(pm1, qm1), gcd)
		d := new(big.Int).ModInverse(eb, lambda)
		if d == nil {
			continue // e divides p−1 or q−1
		}
		return &provider.JWK{
			Kty: kty, N: n.Bytes(), E: eb.Bytes(), D: d.Bytes(), P: p.Bytes(), Q: q.Bytes(),
			DP: new(big.Int).Mod(d, pm1).Bytes(), DQ: new(big.Int).Mod(d, qm1).Bytes(),
			QI: new(big.Int).ModInverse(q, p).Bytes(),
		}
	}
}

// plus returns b + delta as a big-endian byte string.
func plus(b []byte, delta int64) []byte {
	return new(big.Int).Add(new(big.Int).SetBytes(b), big.NewInt(delta)).Bytes()
}

// fixed returns v as a size-byte big-endian string.
func fixed(v *big.Int, size int) []byte { return v.FillBytes(make([]byte, size)) }

// rejectCase is one JWK Import must refuse.
type rejectCase struct {
	name string
	jwk  *provider.JWK
	want []error
}

func (s *suite) rejectCases(t *testing.T) []rejectCase {
	t.Helper()
	rsaKty, ecKty := s.opts.ImportKty(provider.RSA), s.opts.ImportKty(provider.EC)
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	r := RSAJWK(rsa2048, rsaKty)
	ecs := map[provider.Curve]*provider.JWK{}
	for _, crv := range []provider.Curve{provider.P256, provider.P384} {
		priv, err := ecdsa.GenerateKey(nistCurve(crv), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		ecs[crv] = ECJWK(priv, ecKty, crv)
	}
	k1priv, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	k1 := K1JWK(k1priv, ecKty)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e := ecs[provider.P256]
	p256 := elliptic.P256().Params()

	mod := func(base *provider.JWK, f func(j *provider.JWK)) *provider.JWK {
		j := cloneJWK(base)
		f(j)
		return j
	}
	bad := []error{provider.ErrInvalidKey}
	badOrUnsupported := []error{provider.ErrInvalidKey, provider.ErrUnsupported}
	e1 := mod(r, func(j *provider.JWK) { j.E, j.D, j.DP, j.DQ = []byte{1}, []byte{1}, []byte{1}, []byte{1} })
	// A provider without P-256K keys may refuse every P-256K JWK as unsupported.
	badK1 := bad
	if !s.offersCurve(provider.P256K) {
		badK1 = badOrUnsupported
	}
	return []rejectCase{
		{"rsa/1024-bits", RSAJWK(rsa1024, rsaKty), bad},
		{"rsa/e-3", RSAJWKWithExponent(2048, 3, rsaKty), bad},
		{"rsa/e-1", e1, bad},
		{"rsa/e-65538-even", mod(r, func(j *provider.JWK) { j.E = []byte{1, 0, 2} }), bad},
		{"rsa/e-leading-zero", mod(r, func(j *provider.JWK) { j.E = []byte{0, 1, 0, 1} }), bad},
		{"rsa/e-2^32+65537", mod(r, func(j *provider.JWK) { j.E = []byte{1, 0, 1, 0, 1} }), bad},
		{"rsa/e-empty", mod(r, func(j *provider.JWK) { j.E = nil }), bad},
		{"rsa/n-even", mod(r, func(j *provider.JWK) { j.N = plus(j.N, 1) }), bad},
		{"rsa/n-leading-zero", mod(r, func(j *provider.JWK) { j.N = append([]byte{0}, j.N...) }), bad},
		{"rsa/n-2056-bits", mod(r, func(j *provider.JWK) { j.N = append(append([]byte(nil), j.N...), 1) }), bad},
		{"rsa/n-missing", mod(r, func(j *provider.JWK) { j.N = nil }), bad},
		{"rsa/d-missing", mod(r, func(j *provider.JWK) { j.D = nil }), bad},
		{"rsa/p-missing", mod(r, func(j *provider.JWK) { j.P = nil }), bad},
		{"rsa/q-missing", mod(r, func(j *provider.JWK) { j.Q = nil }), bad},
		{"rsa/dp-missing", mod(r, func(j *provider.JWK) { j.DP = nil }), bad},
		{"rsa/dq-missing", mod(r, func(j *provider.JWK) { j.DQ = nil }), bad},
		{"rsa/qi-missing", mod(r, func(j *provider.JWK) { j.QI = nil }), bad},
		{"rsa/crt-missing", mod(r, func(j *provider.JWK) { j.P, j.Q, j.DP, j.DQ, j.QI = nil, nil, nil, nil, nil }), bad},
		{"rsa/public-only", publicPart(r), bad},
		{"rsa/d-wrong", mod(r, func(j *provider.JWK) { j.D = plus(j.D, 2) }), bad},
		{"rsa/d-zero", mod(r, func(j *provider.JWK) { j.D = []byte{0} }), bad},
		{"rsa/d-n", mod(r, func(j *provider.JWK) { j.D = j.N }), bad},
		{"rsa/dp-wrong", mod(r, func(j *provider.JWK) { j.DP = plus(j.DP, 2) }), bad},
		{"rsa/dq-wrong", mod(r, func(j *provider.JWK) { j.DQ = plus(j.DQ, 2) }), bad},
		{"rsa/qi-wrong", mod(r, func(j *provider.JWK) { j.QI = plus(j.QI, 1) }), bad},
		{"rsa/p-q-swapped", mod(r, func(j *provider.JWK) { j.P, j.Q = j.Q, j.P }), bad},
		{"rsa/p-not-a-factor", mod(r, func(j *provider.JWK) { j.P = plus(j.P, 2) }), bad},
		{"rsa/p-one", mod(r, func(j *provider.JWK) { j.P = []byte{1}; j.Q = j.N }), bad},
		{"rsa/with-crv", mod(r, func(j *provider.JWK) { j.Crv = provider.P256 }), bad},
		{"rsa/with-x-y", mod(r, func(j *provider.JWK) { j.X, j.Y = e.X, e.Y }), bad},
		{"rsa/kty-ec", mod(r, func(j *provider.JWK) { j.Kty = ecKty }), bad},

		{"ec/off-curve", mod(e, func(j *provider.JWK) { j.Y = fixed(new(big.Int).Mod(new(big.Int).SetBytes(plus(j.Y, 1)), p256.P), 32) }), bad},
		{"ec/x-33-bytes-leading-zero", mod(e, func(j *provider.JWK) { j.X = append([]byte{0}, j.X...) }), bad},
		{"ec/y-33-bytes-leading-zero", mod(e, func(j *provider.JWK) { j.Y = append([]byte{0}, j.Y...) }), bad},
		{"ec/x-31-bytes", mod(e, func(j *provider.JWK) { j.X = j.X[1:] }), bad},
		{"ec/y-missing", mod(e, func(j *provider.JWK) { j.Y = nil }), bad},
		{"ec/x-is-p", mod(e, func(j *provider.JWK) { j.X = fixed(p256.P, 32) }), bad},
		{"ec/y-plus-p", mod(e, func(j *provider.JWK) {
			j.Y = new(big.Int).Add(new(big.Int).SetBytes(j.Y), p256.P).Bytes()
		}), bad},
		{"ec/identity", mod(e, func(j *provider.JWK) { j.X, j.Y = make([]byte, 32), make([]byte, 32) }), bad},
		{"ec/d-missing", publicPart(e), bad},
		{"ec/d-zero", mod(e, func(j *provider.JWK) { j.D = make([]byte, 32) }), bad},
		{"ec/d-n", mod(e, func(j *provider.JWK) { j.D = fixed(p256.N, 32) }), bad},
		{"ec/d-n-plus-1", mod(e, func(j *provider.JWK) { j.D = fixed(new(big.Int).Add(p256.N, big.NewInt(1)), 32) }), bad},
		{"ec/d-all-ones", mod(e, func(j *provider.JWK) { j.D = bytesOf(0xff, 32) }), bad},
		{"ec/d-33-bytes", mod(e, func(j *provider.JWK) { j.D = bytesOf(0x01, 33) }), bad},
		{"ec/d-of-another-key", mod(e, func(j *provider.JWK) { j.D = ECJWK(other, ecKty, provider.P256).D }), bad},
		{"ec/d-plus-one", mod(e, func(j *provider.JWK) { j.D = fixed(new(big.Int).SetBytes(plus(j.D, 1)), 32) }), bad},
		{"ec/crv-missing", mod(e, func(j *provider.JWK) { j.Crv = "" }), bad},
		{"ec/crv-P-384-on-P-256-key", mod(e, func(j *provider.JWK) { j.Crv = provider.P384 }), bad},
		{"ec/crv-P-256-on-P-384-key", mod(ecs[provider.P384], func(j *provider.JWK) { j.Crv = provider.P256 }), bad},
		{"ec/P-256-point-as-P-256K", mod(e, func(j *provider.JWK) { j.Crv = provider.P256K }), badK1},
		{"ec/P-256K-point-as-P-256", mod(k1, func(j *provider.JWK) { j.Crv = provider.P256 }), bad},
		{"ec/crv-P-192", mod(e, func(j *provider.JWK) { j.Crv = "P-192" }), badOrUnsupported},
		{"ec/crv-secp256k1-spelling", mod(k1, func(j *provider.JWK) { j.Crv = "secp256k1" }), badOrUnsupported},
		{"ec/with-n-e", mod(e, func(j *provider.JWK) { j.N, j.E = r.N, r.E }), bad},
		{"ec/kty-rsa", mod(e, func(j *provider.JWK) { j.Kty = rsaKty }), bad},
		{"ec/P-256K-off-curve", mod(k1, func(j *provider.JWK) { j.Y = fixed(new(big.Int).SetBytes(plus(j.Y, 1)), 32)[:32] }), badK1},
		{"ec/P-256K-d-n", mod(k1, func(j *provider.JWK) { j.D = fixed(secp256k1.Params().N, 32) }), badK1},
		{"ec/P-256K-d-zero", mod(k1, func(j *provider.JWK) { j.D = make([]byte, 32) }), badK1},
		{"ec/P-256K-d-of-another-key", mod(k1, func(j *provider.JWK) { j.D = bytesOf(0x01, 32) }), badK1},
	}
}

// testImportRejects: each JWK of the table is refused with the listed error, no key, and an
// error text that repeats none of its private bytes.
func (s *suite) testImportRejects(t *testing.T) {
	ctx := context.Background()
	for _, tc := range s.rejectCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			k, err := s.p.Import(ctx, tc.jwk)
			if k != nil || !wantErr(err, tc.want...) {
				t.Fatalf("Import(%s) = %v, %v; want nil, %v", tc.name, k, err, tc.want)
			}
			for _, secret := range [][]byte{tc.jwk.D, tc.jwk.P, tc.jwk.Q, tc.jwk.DP, tc.jwk.DQ, tc.jwk.QI} {
				if leaks(err.Error(), secret) {
					t.Errorf("Import(%s) error repeats private key bytes: %q", tc.name, err)
				}
			}
		})
	}
	if k, err := s.p.Import(ctx, nil); k != nil || !wantErr(err, provider.ErrInvalidKey) {
		t.Errorf("Import(nil) = %v, %v; want nil, ErrInvalidKey", k, err)
	}
}
