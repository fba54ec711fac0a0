package pkcs11

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/byok"
	"github.com/coffer-kms/coffer/internal/provider"
)

// readAttrs reads attributes of the key object of class and id.
func readAttrs(t *testing.T, p *Provider, class uint, id []byte, types ...uint) []*p11.Attribute {
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
	want := make([]*p11.Attribute, len(types))
	for i, typ := range types {
		want[i] = p11.NewAttribute(typ, nil)
	}
	attrs, err := p.ctx.GetAttributeValue(s, obj, want)
	if err != nil {
		t.Fatalf("GetAttributeValue: %v", err)
	}
	return attrs
}

// extractable reads CKA_EXTRACTABLE and CKA_SENSITIVE of a key object.
func extractable(t *testing.T, p *Provider, class uint, id []byte) (extr, sens bool) {
	t.Helper()
	attrs := readAttrs(t, p, class, id, p11.CKA_EXTRACTABLE, p11.CKA_SENSITIVE)
	return isTrue(attrs[0].Value), isTrue(attrs[1].Value)
}

func TestExportWrapped(t *testing.T) {
	p := newToken(t)
	ctx := context.Background()
	tee, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}

	exp, err := p.Generate(ctx, provider.KeySpec{Type: provider.OctHSM, Size: 256, Exportable: true})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := p.Generate(ctx, provider.KeySpec{Type: provider.OctHSM, Size: 128})
	if err != nil {
		t.Fatal(err)
	}
	if e, s := extractable(t, p, p11.CKO_SECRET_KEY, exp.(*aesKey).id); !e || !s {
		t.Errorf("exportable key: extractable %v, sensitive %v; want true, true", e, s)
	}
	if e, _ := extractable(t, p, p11.CKO_SECRET_KEY, plain.(*aesKey).id); e {
		t.Error("a key not made exportable reads CKA_EXTRACTABLE true")
	}
	if h := string(exp.Handle()); !strings.Contains(h, `"exportable":true`) {
		t.Errorf("Handle = %s; want the exportable mark", h)
	}
	loaded, err := p.Load(ctx, exp.Handle())
	if err != nil {
		t.Fatal(err)
	}

	before := objectCount(t, p)
	for _, k := range []provider.Key{exp, loaded} {
		ct, err := k.(provider.Exporter).ExportWrapped(ctx, &tee.PublicKey, crypto.SHA1)
		if err != nil {
			t.Fatalf("ExportWrapped = %v", err)
		}
		raw, err := byok.Open(tee, crypto.SHA1, ct)
		if err != nil || len(raw) != 32 {
			t.Fatalf("byok.Open = %d bytes, %v; want the 32-byte key", len(raw), err)
		}
		// The released bytes are the token's key: they open what the token encrypted.
		r, err := k.Encrypt(ctx, provider.EncryptParams{Algorithm: "A256GCM", Value: []byte("sealed by the vault")})
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := aes.NewCipher(raw)
		gcm, _ := cipher.NewGCM(blk)
		pt, err := gcm.Open(nil, r.IV, append(r.Value, r.Tag...), nil)
		if err != nil || string(pt) != "sealed by the vault" {
			t.Errorf("the released key does not decrypt the vault key's ciphertext: %q, %v", pt, err)
		}
	}
	if after := objectCount(t, p); after != before {
		t.Errorf("objects in the token: %d before, %d after release; the session objects must be destroyed", before, after)
	}

	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	ct, err := exp.(provider.Exporter).ExportWrapped(ctx, &tee.PublicKey, crypto.SHA1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := byok.Open(other, crypto.SHA1, ct); err == nil {
		t.Error("another RSA key opens the released key")
	}

	// Refusals, with nothing left behind.
	rsaExp, err := p.Generate(ctx, provider.KeySpec{Type: provider.RSAHSM, Size: 2048, Exportable: true})
	if err != nil {
		t.Fatal(err)
	}
	if e, s := extractable(t, p, p11.CKO_PRIVATE_KEY, rsaExp.(*Key).id); !e || !s {
		t.Errorf("exportable RSA key: extractable %v, sensitive %v; want true, true", e, s)
	}
	before = objectCount(t, p)
	_, err = rsaExp.(provider.Exporter).ExportWrapped(ctx, &tee.PublicKey, crypto.SHA1)
	if p.kwp {
		if err != nil {
			t.Errorf("ExportWrapped(RSA-HSM) on a token with RFC 5649 KWP = %v", err)
		}
	} else if !errors.Is(err, provider.ErrUnsupported) || !strings.Contains(err.Error(), "RFC 5649") {
		t.Errorf("ExportWrapped(RSA-HSM) on SoftHSM2 = %v; want ErrUnsupported naming the KWP limitation", err)
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	for name, tc := range map[string]struct {
		k    provider.Key
		to   *rsa.PublicKey
		h    crypto.Hash
		want error
	}{
		"not-exportable":     {plain, &tee.PublicKey, crypto.SHA1, provider.ErrNotExportable},
		"small-tee-key":      {exp, &small.PublicKey, crypto.SHA1, provider.ErrInvalidParameter},
		"nil-tee-key":        {exp, nil, crypto.SHA1, provider.ErrInvalidParameter},
		"unknown-hash":       {exp, &tee.PublicKey, crypto.MD5, provider.ErrUnsupported},
		"oaep-256-if-no-256": {exp, &tee.PublicKey, crypto.SHA256, provider.ErrUnsupported},
	} {
		if name == "oaep-256-if-no-256" && p.oaep256 {
			continue
		}
		if _, err := tc.k.(provider.Exporter).ExportWrapped(ctx, tc.to, tc.h); !errors.Is(err, tc.want) {
			t.Errorf("%s: ExportWrapped = %v; want %v", name, err, tc.want)
		}
	}
	// A handle that claims exportable for a non-extractable object releases nothing.
	forged := strings.Replace(string(plain.Handle()), `}`, `,"exportable":true}`, 1)
	fk, err := p.Load(ctx, []byte(forged))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fk.(provider.Exporter).ExportWrapped(ctx, &tee.PublicKey, crypto.SHA1); !errors.Is(err, provider.ErrNotExportable) {
		t.Errorf("ExportWrapped(forged handle) = %v; want ErrNotExportable", err)
	}
	if after := objectCount(t, p); after != before {
		t.Errorf("objects in the token: %d before, %d after refusals", before, after)
	}
}
