package providertest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"math/big"
	"reflect"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	k1ecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/coffer-kms/coffer/internal/provider"
)

// RSAJWK returns the private JWK of an RSA key (CRT members included), with kty.
func RSAJWK(priv *rsa.PrivateKey, kty provider.KeyType) *provider.JWK {
	return mustJWK(priv, kty)
}

// ECJWK returns the private JWK of a NIST-curve key, coordinates and d of the field size.
func ECJWK(priv *ecdsa.PrivateKey, kty provider.KeyType, crv provider.Curve) *provider.JWK {
	j := mustJWK(priv, kty)
	j.Crv = crv
	return j
}

// mustJWK is provider.PrivateJWK with kty, panicking on keys the tests never make.
func mustJWK(priv crypto.PrivateKey, kty provider.KeyType) *provider.JWK {
	j, err := provider.PrivateJWK(priv)
	if err != nil {
		panic(err)
	}
	j.Kty = kty
	return j
}

// K1JWK returns the private JWK of a secp256k1 key.
func K1JWK(priv *secp256k1.PrivateKey, kty provider.KeyType) *provider.JWK {
	pt := priv.PubKey().SerializeUncompressed()
	return &provider.JWK{Kty: kty, Crv: provider.P256K, X: pt[1:33], Y: pt[33:], D: priv.Serialize()}
}

