package pkcs11

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"hash"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/keywrap"
	"github.com/coffer-kms/coffer/internal/provider"
)

// transferCiphertext builds CKM_RSA_AES_KEY_WRAP output in software: OAEP(h) of a fresh
// 32-byte AES key under kek, then RFC 5649 of target under that key.
func transferCiphertext(t *testing.T, kek *rsa.PublicKey, h hash.Hash, target []byte) []byte {
	t.Helper()
	eph := make([]byte, 32)
	if _, err := rand.Read(eph); err != nil {
		t.Fatal(err)
	}
	head, err := rsa.EncryptOAEP(h, rand.Reader, kek, eph, nil)
	if err != nil {
		t.Fatal(err)
	}
	tail, err := keywrap.WrapPad(eph, target)
	if err != nil {
		t.Fatal(err)
	}
	return append(head, tail...)
}

// objectCount counts the objects the user session sees (token and session objects).
func objectCount(t *testing.T, p *Provider) int {
	t.Helper()
	s, err := p.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer p.put(s, false)
	if err := p.ctx.FindObjectsInit(s, nil); err != nil {
		t.Fatal(err)
	}
	objs, _, err := p.ctx.FindObjects(s, 10000)
	_ = p.ctx.FindObjectsFinal(s)
	if err != nil {
		t.Fatal(err)
	}
	return len(objs)
}

