package pkcs11

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/asn1"
	"fmt"
	"math/big"

	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/provider"
)

// EC-HSM targets of a BYOK transfer. After C_UnwrapKey of a PKCS #8 EC key, SoftHSM2 (and
// the PKCS #11 EC private key object in general) holds CKA_EC_PARAMS and the private value
// but no public point, so the import request carries the point (JWK x, y) and Coffer proves
// it belongs to the unwrapped key: the token signs a random digest with CKM_ECDSA and
// crypto/ecdsa verifies it against the point. The unwrap template names no CKA_EC_PARAMS
// (PKCS #11 forbids it on C_UnwrapKey: the curve comes from the PKCS #8 key); the curve is
// read back and compared with crv instead.

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
