package pkcs11

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"math/big"

	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/provider"
)

// rsaSizes are the RSA modulus sizes offered (Key Vault's).
var rsaSizes = map[int]bool{2048: true, 3072: true, 4096: true}

// rsaExponent is the only public exponent generated (SECURITY-NOTES I8).
const rsaExponent = 65537

// idLen is the length of the random CKA_ID of a key pair.
const idLen = 16

// Generate creates a key pair in the token: RSA-HSM (Size 2048, 3072 or 4096;
// PublicExponent 0 or 65537) with CKM_RSA_PKCS_KEY_PAIR_GEN, or EC-HSM (Curve P-256, P-384
// or P-521) with CKM_EC_KEY_PAIR_GEN.
//
// Plain RSA and EC specs are accepted too and give the same token keys: an HSM provider has
// only HSM keys, so Generate(RSA) makes exactly what Generate(RSA-HSM) makes and the key
// reports Type() RSA-HSM (likewise EC → EC-HSM), as Key Vault's Managed HSM does. The keys
// domain stores the type the key reports.
//
// oct and oct-HSM make an AES key (Size 128, 192 or 256) in the token (aes.go); the key
// reports oct-HSM. P-256K and every other size, exponent, curve and type are ErrUnsupported.
func (p *Provider) Generate(ctx context.Context, spec provider.KeySpec) (provider.Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch spec.Type {
	case provider.RSA, provider.RSAHSM:
		if spec.Curve != "" {
			return nil, fmt.Errorf("%w: an RSA key has no curve", provider.ErrInvalidParameter)
		}
		if !rsaSizes[spec.Size] {
			return nil, fmt.Errorf("%w: RSA key size %d: use 2048, 3072 or 4096", provider.ErrUnsupported, spec.Size)
		}
		if spec.PublicExponent != 0 && spec.PublicExponent != rsaExponent {
			return nil, fmt.Errorf("%w: RSA public exponent %d: only 65537 is offered", provider.ErrUnsupported, spec.PublicExponent)
		}
	case provider.EC, provider.ECHSM:
		c, ok := curves[spec.Curve]
		if !ok {
			return nil, fmt.Errorf("%w: curve %.16q: the pkcs11 provider offers P-256, P-384 and P-521", provider.ErrUnsupported, string(spec.Curve))
		}
		if spec.Size != 0 && spec.Size != c.bits {
			return nil, fmt.Errorf("%w: a %s key has %d bits, not %d", provider.ErrInvalidParameter, c.crv, c.bits, spec.Size)
		}
		if spec.PublicExponent != 0 {
			return nil, fmt.Errorf("%w: an EC key has no public exponent", provider.ErrInvalidParameter)
		}
	case provider.Oct, provider.OctHSM:
		return p.generateAES(ctx, spec)
	default:
		return nil, fmt.Errorf("%w: key type %.16q is unknown", provider.ErrUnsupported, string(spec.Type))
	}

	id := make([]byte, idLen)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("pkcs11: no randomness for the key id")
	}
	label := "coffer-" + hex.EncodeToString(id)
	pubT := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_PRIVATE, false),
		p11.NewAttribute(p11.CKA_ID, id),
		p11.NewAttribute(p11.CKA_LABEL, label),
		p11.NewAttribute(p11.CKA_VERIFY, true),
	}
	var privT []*p11.Attribute
	var mech uint
	var c *curveInfo
	if spec.Type == provider.RSA || spec.Type == provider.RSAHSM {
		mech = p11.CKM_RSA_PKCS_KEY_PAIR_GEN
		pubT = append(pubT,
			p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_RSA),
			p11.NewAttribute(p11.CKA_MODULUS_BITS, spec.Size),
			p11.NewAttribute(p11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
			p11.NewAttribute(p11.CKA_ENCRYPT, true),
			p11.NewAttribute(p11.CKA_WRAP, true),
		)
		privT = p.protect(privateTemplate(id, p11.CKK_RSA), spec.Exportable, spec.SecurityDomain)
	} else {
		c = curves[spec.Curve]
		mech = p11.CKM_EC_KEY_PAIR_GEN
		params, err := asn1.Marshal(c.oid)
		if err != nil {
			return nil, fmt.Errorf("pkcs11: encoding the curve: %w", err)
		}
		pubT = append(pubT,
			p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_EC),
			p11.NewAttribute(p11.CKA_EC_PARAMS, params),
		)
		privT = p.protect(privateTemplate(id, p11.CKK_EC), spec.Exportable, spec.SecurityDomain)
	}

	s, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	pubObj, privObj, err := p.ctx.GenerateKeyPair(s, []*p11.Mechanism{p11.NewMechanism(mech, nil)}, pubT, privT)
	if err != nil {
		p.put(s, sessionBroken(err))
		return nil, hsmErr("generate key pair", err)
	}
	var pub *publicKey
	if c == nil {
		pub, err = p.readRSAPublic(s, pubObj)
	} else {
		pub, err = p.readECPublic(s, pubObj, c)
	}
	if err == nil && c == nil && pub.bits != spec.Size {
		err = fmt.Errorf("pkcs11: the token generated a %d-bit key, not %d bits: %w", pub.bits, spec.Size, ErrHSM)
	}
	if err != nil {
		_ = p.ctx.DestroyObject(s, privObj)
		_ = p.ctx.DestroyObject(s, pubObj)
		p.put(s, sessionBroken(err))
		return nil, err
	}
	p.put(s, false)
	return newKeyOf(p, pub, id, spec.Exportable), nil
}

