package pkcs11

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"

	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/keywrap"
)

// probeOAEP256 reports whether the token decrypts RSA-OAEP with SHA-256 and MGF1-SHA256.
// Not every token does (SoftHSM2 2.6.1 accepts only SHA-1 for CKM_RSA_PKCS_OAEP), and a
// provider must not encrypt (in software) what it cannot decrypt, so RSA-OAEP-256 is offered
// only when a session-only key pair (CKA_TOKEN=false, destroyed here) round-trips a
// message. Called once by Open.
func (p *Provider) probeOAEP256(s p11.SessionHandle) bool {
	pubT := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_RSA),
		p11.NewAttribute(p11.CKA_TOKEN, false),
		p11.NewAttribute(p11.CKA_ENCRYPT, true),
		p11.NewAttribute(p11.CKA_MODULUS_BITS, 2048),
		p11.NewAttribute(p11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
	}
	privT := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_RSA),
		p11.NewAttribute(p11.CKA_TOKEN, false),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
		p11.NewAttribute(p11.CKA_DECRYPT, true),
	}
	pubObj, privObj, err := p.ctx.GenerateKeyPair(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)}, pubT, privT)
	if err != nil {
		return false
	}
	defer func() {
		_ = p.ctx.DestroyObject(s, privObj)
		_ = p.ctx.DestroyObject(s, pubObj)
	}()
	pub, err := p.readRSAPublic(s, pubObj)
	if err != nil {
		return false
	}
	msg := []byte("coffer oaep-256 probe")
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub.rsa, msg, nil)
	if err != nil {
		return false
	}
	mech := p11.NewMechanism(p11.CKM_RSA_PKCS_OAEP, p11.NewOAEPParams(p11.CKM_SHA256, p11.CKG_MGF1_SHA256, p11.CKZ_DATA_SPECIFIED, nil))
	if err := p.ctx.DecryptInit(s, []*p11.Mechanism{mech}, privObj); err != nil {
		return false
	}
	out, err := p.ctx.Decrypt(s, ct)
	return err == nil && bytes.Equal(out, msg)
}

// probeKWP reports whether the token's CKM_AES_KEY_WRAP_PAD is RFC 5649 for a key whose
// length is not a multiple of 8. SoftHSM2 2.6.1's is not: it zero-pads the key first and
// wraps the padded bytes (MLI = padded length), so its output unwraps to the wrong length
// elsewhere; its unwrap is RFC 5649 (Wycheproof aes_kwp passes). Without it, wrapKey with
// CKM_AES_KEY_WRAP_PAD is refused for such lengths rather than answered wrongly. The probe
// wraps 5 known bytes under a session-only all-zero AES key and compares with keywrap.
func (p *Provider) probeKWP(s p11.SessionHandle) bool {
	kek := make([]byte, 16)
	key, err := p.ctx.CreateObject(s, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
		p11.NewAttribute(p11.CKA_TOKEN, false),
		p11.NewAttribute(p11.CKA_WRAP, true),
		p11.NewAttribute(p11.CKA_VALUE, kek),
	})
	if err != nil {
		return false
	}
	defer func() { _ = p.ctx.DestroyObject(s, key) }()
	msg := []byte("coffe")
	obj, err := p.ctx.CreateObject(s, sessionSecret(msg))
	if err != nil {
		return false
	}
	defer func() { _ = p.ctx.DestroyObject(s, obj) }()
	got, err := p.ctx.WrapKey(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_WRAP_PAD, nil)}, key, obj)
	want, werr := keywrap.WrapPad(kek, msg)
	return err == nil && werr == nil && bytes.Equal(got, want)
}