// testKeys generates the private JWKs the import tests use: RSA 2048 (3072 and 4096
// unless -short) and one key per curve the provider offers.
func (s *suite) testKeys(t *testing.T) map[string]*provider.JWK {
	t.Helper()
	rsaKty, ecKty := s.opts.ImportKty(provider.RSA), s.opts.ImportKty(provider.EC)
	out := map[string]*provider.JWK{}
	sizes := []int{2048, 3072, 4096}
	if testing.Short() {
		sizes = sizes[:1]
	}
	for _, bits := range sizes {
		priv, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		out["RSA-"+itoa(bits)] = RSAJWK(priv, rsaKty)
	}
	for _, crv := range []provider.Curve{provider.P256, provider.P384, provider.P521} {
		if !s.offersCurve(crv) {
			continue
		}
		priv, err := ecdsa.GenerateKey(nistCurve(crv), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		out["EC-"+string(crv)] = ECJWK(priv, ecKty, crv)
	}
	if s.offersCurve(provider.P256K) {
		k1, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		out["EC-P-256K"] = K1JWK(k1, ecKty)
	}
	return out
}

// offersCurve reports whether the provider generates keys on crv (Options.Specs): the
// import tests import keys on the curves a provider generates, and those only.
func (s *suite) offersCurve(crv provider.Curve) bool {
	for _, spec := range s.opts.Specs {
		if spec.Curve == crv {
			return true
		}
	}
	return false
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

// cloneJWK deep-copies a JWK.
func cloneJWK(j *provider.JWK) *provider.JWK {
	c := *j
	for _, f := range []*provider.B64{&c.N, &c.E, &c.D, &c.DP, &c.DQ, &c.QI, &c.P, &c.Q, &c.K, &c.T, &c.X, &c.Y} {
		if *f != nil {
			*f = append(provider.B64(nil), (*f)...)
		}
	}
	c.KeyOps = append([]string(nil), j.KeyOps...)
	return &c
}

// publicPart is the JWK with its private members removed.
func publicPart(j *provider.JWK) *provider.JWK {
	c := cloneJWK(j)
	c.D, c.P, c.Q, c.DP, c.DQ, c.QI, c.K = nil, nil, nil, nil, nil, nil, nil
	return c
}

// testImport imports keys made by the standard library (decred for P-256K) and checks that
// they work both ways with the original: signatures cross-verify, standard-library
// ciphertexts decrypt, the public JWK matches, Import leaves its input alone, and the
// handle round-trips.
func (s *suite) testImport(t *testing.T) {
	ctx := context.Background()
	for name, j := range s.testKeys(t) {
		t.Run(name, func(t *testing.T) {
			in := cloneJWK(j)
			k, err := s.p.Import(ctx, in)
			if err != nil {
				t.Fatalf("Import = %v; want a key", err)
			}
			if !reflect.DeepEqual(in, j) {
				t.Errorf("Import changed its input JWK")
			}
			if k.Type() != j.Kty {
				t.Errorf("Type() = %q; want %q", k.Type(), j.Kty)
			}
			if !jwkEqual(k.Public(), publicPart(j)) {
				t.Errorf("Public() differs from the imported JWK's public members")
			}
			checkPublicJWK(t, k.Public(), k)
			pub, err := publicKeyOf(publicPart(j))
			if err != nil {
				t.Fatal(err)
			}
			for _, alg := range s.sigAlgsFor(k) {
				digest := randomBytes(sigHash[alg].Size())
				sig, err := k.Sign(ctx, alg, digest)
				if err != nil || !independentVerify(pub, alg, digest, sig) {
					t.Errorf("%s: the imported key's signature does not verify with the original public key (%v)", alg, err)
				}
				if ok, err := k.Verify(ctx, alg, digest, stdSign(t, j, alg, digest, sigHash[alg].Size())); !ok || err != nil {
					t.Errorf("%s: Verify(standard library signature) = %v, %v", alg, ok, err)
				}
				if alg[0] == 'P' {
					// RFC 7518 §3.5 fixes the salt length to the hash length: other salts fail.
					for _, salt := range []int{0, 20, sigHash[alg].Size() - 1, sigHash[alg].Size() + 1} {
						if ok, err := k.Verify(ctx, alg, digest, stdSign(t, j, alg, digest, salt)); ok || err != nil {
							t.Errorf("%s: Verify(signature with salt length %d (0: maximal)) = %v, %v; want false, nil", alg, salt, ok, err)
						}
					}
				}
			}
			for _, alg := range s.encAlgsFor(k) {
				msg := randomBytes(32)
				ct, err := stdEncrypt(pub.(*rsa.PublicKey), alg, msg, nil)
				if err != nil {
					t.Fatal(err)
				}
				if pt, err := k.Decrypt(ctx, provider.EncryptParams{Algorithm: alg, Value: ct}); err != nil || !bytes.Equal(pt, msg) {
					t.Errorf("%s: Decrypt(standard library ciphertext) = %v", alg, err)
				}
			}
			loaded, err := s.p.Load(ctx, k.Handle())
			if err != nil || !jwkEqual(loaded.Public(), k.Public()) {
				t.Errorf("Load(Handle()) of an imported key = %v", err)
			}
		})
	}
}

// stdSign signs with the standard library (decred's own signer for P-256K) from the
// private JWK; PSS signatures get a pssSalt-byte salt.
func stdSign(t *testing.T, j *provider.JWK, alg string, digest []byte, pssSalt int) []byte {
	t.Helper()
	h := sigHash[alg]
	switch baseType(j.Kty) {
	case provider.RSA:
		priv := &rsa.PrivateKey{
			PublicKey: rsa.PublicKey{N: new(big.Int).SetBytes(j.N), E: int(new(big.Int).SetBytes(j.E).Int64())},
			D:         new(big.Int).SetBytes(j.D),
			Primes:    []*big.Int{new(big.Int).SetBytes(j.P), new(big.Int).SetBytes(j.Q)},
		}
		priv.Precompute()
		var sig []byte
		var err error
		if alg[0] == 'P' {
			sig, err = rsa.SignPSS(rand.Reader, priv, h, digest, &rsa.PSSOptions{SaltLength: pssSalt})
		} else {
			sig, err = rsa.SignPKCS1v15(nil, priv, h, digest)
		}
		if err != nil {
			t.Fatal(err)
		}
		return sig
	case provider.EC:
		if j.Crv == provider.P256K {
			var d secp256k1.ModNScalar
			d.SetByteSlice(j.D)
			sig := k1ecdsa.Sign(secp256k1.NewPrivateKey(&d), digest)
			r, s := sig.R(), sig.S()
			out := make([]byte, 64)
			r.PutBytesUnchecked(out[:32])
			s.PutBytesUnchecked(out[32:])
			return out
		}
		priv, err := ecdsa.ParseRawPrivateKey(nistCurve(j.Crv), j.D)
		if err != nil {
			t.Fatal(err)
		}
		r, s, err := ecdsa.Sign(rand.Reader, priv, digest)
		if err != nil {
			t.Fatal(err)
		}
		n := curveSize[j.Crv]
		sig := make([]byte, 2*n)
		r.FillBytes(sig[:n])
		s.FillBytes(sig[n:])
		return sig
	}
	return nil
}