// protectedTemplate is the common part of every key object Coffer makes in the token: a
// private token object, sensitive, not extractable, with CKA_ID id and label coffer-<id>.
func protectedTemplate(class, keyType uint, id []byte) []*p11.Attribute {
	return []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, class),
		p11.NewAttribute(p11.CKA_KEY_TYPE, keyType),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
		p11.NewAttribute(p11.CKA_ID, id),
		p11.NewAttribute(p11.CKA_LABEL, "coffer-"+hex.EncodeToString(id)),
	}
}

// privateTemplate is the template of a private key object (generated or unwrapped): it
// signs, and an RSA key also decrypts and unwraps.
func privateTemplate(id []byte, keyType uint) []*p11.Attribute {
	t := append(protectedTemplate(p11.CKO_PRIVATE_KEY, keyType, id), p11.NewAttribute(p11.CKA_SIGN, true))
	if keyType == p11.CKK_RSA {
		t = append(t, p11.NewAttribute(p11.CKA_DECRYPT, true), p11.NewAttribute(p11.CKA_UNWRAP, true))
	}
	return t
}

// readRSAPublic reads the modulus and exponent of a public (or private) RSA key object.
func (p *Provider) readRSAPublic(s p11.SessionHandle, obj p11.ObjectHandle) (*publicKey, error) {
	attrs, err := p.ctx.GetAttributeValue(s, obj, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_MODULUS, nil),
		p11.NewAttribute(p11.CKA_PUBLIC_EXPONENT, nil),
	})
	if err != nil || len(attrs) != 2 {
		return nil, hsmErr("read public key", err)
	}
	n := new(big.Int).SetBytes(attrs[0].Value)
	e := new(big.Int).SetBytes(attrs[1].Value)
	if !e.IsInt64() || e.Int64() != rsaExponent || !rsaSizes[n.BitLen()] {
		return nil, fmt.Errorf("pkcs11: the token returned an unexpected RSA public key: %w", ErrHSM)
	}
	return newRSAPublic(&rsa.PublicKey{N: n, E: rsaExponent}, provider.RSAHSM), nil
}

// readECPublic reads CKA_EC_POINT (a DER OCTET STRING holding 04 ‖ x ‖ y) of a public key
// object and checks the point is on curve c.
func (p *Provider) readECPublic(s p11.SessionHandle, obj p11.ObjectHandle, c *curveInfo) (*publicKey, error) {
	attrs, err := p.ctx.GetAttributeValue(s, obj, []*p11.Attribute{p11.NewAttribute(p11.CKA_EC_POINT, nil)})
	if err != nil || len(attrs) != 1 {
		return nil, hsmErr("read public key", err)
	}
	var pt []byte
	if rest, err := asn1.Unmarshal(attrs[0].Value, &pt); err != nil || len(rest) != 0 {
		// Some tokens return the raw point without the OCTET STRING.
		pt = attrs[0].Value
	}
	ec, err := ecdsa.ParseUncompressedPublicKey(c.nist, pt)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: the token returned an invalid EC point: %w", ErrHSM)
	}
	return newECPublic(ec, c), nil
}
