package pkcs11

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"math/big"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/provider/pkcs11/softhsm"
	"github.com/coffer-kms/coffer/internal/provider/providertest"
)

const softhsmLib = softhsm.Library

// testSOPIN is the security officer PIN of newToken's tokens.
const testSOPIN = "5678"

// newToken creates a fresh SoftHSM2 token in a temporary directory and opens a Provider on
// it (its Config changed by opts); it skips the test when SoftHSM2 is not installed.
func newToken(tb testing.TB, opts ...func(*Config)) *Provider {
	tb.Helper()
	tok, err := softhsm.Init(tb.TempDir(), "1234", testSOPIN, "coffer-test")
	if errors.Is(err, softhsm.ErrNotInstalled) {
		tb.Skipf("%v; install opensc too to run the pkcs11 tests", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Setenv("SOFTHSM2_CONF", tok.Conf)
	cfg := Config{Library: softhsmLib, TokenLabel: "coffer-test", PIN: "1234"}
	for _, o := range opts {
		o(&cfg)
	}
	p, err := Open(cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = p.Close() })
	return p
}

func hsmSpecs() []provider.KeySpec {
	return []provider.KeySpec{
		{Type: provider.RSAHSM, Size: 2048},
		{Type: provider.RSAHSM, Size: 3072},
		{Type: provider.RSAHSM, Size: 4096, PublicExponent: 65537},
		{Type: provider.ECHSM, Curve: provider.P256},
		{Type: provider.ECHSM, Curve: provider.P384},
		{Type: provider.ECHSM, Curve: provider.P521},
	}
}

func unsupportedSpecs() []provider.KeySpec {
	return []provider.KeySpec{
		{Type: provider.RSAHSM, Size: 1024},
		{Type: provider.RSAHSM, Size: 2047},
		{Type: provider.RSAHSM, Size: 8192},
		{Type: provider.RSAHSM},
		{Type: provider.RSAHSM, Size: 2048, PublicExponent: 3},
		{Type: provider.RSA, Size: 1024},
		{Type: provider.ECHSM},
		{Type: provider.ECHSM, Curve: "P-192"},
		{Type: provider.ECHSM, Curve: provider.P256K},
		{Type: provider.EC, Curve: provider.P256K},
		{Type: provider.ECHSM, Curve: "p-256"},
		{Type: provider.OctHSM, Size: 512},
		{Type: provider.OctHSM},
		{Type: provider.Oct, Size: 64},
		{Type: "OKP"},
		{Type: ""},
	}
}

func hsmAlgorithms(p *Provider) []string {
	algs := []string{
		provider.AlgRS256, provider.AlgRS384, provider.AlgRS512,
		provider.AlgPS256, provider.AlgPS384, provider.AlgPS512,
		provider.AlgES256, provider.AlgES384, provider.AlgES512,
	}
	if p.OffersOAEP256() {
		algs = append(algs, provider.AlgRSAOAEP256)
	}
	for _, a := range providertest.DefaultAlgorithms() {
		if a == provider.AlgRSA15 || a == provider.AlgRSAOAEP {
			algs = append(algs, a)
		}
	}
	return algs
}

func TestConformance(t *testing.T) {
	p := newToken(t)
	t.Logf("token decrypts RSA-OAEP-256: %v", p.OffersOAEP256())
	providertest.Run(t, p, providertest.Options{
		Specs:          hsmSpecs(),
		Unsupported:    unsupportedSpecs(),
		Algorithms:     hsmAlgorithms(p),
		ImportKty:      func(k provider.KeyType) provider.KeyType { return k + "-HSM" },
		DestroyRemoves: true,
	})
}

// TestPlainSpecs: plain RSA and EC specs make the same token keys, reported as -HSM (and
// plain RSA and EC JWKs import as such: TestImportIntoToken); AES keys are not imported.
func TestPlainSpecs(t *testing.T) {
	p := newToken(t)
	ctx := context.Background()
	for spec, want := range map[provider.KeySpec]provider.KeyType{
		{Type: provider.RSA, Size: 2048}:          provider.RSAHSM,
		{Type: provider.EC, Curve: provider.P256}: provider.ECHSM,
	} {
		k, err := p.Generate(ctx, spec)
		if err != nil {
			t.Fatalf("Generate(%v) = %v", spec, err)
		}
		if k.Type() != want || k.Public().Kty != want {
			t.Errorf("Generate(%v).Type() = %s; want %s", spec, k.Type(), want)
		}
	}
	if k, err := p.Import(ctx, &provider.JWK{Kty: provider.Oct, K: make([]byte, 32)}); err != nil || k.Type() != provider.OctHSM {
		t.Errorf("Import(oct) = %v; want an oct-HSM key", err)
	}
}

// TestKeyNotExtractable reads the private key object's attributes: sensitive, never
// extractable, and its secret values unreadable (SECURITY-NOTES H1); the handle holds no
// private exponent.
func TestKeyNotExtractable(t *testing.T) {
	p := newToken(t)
	ctx := context.Background()
	for _, spec := range []provider.KeySpec{{Type: provider.RSAHSM, Size: 2048}, {Type: provider.ECHSM, Curve: provider.P256}} {
		k, err := p.Generate(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		key := k.(*Key)
		secret := []uint{p11.CKA_VALUE}
		if spec.Type == provider.RSAHSM {
			secret = []uint{p11.CKA_PRIVATE_EXPONENT, p11.CKA_PRIME_1, p11.CKA_PRIME_2}
		}
		checkProtected(t, p, p11.CKO_PRIVATE_KEY, key.id, secret, true)

		// The handle has the public key only. For RSA, check no window of d (as computed
		// from nothing the handle could hold) appears: the handle is small and has no
		// member but v, id, kty, size/crv and pub.
		h := k.Handle()
		if len(h) > 1024 {
			t.Errorf("%s: handle is %d bytes; a public-only handle is smaller", spec.Type, len(h))
		}
		for _, member := range [][]byte{[]byte(`"d"`), []byte(`"p"`), []byte(`"q"`), []byte("pkcs8"), []byte("PRIVATE")} {
			if bytes.Contains(h, member) {
				t.Errorf("%s: handle contains %s", spec.Type, member)
			}
		}
		if _, pub, err := parseHandle(h); err != nil || !pub.equal(key.publicKey) {
			t.Errorf("%s: handle does not parse back to the public key: %v", spec.Type, err)
		}
	}
}

// TestHandleNoPrivateExponent signs with the token key, then checks that the handle bytes
// hold nothing that recovers a signature: the only big numbers in it are the public ones.
func TestHandleNoPrivateExponent(t *testing.T) {
	p := newToken(t)
	ctx := context.Background()
	k, err := p.Generate(ctx, provider.KeySpec{Type: provider.RSAHSM, Size: 2048})
	if err != nil {
		t.Fatal(err)
	}
	h := k.Handle()
	_, pub, err := parseHandle(h)
	if err != nil {
		t.Fatal(err)
	}
	// With d, sig = m^d mod n; the handle must not contain any 256-byte value other than n.
	n := pub.rsa.N.Bytes()
	digest := sha256.Sum256([]byte("coffer"))
	sig, err := k.Sign(ctx, provider.AlgRS256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(h, sig) || bytes.Contains(h, new(big.Int).SetBytes(sig).Bytes()[:16]) {
		t.Errorf("handle contains signature bytes")
	}
	if len(h) > 2*len(n)+200 {
		t.Errorf("handle is %d bytes: room for more than the public key", len(h))
	}
}

// TestDestroyedKey: Load of a destroyed key fails with ErrInvalidKey,
// Decrypt stays exactly ErrDecrypt, Sign is ErrHSM without CKR_ text, Destroy is idempotent.
func TestDestroyedKey(t *testing.T) {
	p := newToken(t)
	ctx := context.Background()
	k, err := p.Generate(ctx, provider.KeySpec{Type: provider.RSAHSM, Size: 2048})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := k.Encrypt(ctx, provider.EncryptParams{Algorithm: provider.AlgRSAOAEP, Value: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Destroy(ctx, k.Handle()); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Load(ctx, k.Handle()); !errors.Is(err, provider.ErrInvalidKey) {
		t.Errorf("Load(destroyed) = %v; want ErrInvalidKey", err)
	}
	// A missing object is found before the ciphertext reaches the token: saying so is no
	// oracle, and it is neither the caller's ciphertext (ErrDecrypt) nor an outage (ErrHSM).
	if _, err := k.Decrypt(ctx, provider.EncryptParams{Algorithm: provider.AlgRSAOAEP, Value: ct.Value}); !goneNotHSM(err) {
		t.Errorf("Decrypt with a destroyed key = %v; want ErrKeyGone, not ErrHSM or ErrDecrypt", err)
	}
	if _, err := k.Sign(ctx, provider.AlgPS256, make([]byte, 32)); !goneNotHSM(err) || bytes.Contains([]byte(err.Error()), []byte("CKR_")) {
		t.Errorf("Sign with a destroyed key = %v; want ErrKeyGone without CKR_ text, not ErrHSM", err)
	}
	if err := p.Destroy(ctx, k.Handle()); err != nil {
		t.Errorf("second Destroy = %v; want nil", err)
	}
}

// goneNotHSM reports whether err says the key's object is gone (provider.ErrKeyGone) and
// nothing else: not an outage, not a failed decryption.
func goneNotHSM(err error) bool {
	return errors.Is(err, provider.ErrKeyGone) && !errors.Is(err, ErrHSM) && !errors.Is(err, provider.ErrDecrypt)
}

func TestOpenErrors(t *testing.T) {
	newToken(t) // sets SOFTHSM2_CONF to a token labelled coffer-test
	for name, cfg := range map[string]Config{
		"no-library":  {TokenLabel: "x", PIN: "1"},
		"bad-library": {Library: "/nonexistent/lib.so", TokenLabel: "x", PIN: "1"},
		"bad-label":   {Library: softhsmLib, TokenLabel: "nope", PIN: "1234"},
		"sessions":    {Library: softhsmLib, TokenLabel: "coffer-test", PIN: "1234", Sessions: -1},
	} {
		if p, err := Open(cfg); err == nil {
			_ = p.Close()
			t.Errorf("Open(%s) succeeded", name)
		}
	}
}

// checkProtected finds the key object of class and id and checks SECURITY-NOTES H1: a
// private token object, sensitive, not extractable, labelled coffer-<id>, whose secret
// attributes cannot be read. CKA_NEVER_EXTRACTABLE is true for a key generated in the
// token and false for an unwrapped one (BYOK: PKCS #11 says the key existed elsewhere).
func checkProtected(t *testing.T, p *Provider, class uint, id []byte, secret []uint, generated bool) {
	t.Helper()
	s, err := p.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer p.put(s, false)
	obj, err := p.keyObject(s, class, id)
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := p.ctx.GetAttributeValue(s, obj, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_SENSITIVE, nil),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, nil),
		p11.NewAttribute(p11.CKA_NEVER_EXTRACTABLE, nil),
		p11.NewAttribute(p11.CKA_TOKEN, nil),
		p11.NewAttribute(p11.CKA_PRIVATE, nil),
		p11.NewAttribute(p11.CKA_LABEL, nil),
		p11.NewAttribute(p11.CKA_ID, nil),
	})
	if err != nil {
		t.Fatalf("GetAttributeValue: %v", err)
	}
	for i, want := range []bool{true, false, generated, true, true} {
		if got := len(attrs[i].Value) == 1 && attrs[i].Value[0] == 1; got != want {
			t.Errorf("attribute 0x%x = %v; want %v", attrs[i].Type, got, want)
		}
	}
	if string(attrs[5].Value) != "coffer-"+hexID(id) || !bytes.Equal(attrs[6].Value, id) {
		t.Errorf("label %q, id %x; want coffer-<id>, %x", attrs[5].Value, attrs[6].Value, id)
	}
	for _, a := range secret {
		_, err := p.ctx.GetAttributeValue(s, obj, []*p11.Attribute{p11.NewAttribute(a, nil)})
		if !isRV(err, p11.CKR_ATTRIBUTE_SENSITIVE) {
			t.Errorf("reading attribute 0x%x = %v; want CKR_ATTRIBUTE_SENSITIVE", a, err)
		}
	}
}

func hexID(id []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(id))
	for _, b := range id {
		out = append(out, digits[b>>4], digits[b&15])
	}
	return string(out)
}

func BenchmarkSignPS256(b *testing.B) {
	p := newToken(b)
	ctx := context.Background()
	k, err := p.Generate(ctx, provider.KeySpec{Type: provider.RSAHSM, Size: 2048})
	if err != nil {
		b.Fatal(err)
	}
	digest := make([]byte, 32)
	_, _ = rand.Read(digest)
	b.ResetTimer()
	for b.Loop() {
		if _, err := k.Sign(ctx, provider.AlgPS256, digest); err != nil {
			b.Fatal(err)
		}
	}
}
