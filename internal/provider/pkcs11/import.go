package pkcs11

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"

	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/keywrap"
	"github.com/coffer-kms/coffer/internal/provider"
)

// Import of a private key the caller holds in clear (a certificate's key from a PFX or PEM
// file). The key enters the token the way a BYOK target does (byok.go) and a restored key
// does (sdwrap.go): wrapped, by C_UnwrapKey with CKM_AES_KEY_WRAP_PAD, into an object made
// from the same template (sensitive, and not extractable unless exportable or bound to
// trusted wrapping keys: protect), then checked in the token against the public key and
// given its public key object (checkRestored). The wrapping key is an AES-256 session
// object of random value made for the one import and destroyed on every path, so the
// PKCS #8 key crosses the PKCS #11 interface only wrapped. The cleartext copies made here
// (the PKCS #8 encoding, the wrapping key's value, the key's integers) are overwritten
// before Import returns; the caller's JWK is left alone (Import does not change its input),
// and the caller clears it.

var errImportMismatch = fmt.Errorf("%w: the token does not hold the imported key as given", provider.ErrInvalidKey)

// Import validates a private JWK of kty RSA-HSM or EC-HSM with Key Vault's import rules
// (provider.PrivateKeyOf: RSA 2048/3072/4096 bits with e = 65537 and consistent CRT
// values; EC on P-256, P-384 or P-521 with d·G = (x, y)) and puts the key into the token
// (see above). Plain RSA and EC give the same token keys, reported as -HSM, as Generate
// does. jwk.Exportable and jwk.SecurityDomain protect the object as the same KeySpec
// fields do in Generate. Errors: ErrInvalidKey for key material that breaks the rules,
// ErrUnsupported for another curve (P-256K), oct keys (which come into the token by BYOK
// only) and key_hsm (ImportTransfer); a token failure is ErrHSM, and no object is left
// behind.
func (p *Provider) Import(ctx context.Context, jwk *provider.JWK) (provider.Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if jwk == nil {
		return nil, fmt.Errorf("%w: no JWK given", provider.ErrInvalidKey)
	}
	switch jwk.Kty {
	case provider.RSA, provider.RSAHSM, provider.EC, provider.ECHSM:
	case provider.Oct, provider.OctHSM:
		return nil, fmt.Errorf("%w: AES keys come into the token by BYOK (key_hsm) only", provider.ErrUnsupported)
	default:
		return nil, fmt.Errorf("%w: unknown kty", provider.ErrInvalidKey)
	}
	if len(jwk.T) > 0 {
		return nil, fmt.Errorf("%w: a key_hsm transfer blob is imported by ImportTransfer", provider.ErrUnsupported)
	}
	priv, err := provider.PrivateKeyOf(jwk)
	if err != nil {
		return nil, err
	}
	defer provider.WipePrivate(priv)
	var want *publicKey
	var keyType uint
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		want, keyType = newRSAPublic(&k.PublicKey, provider.RSAHSM), p11.CKK_RSA
	case *ecdsa.PrivateKey:
		want, keyType = newECPublic(&k.PublicKey, curveOf(k.Curve)), p11.CKK_EC
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: the key does not encode as PKCS #8", provider.ErrInvalidKey)
	}
	defer clear(pkcs8)
	kek := make([]byte, 32)
	defer clear(kek)
	id := make([]byte, idLen)
	if _, err := rand.Read(kek); err != nil {
		return nil, fmt.Errorf("pkcs11: no randomness for the import's wrapping key")
	}
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("pkcs11: no randomness for the key id")
	}
	wrapped, err := keywrap.WrapPad(kek, pkcs8)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: wrap the key for the token: %w", err)
	}
	t := p.protect(privateTemplate(id, keyType), jwk.Exportable, jwk.SecurityDomain)
	var key provider.Key
	_, err = p.withSession(ctx, func(s p11.SessionHandle) error {
		eph, err := p.ctx.CreateObject(s, ephemeralTemplate(kek))
		if err != nil {
			return hsmErr("create the import's wrapping key", err)
		}
		obj, err := p.ctx.UnwrapKey(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_WRAP_PAD, nil)}, eph, wrapped, t)
		if derr := p.ctx.DestroyObject(s, eph); derr != nil && err == nil {
			_ = p.ctx.DestroyObject(s, obj)
			return hsmErr("destroy the import's wrapping key", derr)
		}
		if err != nil {
			return hsmErr("unwrap the imported key", err)
		}
		key, err = p.checkRestored(s, obj, id, parsed{Exportable: jwk.Exportable}, want)
		if err != nil {
			_ = p.ctx.DestroyObject(s, obj)
		}
		return err
	})
	if errors.Is(err, errBadWrapped) {
		return nil, errImportMismatch
	}
	return key, err
}

// ephemeralTemplate is the template of a one-use AES wrapping key (a BYOK transfer's
// ephemeral key, an import's wrapping key): a session object, sensitive and not
// extractable, that only unwraps. value is its key for C_CreateObject; nil when C_UnwrapKey
// makes it.
func ephemeralTemplate(value []byte) []*p11.Attribute {
	t := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
		p11.NewAttribute(p11.CKA_TOKEN, false),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
		p11.NewAttribute(p11.CKA_UNWRAP, true),
		p11.NewAttribute(p11.CKA_ENCRYPT, false),
		p11.NewAttribute(p11.CKA_DECRYPT, false),
	}
	if value != nil {
		t = append(t, p11.NewAttribute(p11.CKA_VALUE, value))
	}
	return t
}
