package pkcs11

import (
	"context"
	"crypto"
	"crypto/rsa"
	"fmt"
	"math/big"

	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/provider"
)

// Secure key release of token keys. A key generated with KeySpec.Exportable is the only kind
// whose object is CKA_EXTRACTABLE=true (still CKA_SENSITIVE=true: its value never reads out
// in clear); its handle records "exportable". ExportWrapped wraps it inside the token into the
// CKM_RSA_AES_KEY_WRAP form byok.Open opens (the token has no CKM_RSA_AES_KEY_WRAP, F10):
//
//  1. the TEE's RSA public key becomes a session object (CKA_TOKEN=false, CKA_WRAP=true);
//  2. an AES-256 key is generated in the token as a session object, sensitive, extractable
//     only so that it can be wrapped;
//  3. C_WrapKey(CKM_RSA_PKCS_OAEP(h, MGF1(h)), TEE key, AES key) ‖
//     C_WrapKey(CKM_AES_KEY_WRAP_PAD, AES key, target) — the target as the token encodes it
//     for wrapping: raw bytes for AES, PKCS #8 for RSA and EC;
//  4. both session objects are destroyed, whatever happened.
//
// Neither the target nor the AES key is ever outside the token in clear. Refusals:
//   - a key not made exportable, or whose object reads CKA_EXTRACTABLE=false:
//     provider.ErrNotExportable (nothing is wrapped);
//   - RSA/EC keys on a token whose CKM_AES_KEY_WRAP_PAD wrap is not RFC 5649 for lengths that
//     are not a multiple of 8 (probeKWP; SoftHSM2 2.6.1): PKCS #8 lengths vary, and such a
//     token's blob would open to zero-padded bytes, so provider.ErrUnsupported names the
//     limitation instead of answering a wrong blob. AES keys (16, 24, 32 bytes) are multiples
//     of 8 and are released on every token;
//   - OAEP with SHA-256/384 on a token that only does SHA-1 (probeOAEP256):
//     provider.ErrUnsupported (use CKM_RSA_AES_KEY_WRAP).

var (
	_ provider.Exporter = (*Key)(nil)
	_ provider.Exporter = (*aesKey)(nil)
)

// ExportWrapped wraps the private key inside the token to the TEE's RSA key (see above).
func (k *Key) ExportWrapped(ctx context.Context, to *rsa.PublicKey, h crypto.Hash) ([]byte, error) {
	if !k.exportable {
		return nil, provider.ErrNotExportable
	}
	if !k.p.kwp {
		return nil, fmt.Errorf("%w: this PKCS#11 token's CKM_AES_KEY_WRAP_PAD wrap is not RFC 5649 for lengths that are not a multiple of 8 (SoftHSM2 2.6.1 zero-pads and records the padded length), so an %s key's PKCS #8 encoding cannot be released from it correctly; oct-HSM keys can", provider.ErrUnsupported, k.kty)
	}
	return k.p.exportWrapped(ctx, p11.CKO_PRIVATE_KEY, k.id, to, h)
}

// ExportWrapped wraps the AES key inside the token to the TEE's RSA key (see above).
func (k *aesKey) ExportWrapped(ctx context.Context, to *rsa.PublicKey, h crypto.Hash) ([]byte, error) {
	if !k.exportable {
		return nil, provider.ErrNotExportable
	}
	return k.p.exportWrapped(ctx, p11.CKO_SECRET_KEY, k.id, to, h)
}

func (p *Provider) exportWrapped(ctx context.Context, class uint, id []byte, to *rsa.PublicKey, h crypto.Hash) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if to == nil || to.N.BitLen() < 2048 || to.E != rsaExponent {
		return nil, fmt.Errorf("%w: the wrapping key must be RSA of at least 2048 bits with e = 65537", provider.ErrInvalidParameter)
	}
	if _, ok := ckmHash[h]; !ok || (h != crypto.SHA1 && !p.oaep256) {
		return nil, fmt.Errorf("%w: this PKCS#11 token does RSA-OAEP with SHA-1 only: release with CKM_RSA_AES_KEY_WRAP", provider.ErrUnsupported)
	}
	s, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	out, err := p.exportIn(s, class, id, to, h)
	p.put(s, sessionBroken(err))
	return out, err
}

// exportIn runs the wrap in session s; every object it makes is destroyed before it returns.
func (p *Provider) exportIn(s p11.SessionHandle, class uint, id []byte, to *rsa.PublicKey, h crypto.Hash) ([]byte, error) {
	target, err := p.keyObject(s, class, id)
	if err != nil {
		return nil, err
	}
	attrs, err := p.ctx.GetAttributeValue(s, target, []*p11.Attribute{p11.NewAttribute(p11.CKA_EXTRACTABLE, nil)})
	if err != nil || len(attrs) != 1 {
		return nil, hsmErr("read key attributes", err)
	}
	if !isTrue(attrs[0].Value) {
		return nil, provider.ErrNotExportable // the object says no, whatever the handle says
	}
	tee, err := p.ctx.CreateObject(s, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_RSA),
		p11.NewAttribute(p11.CKA_TOKEN, false),
		p11.NewAttribute(p11.CKA_WRAP, true),
		p11.NewAttribute(p11.CKA_ENCRYPT, false),
		p11.NewAttribute(p11.CKA_MODULUS, to.N.Bytes()),
		p11.NewAttribute(p11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(to.E)).Bytes()),
	})
	if err != nil {
		return nil, hsmErr("import the TEE's public key", err)
	}
	defer func() { _ = p.ctx.DestroyObject(s, tee) }()
	eph, err := p.ctx.GenerateKey(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_GEN, nil)}, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
		p11.NewAttribute(p11.CKA_TOKEN, false),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, true),
		p11.NewAttribute(p11.CKA_WRAP, true),
		p11.NewAttribute(p11.CKA_ENCRYPT, false),
		p11.NewAttribute(p11.CKA_DECRYPT, false),
		p11.NewAttribute(p11.CKA_VALUE_LEN, 32),
	})
	if err != nil {
		return nil, hsmErr("generate the ephemeral AES key", err)
	}
	defer func() { _ = p.ctx.DestroyObject(s, eph) }()
	oaep := p11.NewMechanism(p11.CKM_RSA_PKCS_OAEP, p11.NewOAEPParams(ckmHash[h], ckgMGF[h], p11.CKZ_DATA_SPECIFIED, nil))
	head, err := p.ctx.WrapKey(s, []*p11.Mechanism{oaep}, tee, eph)
	if err != nil {
		return nil, hsmErr("wrap the ephemeral key to the TEE", err)
	}
	if len(head) != (to.N.BitLen()+7)/8 {
		return nil, fmt.Errorf("pkcs11: the token's RSA-OAEP wrap is %d bytes, not the modulus length: %w", len(head), ErrHSM)
	}
	body, err := p.ctx.WrapKey(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_WRAP_PAD, nil)}, eph, target)
	if err != nil {
		return nil, hsmErr("wrap the key with the ephemeral key", err)
	}
	return append(head, body...), nil
}

// extractableIf returns t with CKA_EXTRACTABLE set to exportable (t is a key template of
// protectedTemplate, which says false).
func extractableIf(t []*p11.Attribute, exportable bool) []*p11.Attribute {
	if !exportable {
		return t
	}
	for i, a := range t {
		if a.Type == p11.CKA_EXTRACTABLE {
			t[i] = p11.NewAttribute(p11.CKA_EXTRACTABLE, true)
		}
	}
	return t
}
