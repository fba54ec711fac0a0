package pkcs11

import (
	"bytes"
	"context"
	"errors"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/provider"
)

// TestSealWrapsInTheToken: Wrap creates the labelled seal key (AES-256, sensitive, never
// extractable, CKA_VALUE unreadable), Unwrap opens the blob with the same aad only, and a
// token without the key answers ErrNoSealKey.
func TestSealWrapsInTheToken(t *testing.T) {
	p := newToken(t)
	ctx := context.Background()
	root := bytes.Repeat([]byte{0x5a}, 32)
	aad := []byte("core/root-key\x00{}")

	if _, err := p.Seal("coffer-seal").Unwrap(ctx, append([]byte{1}, make([]byte, 40)...), aad); !errors.Is(err, ErrNoSealKey) {
		t.Fatalf("Unwrap before any Wrap = %v; want ErrNoSealKey", err)
	}
	s := p.Seal("coffer-seal")
	blob, err := s.Wrap(ctx, root, aad)
	if err != nil {
		t.Fatalf("Wrap = %v", err)
	}
	if bytes.Contains(blob, root) || len(blob) != 1+12+32+16 {
		t.Fatalf("Wrap = %x; want 0x01 ‖ iv ‖ ciphertext ‖ tag without the root key", blob)
	}
	// A second Wrap reuses the key; a fresh Seal value finds it by label.
	if _, err := s.Wrap(ctx, root, aad); err != nil {
		t.Fatalf("second Wrap = %v", err)
	}
	got, err := p.Seal("coffer-seal").Unwrap(ctx, blob, aad)
	if err != nil || !bytes.Equal(got, root) {
		t.Fatalf("Unwrap = %x, %v; want the root key", got, err)
	}

	for name, tc := range map[string]struct{ blob, aad []byte }{
		"fail/other-aad":     {blob, []byte("core/root-key\x00{\"x\":1}")},
		"fail/flipped-byte":  {flipAt(blob, 20), aad},
		"fail/truncated":     {blob[:20], aad},
		"fail/other-version": {flipAt(blob, 0), aad},
	} {
		if out, err := s.Unwrap(ctx, tc.blob, tc.aad); err == nil {
			t.Errorf("%s: Unwrap = %x; want an error", name, out)
		}
	}
	if _, err := p.Seal("other-label").Unwrap(ctx, blob, aad); !errors.Is(err, ErrNoSealKey) {
		t.Errorf("Unwrap with another label = %v; want ErrNoSealKey", err)
	}

	sess, err := p.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer p.put(sess, false)
	id, err := s.find(sess)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := p.keyObject(sess, p11.CKO_SECRET_KEY, id)
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := p.ctx.GetAttributeValue(sess, obj, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_SENSITIVE, nil),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, nil),
		p11.NewAttribute(p11.CKA_NEVER_EXTRACTABLE, nil),
		p11.NewAttribute(p11.CKA_TOKEN, nil),
		p11.NewAttribute(p11.CKA_WRAP, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false, true, true, false} {
		if got := isTrue(attrs[i].Value); got != want {
			t.Errorf("seal key attribute 0x%x = %v; want %v", attrs[i].Type, got, want)
		}
	}
	if _, err := p.ctx.GetAttributeValue(sess, obj, []*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE, nil)}); !isRV(err, p11.CKR_ATTRIBUTE_SENSITIVE) {
		t.Errorf("reading the seal key's CKA_VALUE = %v; want CKR_ATTRIBUTE_SENSITIVE", err)
	}
}

// TestSealRefusesAWeakKey: an extractable AES key with the seal label is not used.
func TestSealRefusesAWeakKey(t *testing.T) {
	p := newToken(t)
	ctx := context.Background()
	sess, err := p.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.ctx.CreateObject(sess, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, false),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, true),
		p11.NewAttribute(p11.CKA_ENCRYPT, true),
		p11.NewAttribute(p11.CKA_DECRYPT, true),
		p11.NewAttribute(p11.CKA_ID, []byte("weak")),
		p11.NewAttribute(p11.CKA_LABEL, "weak-seal"),
		p11.NewAttribute(p11.CKA_VALUE, bytes.Repeat([]byte{1}, 32)),
	})
	p.put(sess, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Seal("weak-seal").Wrap(ctx, make([]byte, 32), nil); err == nil || errors.Is(err, provider.ErrDecrypt) {
		t.Errorf("Wrap with an extractable key = %v; want a refusal", err)
	}
}

func flipAt(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}
