package pkcs11

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/provider"
)

// EC-HSM targets of a BYOK transfer. After C_UnwrapKey of a PKCS #8 EC key, SoftHSM2 (and
// the PKCS #11 EC private key object in general) holds CKA_EC_PARAMS and the private value
// but no public point. An import request may carry the point (JWK x, y); Key Vault's own
// BYOK request has only kty, crv and key_hsm, and then the token works the point out
// (transferredPoint). Either way Coffer proves the point belongs to the unwrapped key: the
// token signs a random digest with CKM_ECDSA and crypto/ecdsa verifies it against the point.
// The unwrap template names no CKA_EC_PARAMS (PKCS #11 forbids it on C_UnwrapKey: the curve
// comes from the PKCS #8 key); the curve is read back and compared with crv instead.

// errPointMismatch is the answer when the unwrapped key does not sign for the request's x, y.
var errPointMismatch = fmt.Errorf("%w: x and y are not the public key of the transferred EC key", provider.ErrInvalidParameter)

// transferPoint checks the request's point: each coordinate at most the curve's size
// (shorter ones are left-padded), and on the curve.
func transferPoint(c *curveInfo, x, y []byte) (*publicKey, error) {
	if len(x) == 0 || len(y) == 0 {
		return nil, fmt.Errorf("%w: an EC-HSM transfer needs the key's public point: x and y of the %s key", provider.ErrInvalidParameter, c.crv)
	}
	if len(x) > c.size || len(y) > c.size {
		return nil, fmt.Errorf("%w: x and y of a %s key are %d bytes each", provider.ErrInvalidParameter, c.crv, c.size)
	}
	pt := make([]byte, 1+2*c.size)
	pt[0] = 4
	copy(pt[1+c.size-len(x):], x)
	copy(pt[1+2*c.size-len(y):], y)
	ec, err := ecdsa.ParseUncompressedPublicKey(c.nist, pt)
	if err != nil {
		return nil, fmt.Errorf("%w: x and y are not a point of %s", provider.ErrInvalidParameter, c.crv)
	}
	return newECPublic(ec, c), nil
}

// checkTransferredEC checks an unwrapped EC private key object against the request's public
// key want: the object's curve must be want's (errWeakImport otherwise), and a signature of
// a random digest made in the token must verify under want (errPointMismatch otherwise).
func (p *Provider) checkTransferredEC(s p11.SessionHandle, obj p11.ObjectHandle, id []byte, want *publicKey) (provider.Key, error) {
	if want == nil || want.curve == nil {
		return nil, errWeakImport
	}
	params, err := asn1.Marshal(want.curve.oid)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: encoding the curve: %w", err)
	}
	attrs, err := p.ctx.GetAttributeValue(s, obj, []*p11.Attribute{p11.NewAttribute(p11.CKA_EC_PARAMS, nil)})
	if err != nil || len(attrs) != 1 || !bytes.Equal(attrs[0].Value, params) {
		return nil, errWeakImport
	}
	digest := make([]byte, want.curve.hash.Size())
	if _, err := rand.Read(digest); err != nil {
		return nil, fmt.Errorf("pkcs11: no randomness for the consistency check")
	}
	if err := p.ctx.SignInit(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_ECDSA, nil)}, obj); err != nil {
		return nil, hsmErr("sign", err)
	}
	sig, err := p.ctx.Sign(s, digest)
	if err != nil {
		return nil, hsmErr("sign", err)
	}
	n := want.curve.size
	if len(sig) != 2*n {
		return nil, errWeakImport
	}
	r, ss := new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
	if !ecdsa.Verify(want.ec, digest, r, ss) {
		return nil, errPointMismatch
	}
	return newKey(p, want, id), nil
}

// transferredPoint works out the public point of the EC key that wrapped (the target half
// of a transfer) holds, without the private value leaving the token. It unwraps wrapped with
// eph into a session object that may also derive, and asks the token for
// CKM_ECDH1_DERIVE (no KDF) of that key with the curve's base point G: the shared secret is
// the x coordinate of d·G, the public point, which is not secret. Of the two points with that
// x, the one a signature of the session key verifies under is the key's. The session object
// and the derived secret are destroyed on every path; the token object the caller unwraps
// next never has CKA_DERIVE.
func (p *Provider) transferredPoint(s p11.SessionHandle, eph p11.ObjectHandle, wrapped []byte, c *curveInfo) (*publicKey, error) {
	tmpl := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_EC),
		p11.NewAttribute(p11.CKA_TOKEN, false),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
		p11.NewAttribute(p11.CKA_SIGN, true),
		p11.NewAttribute(p11.CKA_DERIVE, true),
	}
	obj, err := p.ctx.UnwrapKey(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_WRAP_PAD, nil)}, eph, wrapped, tmpl)
	if err != nil {
		return nil, hsmErr("unwrap the target key", err)
	}
	defer p.ctx.DestroyObject(s, obj)
	params := c.nist.Params()
	g := make([]byte, 1+2*c.size)
	g[0] = 4
	params.Gx.FillBytes(g[1 : 1+c.size])
	params.Gy.FillBytes(g[1+c.size:])
	secretT := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_GENERIC_SECRET),
		p11.NewAttribute(p11.CKA_TOKEN, false),
		p11.NewAttribute(p11.CKA_SENSITIVE, false),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, true),
		p11.NewAttribute(p11.CKA_VALUE_LEN, c.size),
	}
	mech := p11.NewMechanism(p11.CKM_ECDH1_DERIVE, p11.NewECDH1DeriveParams(p11.CKD_NULL, nil, g))
	xObj, err := p.ctx.DeriveKey(s, []*p11.Mechanism{mech}, obj, secretT)
	if err != nil {
		return nil, hsmErr("derive the public point", err)
	}
	attrs, err := p.ctx.GetAttributeValue(s, xObj, []*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE, nil)})
	_ = p.ctx.DestroyObject(s, xObj)
	if err != nil || len(attrs) != 1 || len(attrs[0].Value) != c.size {
		return nil, errWeakImport
	}
	x := attrs[0].Value
	var cands []*publicKey
	for _, prefix := range []byte{2, 3} {
		X, Y := elliptic.UnmarshalCompressed(c.nist, append([]byte{prefix}, x...))
		if X == nil {
			continue
		}
		if k, err := transferPoint(c, X.FillBytes(make([]byte, c.size)), Y.FillBytes(make([]byte, c.size))); err == nil {
			cands = append(cands, k)
		}
	}
	for _, k := range cands {
		if _, err := p.checkTransferredEC(s, obj, nil, k); err == nil {
			return k, nil
		} else if !errors.Is(err, errPointMismatch) {
			return nil, err
		}
	}
	return nil, errWeakImport
}