func TestImportTransfer(t *testing.T) {
	p := newToken(t)
	ctx := context.Background()
	kk, err := p.Generate(ctx, provider.KeySpec{Type: provider.RSAHSM, Size: 2048})
	if err != nil {
		t.Fatal(err)
	}
	kek := kk.(*Key).rsa
	target, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pk8, err := x509.MarshalPKCS8PrivateKey(target)
	if err != nil {
		t.Fatal(err)
	}

	// RSA target: lands sensitive and not extractable, signs as the original key.
	k, err := p.ImportTransfer(ctx, provider.Transfer{KEK: kk.Handle(), Hash: crypto.SHA1, Ciphertext: transferCiphertext(t, kek, sha1.New(), pk8), Type: provider.RSAHSM})
	if err != nil {
		t.Fatalf("ImportTransfer(RSA) = %v", err)
	}
	if k.Type() != provider.RSAHSM || k.Size() != 2048 || !bytes.Equal(k.Public().N, target.N.Bytes()) {
		t.Errorf("imported key = %s %d; want the target's public key", k.Type(), k.Size())
	}
	digest := sha256.Sum256([]byte("byok"))
	sig, err := k.Sign(ctx, provider.AlgRS256, digest[:])
	if err != nil || rsa.VerifyPKCS1v15(&target.PublicKey, crypto.SHA256, digest[:], sig) != nil {
		t.Errorf("imported key's RS256 signature does not verify under the target key: %v", err)
	}
	ct, _ := rsa.EncryptOAEP(sha1.New(), rand.Reader, &target.PublicKey, []byte("secret"), nil)
	if pt, err := k.Decrypt(ctx, provider.EncryptParams{Algorithm: provider.AlgRSAOAEP, Value: ct}); err != nil || string(pt) != "secret" {
		t.Errorf("imported key Decrypt = %q, %v", pt, err)
	}
	checkProtected(t, p, p11.CKO_PRIVATE_KEY, k.(*Key).id, []uint{p11.CKA_PRIVATE_EXPONENT, p11.CKA_PRIME_1}, false)
	if l, err := p.Load(ctx, k.Handle()); err != nil || l.Size() != 2048 {
		t.Errorf("Load(imported) = %v", err)
	}

	// AES target: the token encrypts as the raw key does.
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	ak, err := p.ImportTransfer(ctx, provider.Transfer{KEK: kk.Handle(), Hash: crypto.SHA1, Ciphertext: transferCiphertext(t, kek, sha1.New(), raw), Type: provider.OctHSM})
	if err != nil || ak.Type() != provider.OctHSM || ak.Size() != 256 {
		t.Fatalf("ImportTransfer(AES) = %v, %v", ak, err)
	}
	iv := make([]byte, 16)
	r, err := ak.Encrypt(ctx, provider.EncryptParams{Algorithm: provider.AlgA256CBC, Value: make([]byte, 16), IV: iv})
	block, _ := aes.NewCipher(raw)
	want := make([]byte, 16)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(want, make([]byte, 16))
	if err != nil || !bytes.Equal(r.Value, want) {
		t.Errorf("imported AES key encrypts to %x, %v; want %x", r.Value, err, want)
	}
	checkProtected(t, p, p11.CKO_SECRET_KEY, ak.(*aesKey).id, []uint{p11.CKA_VALUE}, false)
	if l, err := p.Load(ctx, ak.Handle()); err != nil || l.Size() != 256 {
		t.Errorf("Load(imported AES) = %v", err)
	}

	// Bad transfers: one error, nothing left in the token.
	good := transferCiphertext(t, kek, sha1.New(), pk8)
	flipAt := func(i int) []byte {
		c := append([]byte(nil), good...)
		c[i] ^= 1
		return c
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	small8, _ := x509.MarshalPKCS8PrivateKey(small)
	otherKEK, _ := rsa.GenerateKey(rand.Reader, 2048)
	before := objectCount(t, p)
	bad := map[string]provider.Transfer{
		"truncated":        {Ciphertext: good[:len(good)-8]},
		"truncated-odd":    {Ciphertext: good[:len(good)-3]},
		"rsa-part-only":    {Ciphertext: good[:256]},
		"rsa-part-flipped": {Ciphertext: flipAt(10)},
		"kwp-part-flipped": {Ciphertext: flipAt(300)},
		"kwp-last-flipped": {Ciphertext: flipAt(len(good) - 1)},
		"wrong-oaep-hash":  {Ciphertext: transferCiphertext(t, kek, sha256.New(), pk8)},
		"other-kek":        {Ciphertext: transferCiphertext(t, &otherKEK.PublicKey, sha1.New(), pk8)},
		"rsa-1024":         {Ciphertext: transferCiphertext(t, kek, sha1.New(), small8)},
		"rsa-declared-aes": {Ciphertext: transferCiphertext(t, kek, sha1.New(), pk8), Type: provider.OctHSM},
		"aes-declared-rsa": {Ciphertext: transferCiphertext(t, kek, sha1.New(), raw)},
		"aes-20-bytes":     {Ciphertext: transferCiphertext(t, kek, sha1.New(), raw[:20]), Type: provider.OctHSM},
		"garbage-pkcs8":    {Ciphertext: transferCiphertext(t, kek, sha1.New(), bytes.Repeat([]byte{0x30}, 100))},
	}
	for name, tr := range bad {
		tr.KEK, tr.Hash = kk.Handle(), crypto.SHA1
		if tr.Type == "" {
			tr.Type = provider.RSAHSM
		}
		if key, err := p.ImportTransfer(ctx, tr); err != provider.ErrTransfer || key != nil {
			t.Errorf("ImportTransfer(%s) = %v, %v; want exactly ErrTransfer", name, key, err)
		}
	}
	if after := objectCount(t, p); after != before {
		t.Errorf("the token holds %d objects after the failed imports, %d before", after, before)
	}
	ec, _ := p.Generate(ctx, provider.KeySpec{Type: provider.ECHSM, Curve: provider.P256})
	refused := map[string]struct {
		tr   provider.Transfer
		want error
	}{
		"ec-kek":      {provider.Transfer{KEK: ec.Handle(), Hash: crypto.SHA1, Ciphertext: good, Type: provider.RSAHSM}, provider.ErrInvalidParameter},
		"aes-kek":     {provider.Transfer{KEK: ak.Handle(), Hash: crypto.SHA1, Ciphertext: good, Type: provider.RSAHSM}, provider.ErrInvalidParameter},
		"sha512":      {provider.Transfer{KEK: kk.Handle(), Hash: crypto.SHA512, Ciphertext: good, Type: provider.RSAHSM}, provider.ErrUnsupported},
		"ec-target":   {provider.Transfer{KEK: kk.Handle(), Hash: crypto.SHA1, Ciphertext: good, Type: provider.ECHSM, Curve: provider.P256}, provider.ErrTransfer}, // an RSA key declared EC
		"plain-type":  {provider.Transfer{KEK: kk.Handle(), Hash: crypto.SHA1, Ciphertext: good, Type: provider.RSA}, provider.ErrUnsupported},
		"kek-handle":  {provider.Transfer{KEK: []byte(`{}`), Hash: crypto.SHA1, Ciphertext: good, Type: provider.RSAHSM}, provider.ErrInvalidParameter},
		"destroyed":   {provider.Transfer{KEK: destroyedKEK(t, p), Hash: crypto.SHA1, Ciphertext: good, Type: provider.RSAHSM}, provider.ErrInvalidParameter},
		"sha256-soft": {provider.Transfer{KEK: kk.Handle(), Hash: crypto.SHA256, Ciphertext: transferCiphertext(t, kek, sha256.New(), pk8), Type: provider.RSAHSM}, nil},
	}
	for name, tc := range refused {
		key, err := p.ImportTransfer(ctx, tc.tr)
		if tc.want == nil {
			// OAEP-256 works exactly when the token offers it.
			if p.OffersOAEP256() != (err == nil) || (err != nil && !errors.Is(err, provider.ErrUnsupported)) {
				t.Errorf("ImportTransfer(%s) = %v with OffersOAEP256 %v", name, err, p.OffersOAEP256())
			}
			continue
		}
		if !errors.Is(err, tc.want) || key != nil {
			t.Errorf("ImportTransfer(%s) = %v, %v; want %v", name, key, err, tc.want)
		}
	}
}

// destroyedKEK returns the handle of an RSA key that is no longer in the token.
func destroyedKEK(t *testing.T, p *Provider) []byte {
	t.Helper()
	k, err := p.Generate(context.Background(), provider.KeySpec{Type: provider.RSAHSM, Size: 2048})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Destroy(context.Background(), k.Handle()); err != nil {
		t.Fatal(err)
	}
	return k.Handle()
}
