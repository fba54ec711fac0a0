package pkcs11

import (
	"context"
	"crypto/aes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
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
// ErrUnsupported for another curve (P-256K) and key_hsm (ImportTransfer); a token failure
// is ErrHSM, and no object is left behind. An oct or oct-HSM JWK (k of 16, 24 or 32 bytes
// and nothing else) becomes an AES key the same way (importAES).
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
		if len(jwk.T) > 0 {
			return nil, fmt.Errorf("%w: a key_hsm transfer blob is imported by ImportTransfer", provider.ErrUnsupported)
		}
		return p.importAES(ctx, jwk)
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
	w, err := wrapForImport(pkcs8)
	if err != nil {
		return nil, err
	}
	defer clear(w.kek)
	t := p.protect(privateTemplate(w.id, keyType), jwk.Exportable, jwk.SecurityDomain)
	var key provider.Key
	_, err = p.withSession(ctx, func(s p11.SessionHandle) error {
		obj, err := p.unwrapImport(s, w, t)
		if err != nil {
			return err
		}
		key, err = p.checkRestored(s, obj, w.id, parsed{Exportable: jwk.Exportable}, want)
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

// importAES puts the AES key of an oct JWK into the token: wrapped by a one-use session key
// (CKM_AES_KEY_WRAP_PAD) like the RSA and EC keys above, into an object of the template a
// generated AES key has, then checked in the token: its encryption of a zero block must
// equal the given key's (a key check value computed here with crypto/aes).
func (p *Provider) importAES(ctx context.Context, jwk *provider.JWK) (provider.Key, error) {
	k := []byte(jwk.K)
	if !aesSizes[8*len(k)] {
		return nil, fmt.Errorf("%w: an oct JWK needs k of 16, 24 or 32 bytes (AES-128, -192 or -256), got %d bytes", provider.ErrInvalidKey, len(k))
	}
	if len(jwk.N)+len(jwk.E)+len(jwk.D)+len(jwk.P)+len(jwk.Q)+len(jwk.DP)+len(jwk.DQ)+len(jwk.QI)+len(jwk.X)+len(jwk.Y) > 0 || jwk.Crv != "" {
		return nil, fmt.Errorf("%w: an oct JWK has only k", provider.ErrInvalidKey)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("%w: k is not an AES key", provider.ErrInvalidKey)
	}
	kcv := make([]byte, blockLen)
	block.Encrypt(kcv, kcv)
	w, err := wrapForImport(k)
	if err != nil {
		return nil, err
	}
	defer clear(w.kek)
	t := p.protect(aesTemplate(w.id, 0), jwk.Exportable, jwk.SecurityDomain)
	var key provider.Key
	_, err = p.withSession(ctx, func(s p11.SessionHandle) error {
		obj, err := p.unwrapImport(s, w, t)
		if err != nil {
			return err
		}
		err = p.ctx.EncryptInit(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_CBC, make([]byte, blockLen))}, obj)
		var got []byte
		if err == nil {
			got, err = p.ctx.Encrypt(s, make([]byte, blockLen))
		}
		if err != nil || subtle.ConstantTimeCompare(got, kcv) != 1 {
			_ = p.ctx.DestroyObject(s, obj)
			if err != nil {
				return hsmErr("check the imported key", err)
			}
			return errImportMismatch
		}
		key = newAESKeyOf(p, w.id, 8*len(k), jwk.Exportable)
		return nil
	})
	return key, err
}

// importWrap is a key on its way into the token: wrapped under a one-use key, and the id
// its object will have.
type importWrap struct{ kek, id, wrapped []byte }

// wrapForImport wraps secret (a PKCS #8 key or an AES key) under a fresh random AES-256 key
// with RFC 5649 and draws the object id. The caller clears w.kek.
func wrapForImport(secret []byte) (importWrap, error) {
	w := importWrap{kek: make([]byte, 32), id: make([]byte, idLen)}
	if _, err := rand.Read(w.kek); err != nil {
		return w, fmt.Errorf("pkcs11: no randomness for the import's wrapping key")
	}
	if _, err := rand.Read(w.id); err != nil {
		return w, fmt.Errorf("pkcs11: no randomness for the key id")
	}
	var err error
	if w.wrapped, err = keywrap.WrapPad(w.kek, secret); err != nil {
		return w, fmt.Errorf("pkcs11: wrap the key for the token: %w", err)
	}
	return w, nil
}

// unwrapImport makes w's wrapping key a session object, unwraps w into an object of
// template t (CKM_AES_KEY_WRAP_PAD) and destroys the wrapping key on every path.
func (p *Provider) unwrapImport(s p11.SessionHandle, w importWrap, t []*p11.Attribute) (p11.ObjectHandle, error) {
	eph, err := p.ctx.CreateObject(s, ephemeralTemplate(w.kek))
	if err != nil {
		return 0, hsmErr("create the import's wrapping key", err)
	}
	obj, err := p.ctx.UnwrapKey(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_WRAP_PAD, nil)}, eph, w.wrapped, t)
	if derr := p.ctx.DestroyObject(s, eph); derr != nil && err == nil {
		_ = p.ctx.DestroyObject(s, obj)
		return 0, hsmErr("destroy the import's wrapping key", derr)
	}
	if err != nil {
		return 0, hsmErr("unwrap the imported key", err)
	}
	return obj, nil
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
