package pkcs11

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"errors"
	"fmt"
	"math/big"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/provider/providertest"
)

// TestImportIntoToken: a private RSA-HSM or EC-HSM JWK (plain RSA and EC too) imports into
// a token object that is sensitive and not extractable, whose secret attributes do not read
// out, that signs as the original key, and that Load finds again; the import's wrapping key
// is gone afterwards (the token holds exactly the key pair more). With SecurityDomain and an
// SO PIN the object is extractable only under a trusted wrapping key, as generated pool keys
// are. Refused imports leave no object in the token.
func TestImportIntoToken(t *testing.T) {
	ctx := context.Background()
	p := newToken(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		jwk    *provider.JWK
		want   provider.KeyType
		pub    crypto.PublicKey
		secret []uint
	}{
		{"rsa-hsm", providertest.RSAJWK(rsaKey, provider.RSAHSM), provider.RSAHSM, &rsaKey.PublicKey, []uint{p11.CKA_PRIVATE_EXPONENT, p11.CKA_PRIME_1, p11.CKA_PRIME_2}},
		{"rsa-plain", providertest.RSAJWK(rsaKey, provider.RSA), provider.RSAHSM, &rsaKey.PublicKey, []uint{p11.CKA_PRIVATE_EXPONENT}},
		{"ec-hsm", providertest.ECJWK(ecKey, provider.ECHSM, provider.P384), provider.ECHSM, &ecKey.PublicKey, []uint{p11.CKA_VALUE}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := objectCount(t, p)
			k, err := p.Import(ctx, tc.jwk)
			if err != nil {
				t.Fatalf("Import = %v", err)
			}
			if k.Type() != tc.want {
				t.Errorf("Type() = %s; want %s", k.Type(), tc.want)
			}
			if n := objectCount(t, p); n != before+2 {
				t.Errorf("the token holds %d objects more after the import; want 2 (the key pair, no wrapping key)", n-before)
			}
			checkProtected(t, p, p11.CKO_PRIVATE_KEY, k.(*Key).id, tc.secret, false)
			loaded, err := p.Load(ctx, k.Handle())
			if err != nil {
				t.Fatalf("Load(Handle()) = %v", err)
			}
			signsAs(t, loaded, tc.pub)
		})
	}

	// An oct JWK: an AES key object of the generated keys' template (sensitive, not
	// extractable, CKA_VALUE unreadable), the key given (its GCM ciphertext opens here), and
	// no wrapping key left behind.
	for _, size := range []int{16, 24, 32} {
		t.Run(fmt.Sprintf("oct-%d", 8*size), func(t *testing.T) {
			value := make([]byte, size)
			rand.Read(value)
			before := objectCount(t, p)
			k, err := p.Import(ctx, &provider.JWK{Kty: provider.Oct, K: value})
			if err != nil {
				t.Fatalf("Import = %v", err)
			}
			if k.Type() != provider.OctHSM || k.Size() != 8*size {
				t.Errorf("Type(), Size() = %s, %d; want oct-HSM, %d", k.Type(), k.Size(), 8*size)
			}
			if n := objectCount(t, p); n != before+1 {
				t.Errorf("the token holds %d objects more after the import; want 1 (the key, no wrapping key)", n-before)
			}
			checkProtected(t, p, p11.CKO_SECRET_KEY, k.(*aesKey).id, []uint{p11.CKA_VALUE}, false)
			loaded, err := p.Load(ctx, k.Handle())
			if err != nil {
				t.Fatalf("Load(Handle()) = %v", err)
			}
			alg := fmt.Sprintf("A%dGCM", 8*size)
			r, err := loaded.Encrypt(ctx, provider.EncryptParams{Algorithm: alg, Value: []byte("given in clear")})
			if err != nil {
				t.Fatalf("Encrypt(%s) = %v", alg, err)
			}
			block, _ := aes.NewCipher(value)
			gcm, _ := cipher.NewGCM(block)
			if pt, err := gcm.Open(nil, r.IV, append(r.Value, r.Tag...), r.AAD); err != nil || string(pt) != "given in clear" {
				t.Errorf("the token's ciphertext opens with the given key as %q, %v", pt, err)
			}
		})
	}

	// Bad keys are refused before the token sees anything; nothing is left behind.
	before := objectCount(t, p)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	badD := providertest.RSAJWK(rsaKey, provider.RSAHSM)
	badD.DP = providertest.RSAJWK(other, provider.RSAHSM).DP
	k1 := &provider.JWK{Kty: provider.ECHSM, Crv: provider.P256K, X: make([]byte, 32), Y: make([]byte, 32), D: make([]byte, 32)}
	for name, tc := range map[string]struct {
		jwk  *provider.JWK
		want error
	}{
		"inconsistent-crt": {badD, provider.ErrInvalidKey},
		"p-256k":           {k1, provider.ErrUnsupported},
		"oct-15-bytes":     {&provider.JWK{Kty: provider.OctHSM, K: make([]byte, 15)}, provider.ErrInvalidKey},
		"oct-no-k":         {&provider.JWK{Kty: provider.OctHSM}, provider.ErrInvalidKey},
		"oct-with-n":       {&provider.JWK{Kty: provider.OctHSM, K: make([]byte, 32), N: make([]byte, 256)}, provider.ErrInvalidKey},
		"oct-key_hsm":      {&provider.JWK{Kty: provider.OctHSM, T: []byte("{}")}, provider.ErrUnsupported},
		"key_hsm":          {&provider.JWK{Kty: provider.RSAHSM, T: []byte("{}")}, provider.ErrUnsupported},
		"public-only":      {publicJWK(providertest.RSAJWK(rsaKey, provider.RSAHSM)), provider.ErrInvalidKey},
		"nil":              {nil, provider.ErrInvalidKey},
	} {
		if k, err := p.Import(ctx, tc.jwk); k != nil || !errors.Is(err, tc.want) {
			t.Errorf("Import(%s) = %v, %v; want nil, %v", name, k, err, tc.want)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.Import(cancelled, providertest.RSAJWK(rsaKey, provider.RSAHSM)); !errors.Is(err, context.Canceled) {
		t.Errorf("Import(cancelled context) = %v; want context.Canceled", err)
	}
	if n := objectCount(t, p); n != before {
		t.Errorf("refused imports left %d objects in the token", n-before)
	}

	// A vault certificate's key with an SO PIN: bound to trusted wrapping keys.
	q := newToken(t, withSO)
	jwk := providertest.ECJWK(ecKey, provider.ECHSM, provider.P384)
	jwk.SecurityDomain = true
	k, err := q.Import(ctx, jwk)
	if err != nil {
		t.Fatalf("Import(SecurityDomain) = %v", err)
	}
	attrs := readAttrs(t, q, p11.CKO_PRIVATE_KEY, k.(*Key).id, p11.CKA_SENSITIVE, p11.CKA_EXTRACTABLE, p11.CKA_WRAP_WITH_TRUSTED)
	if !isTrue(attrs[0].Value) || !isTrue(attrs[1].Value) || !isTrue(attrs[2].Value) {
		t.Errorf("CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_WRAP_WITH_TRUSTED = %v %v %v; want true, true, true",
			isTrue(attrs[0].Value), isTrue(attrs[1].Value), isTrue(attrs[2].Value))
	}
	id, _ := newDomainKey(t, q)
	w, err := q.WrapForDomain(ctx, k.Handle(), id)
	if err != nil {
		t.Fatalf("WrapForDomain(imported key) = %v", err)
	}
	back, err := q.UnwrapForDomain(ctx, "", id, k.Handle(), w)
	if err != nil {
		t.Fatalf("UnwrapForDomain(imported key) = %v", err)
	}
	signsAs(t, back, &ecKey.PublicKey)
}

// publicJWK is j without its private members.
func publicJWK(j *provider.JWK) *provider.JWK {
	c := *j
	c.D, c.P, c.Q, c.DP, c.DQ, c.QI = nil, nil, nil, nil, nil, nil
	return &c
}

// signsAs checks that k signs a digest that verifies under pub with the standard library.
func signsAs(t *testing.T, k provider.Key, pub crypto.PublicKey) {
	t.Helper()
	digest := sha512.Sum384([]byte("imported"))
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		sig, err := k.Sign(context.Background(), provider.AlgPS384, digest[:])
		if err != nil || rsa.VerifyPSS(pub, crypto.SHA384, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) != nil {
			t.Errorf("the imported key's PS384 signature does not verify under the original key (%v)", err)
		}
	case *ecdsa.PublicKey:
		sig, err := k.Sign(context.Background(), provider.AlgES384, digest[:])
		if err != nil || len(sig) != 96 || !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:48]), new(big.Int).SetBytes(sig[48:])) {
			t.Errorf("the imported key's ES384 signature does not verify under the original key (%v)", err)
		}
	}
}
