package pkcs11

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"

	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/keywrap"
	"github.com/coffer-kms/coffer/internal/provider"
)

// Security-domain wrapping of managed HSM pools' keys (docs/HSM.md, provider.DomainWrapper).
//
// A pool's key is made (generated, BYOK-imported, unwrapped from a backup) with
// CKA_EXTRACTABLE=true and CKA_WRAP_WITH_TRUSTED=true, still CKA_SENSITIVE=true: the token
// then wraps it only with a wrapping key whose CKA_TRUSTED is true (C_WrapKey with any other
// key fails CKR_KEY_NOT_WRAPPABLE), its value never reads out, and nobody can set
// CKA_WRAP_WITH_TRUSTED back to false. Only the security officer can set CKA_TRUSTED, so
// this needs Config.SOPIN; without it pool keys are made non-extractable as before.
//
// The trusted key is the pool's security-domain wrapping key: an AES-256 key derived from
// the domain key (internal/secdomain), found by its derived CKA_ID and CKA_TRUSTED=true,
// labelled coffer-sd-<id>, sensitive, not extractable, not modifiable, not copyable, usable
// for C_WrapKey and C_UnwrapKey only. The SO logs in only to create it (asSO); SoftHSM2 lets
// the SO create public objects only (CKR_USER_NOT_LOGGED_IN for CKA_PRIVATE=true), so the
// key is CKA_PRIVATE=false: any session can find and use it, but its value is sensitive
// and it can wrap nothing a session cannot already reach. Before use, the object found is
// checked to hold the derived value: it wraps a known session key with CKM_AES_KEY_WRAP and
// the result must equal RFC 3394 computed here, so an object someone else planted under the
// id (only an SO could make it trusted) is never used.
//
// Backups wrap with CKM_AES_KEY_WRAP_PAD (the target as the token encodes it: PKCS #8 for
// RSA and EC, raw bytes for AES), restores unwrap with it into a new object of the pool's
// token with the template above, then check it is the backed-up key.
//
// Limits, by PKCS #11 itself: CKA_WRAP_WITH_TRUSTED binds a key to "any trusted key of the
// token", not to one domain's key; and a session holding the user PIN can unwrap a wrapped
// key with the trusted key under a template of its choosing (CKA_SENSITIVE=false). A token
// enforcing CKA_UNWRAP_TEMPLATE on the wrapping key would close that; the Go binding used
// here cannot set array attributes. docs/HSM.md says what follows.

// sdLabelPrefix starts the CKA_LABEL of security-domain wrapping keys.
const sdLabelPrefix = "coffer-sd-"

// maxDomainWrapped bounds a wrapped key (a PKCS #8 RSA-4096 key is about 2.4 KiB).
const maxDomainWrapped = 16 << 10

var _ provider.DomainWrapper = (*Provider)(nil)

// protect returns t, a key template of protectedTemplate, for a key made exportable (secure
// key release: extractable, export.go) or for a key of a managed HSM pool on a token with an
// SO PIN (extractable only under a trusted wrapping key); other keys stay non-extractable.
func (p *Provider) protect(t []*p11.Attribute, exportable, pool bool) []*p11.Attribute {
	if exportable {
		return extractableIf(t, true)
	}
	if pool && p.sopin != "" {
		return append(extractableIf(t, true), p11.NewAttribute(p11.CKA_WRAP_WITH_TRUSTED, true))
	}
	return t
}

// DomainKeys reports whether this token can hold security-domain wrapping keys (an SO PIN
// is configured).
func (p *Provider) DomainKeys() bool { return p.sopin != "" }

// domainKeyTemplate is the template of a security-domain wrapping key (see above).
func domainKeyTemplate(id, value []byte) []*p11.Attribute {
	return []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_PRIVATE, false),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
		p11.NewAttribute(p11.CKA_MODIFIABLE, false),
		p11.NewAttribute(p11.CKA_COPYABLE, false),
		p11.NewAttribute(p11.CKA_TRUSTED, true),
		p11.NewAttribute(p11.CKA_WRAP, true),
		p11.NewAttribute(p11.CKA_UNWRAP, true),
		p11.NewAttribute(p11.CKA_ENCRYPT, false),
		p11.NewAttribute(p11.CKA_DECRYPT, false),
		p11.NewAttribute(p11.CKA_SIGN, false),
		p11.NewAttribute(p11.CKA_VERIFY, false),
		p11.NewAttribute(p11.CKA_DERIVE, false),
		p11.NewAttribute(p11.CKA_ID, id),
		p11.NewAttribute(p11.CKA_LABEL, sdLabelPrefix+hex.EncodeToString(id)),
		p11.NewAttribute(p11.CKA_VALUE, value),
	}
}

// findDomainKey finds the trusted wrapping key with CKA_ID id (ok false if there is none).
func (p *Provider) findDomainKey(s p11.SessionHandle, id []byte) (p11.ObjectHandle, bool, error) {
	return p.findOne(s, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
		p11.NewAttribute(p11.CKA_ID, id),
		p11.NewAttribute(p11.CKA_TRUSTED, true),
	})
}

// errWrongDomainKey says the trusted object found under a domain key's id does not hold the
// derived value.
var errWrongDomainKey = fmt.Errorf("pkcs11: the token's security-domain wrapping key under this id does not hold the security domain's key: %w", ErrHSM)

// checkDomainKey checks that obj holds value: it wraps a fixed session key (CKM_AES_KEY_WRAP,
// RFC 3394, which SoftHSM2 does exactly for 16 bytes) and compares with keywrap.
func (p *Provider) checkDomainKey(s p11.SessionHandle, obj p11.ObjectHandle, value []byte) error {
	probe := []byte("coffer-sd-check!") // 16 bytes, not secret
	tmp, err := p.ctx.CreateObject(s, sessionSecret(probe))
	if err != nil {
		return hsmErr("create session object", err)
	}
	defer func() { _ = p.ctx.DestroyObject(s, tmp) }()
	got, err := p.ctx.WrapKey(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_WRAP, nil)}, obj, tmp)
	if err != nil {
		return hsmErr("check the security-domain wrapping key", err)
	}
	want, err := keywrap.Wrap(value, probe)
	if err != nil || !bytes.Equal(got, want) {
		return errWrongDomainKey
	}
	return nil
}

// InstallDomainKey creates the security-domain wrapping key id with value in the token,
// unless a trusted key with that id is there already, and checks that the key holds value.
// Creating it logs the security officer in (asSO). store is ignored (the server routes to
// the pool's token by it). Without an SO PIN it is provider.ErrUnsupported.
func (p *Provider) InstallDomainKey(ctx context.Context, _ string, id, value []byte) error {
	if p.sopin == "" {
		return fmt.Errorf("%w: token %q has no security officer PIN configured (pkcs11-so-pin-file), so it cannot hold a trusted security-domain wrapping key", provider.ErrUnsupported, p.label)
	}
	if len(id) != idLen || len(value) != 32 {
		return fmt.Errorf("%w: a security-domain wrapping key has a %d-byte id and 32 bytes", provider.ErrInvalidParameter, idLen)
	}
	if _, ok := p.domainKeys.Load(hex.EncodeToString(id)); ok {
		return nil
	}
	found, err := p.withSession(ctx, func(s p11.SessionHandle) error {
		obj, ok, err := p.findDomainKey(s, id)
		if err != nil {
			return err
		}
		if !ok {
			return errAbsent
		}
		return p.checkDomainKey(s, obj, value)
	})
	if err == nil && !found {
		err = p.asSO(ctx, func(s p11.SessionHandle) error {
			if _, ok, err := p.findDomainKey(s, id); err != nil || ok {
				return err
			}
			if _, err := p.ctx.CreateObject(s, domainKeyTemplate(id, value)); err != nil {
				return hsmErr("create the security-domain wrapping key as security officer", err)
			}
			return nil
		})
		if err == nil {
			_, err = p.withSession(ctx, func(s p11.SessionHandle) error {
				obj, ok, err := p.findDomainKey(s, id)
				if err == nil && !ok {
					err = fmt.Errorf("pkcs11: the security-domain wrapping key just created is not found: %w", ErrHSM)
				}
				if err != nil {
					return err
				}
				return p.checkDomainKey(s, obj, value)
			})
		}
	}
	if err != nil {
		return err
	}
	p.domainKeys.Store(hex.EncodeToString(id), true)
	return nil
}

// withSession runs f in a pooled session. f's errAbsent (it found nothing) is reported as
// ok false and no error; any other error as it is.
func (p *Provider) withSession(ctx context.Context, f func(p11.SessionHandle) error) (bool, error) {
	s, err := p.get(ctx)
	if err != nil {
		return false, err
	}
	err = f(s)
	p.put(s, sessionBroken(err))
	if errors.Is(err, errAbsent) {
		return false, nil
	}
	return err == nil, err
}

// errAbsent is returned by a withSession function that found nothing.
var errAbsent = errors.New("absent")

// domainKey returns the checked wrapping key id in session s (InstallDomainKey must have
// checked it since Open).
func (p *Provider) domainKey(s p11.SessionHandle, id []byte) (p11.ObjectHandle, error) {
	if _, ok := p.domainKeys.Load(hex.EncodeToString(id)); !ok {
		return 0, fmt.Errorf("pkcs11: the security-domain wrapping key is not installed in token %q: %w", p.label, ErrHSM)
	}
	obj, ok, err := p.findDomainKey(s, id)
	if err == nil && !ok {
		p.domainKeys.Delete(hex.EncodeToString(id))
		err = fmt.Errorf("pkcs11: the security-domain wrapping key is no longer in token %q: %w", p.label, ErrHSM)
	}
	return obj, err
}

// errSORefused: the token refused the SO PIN (asSO tries it once per Provider).
var errSORefused = fmt.Errorf("pkcs11: the token refused the security officer PIN (pkcs11-so-pin-file); it is not tried again until the server restarts: %w", ErrHSM)

// asSO runs f in a session logged in as the security officer. Login state is per token
// and application, so the user is logged out meanwhile: asSO first takes every session of
// the pool (no operation of this provider runs until it is done), logs the user in again
// afterwards whatever happened, and forgets the cached object handles (SoftHSM2 renumbers
// private objects across a logout). Other Providers of this process on the same token
// would be logged out too; the server opens one per token.
func (p *Provider) asSO(ctx context.Context, f func(p11.SessionHandle) error) error {
	p.soMu.Lock()
	defer p.soMu.Unlock()
	if p.soRefused {
		return errSORefused
	}
	held := make([]session, 0, p.size)
	release := func() {
		for _, s := range held {
			p.pool <- s
		}
	}
	for len(held) < p.size {
		select {
		case <-p.done:
			release()
			return errClosed
		case <-ctx.Done():
			release()
			return ctx.Err()
		case s := <-p.pool:
			held = append(held, s)
		}
	}
	s, err := p.ctx.OpenSession(p.slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		release()
		return hsmErr("open session", err)
	}
	defer p.objects.m.Clear()
	if err := p.ctx.Logout(s); err != nil && !isRV(err, p11.CKR_USER_NOT_LOGGED_IN) {
		_ = p.ctx.CloseSession(s)
		release()
		return hsmErr("log out", err)
	}
	if err = p.ctx.Login(s, p11.CKU_SO, p.sopin); err != nil {
		if isRV(err, p11.CKR_PIN_INCORRECT) || isRV(err, p11.CKR_PIN_LOCKED) {
			p.soRefused = true // never try a wrong PIN again: tokens lock it
		}
		err = fmt.Errorf("%w: %w", errSORefused, hsmErr("login", err))
	} else {
		err = f(s)
		_ = p.ctx.Logout(s)
	}
	lerr := p.ctx.Login(s, p11.CKU_USER, p.pin)
	_ = p.ctx.CloseSession(s)
	if lerr != nil && !isRV(lerr, p11.CKR_USER_ALREADY_LOGGED_IN) {
		// The pool's sessions are public now: drop them, get reopens and logs in.
		for i := range held {
			if held[i].ok {
				_ = p.ctx.CloseSession(held[i].h)
			}
			held[i] = session{}
		}
		if err == nil {
			err = hsmErr("log the user in again", lerr)
		}
	}
	release()
	return err
}

// WrapForDomain wraps the key of handle in the token with the checked security-domain
// wrapping key id (CKM_AES_KEY_WRAP_PAD). A key whose object is not extractable (made
// before an SO PIN was configured, or a vault's key) is provider.ErrNotExportable.
func (p *Provider) WrapForDomain(ctx context.Context, handle, id []byte) (provider.DomainWrapped, error) {
	doc, _, err := p.ownHandle(handle)
	if err != nil {
		return provider.DomainWrapped{}, err
	}
	class := uint(p11.CKO_PRIVATE_KEY)
	if doc.AESBits != 0 {
		class = p11.CKO_SECRET_KEY
	}
	var out []byte
	_, err = p.withSession(ctx, func(s p11.SessionHandle) error {
		wk, err := p.domainKey(s, id)
		if err != nil {
			return err
		}
		target, err := p.keyObject(s, class, doc.ID)
		if err != nil {
			return err
		}
		attrs, err := p.ctx.GetAttributeValue(s, target, []*p11.Attribute{p11.NewAttribute(p11.CKA_EXTRACTABLE, nil)})
		if err != nil || len(attrs) != 1 {
			return hsmErr("read key attributes", err)
		}
		if !isTrue(attrs[0].Value) {
			return provider.ErrNotExportable
		}
		out, err = p.ctx.WrapKey(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_WRAP_PAD, nil)}, wk, target)
		if err != nil {
			return hsmErr("wrap the key with the security-domain wrapping key", err)
		}
		return nil
	})
	if err != nil {
		return provider.DomainWrapped{}, err
	}
	return provider.DomainWrapped{Alg: provider.AlgCKMAESKeyWrapPad, Value: out}, nil
}

// errBadWrapped is the one error of a wrapped key that does not unwrap into the key its
// handle describes.
var errBadWrapped = fmt.Errorf("%w: the wrapped key does not unwrap, under this security domain, into the key of its handle", provider.ErrInvalidKey)

// UnwrapForDomain unwraps w with the checked wrapping key id into a new object of this token
// and checks it is the key handle describes (handle may name another token: only its key
// type, public key, size and exportable flag are used). RSA keys must have the handle's
// modulus and sign consistently, EC keys must sign for the handle's point, AES keys must
// have the handle's size; a key that fails is destroyed. RSA and EC keys get a public key
// object too, as generated keys have. The new key is protected as Generate protects a
// pool's key.
func (p *Provider) UnwrapForDomain(ctx context.Context, _ string, id, handle []byte, w provider.DomainWrapped) (provider.Key, error) {
	doc, pub, err := parseHandle(handle)
	if err != nil {
		return nil, err
	}
	if w.Alg != provider.AlgCKMAESKeyWrapPad || len(w.Value) < 24 || len(w.Value)%8 != 0 || len(w.Value) > maxDomainWrapped {
		return nil, errBadWrapped
	}
	if doc.AESBits != 0 && len(w.Value)-8 != doc.AESBits/8 {
		return nil, errBadWrapped
	}
	nid := make([]byte, idLen)
	if _, err := rand.Read(nid); err != nil {
		return nil, fmt.Errorf("pkcs11: no randomness for the key id")
	}
	var t []*p11.Attribute
	switch {
	case doc.AESBits != 0:
		t = aesTemplate(nid, 0)
	case pub.isRSA():
		t = privateTemplate(nid, p11.CKK_RSA)
	default:
		t = privateTemplate(nid, p11.CKK_EC)
	}
	t = p.protect(t, doc.Exportable, true)
	var key provider.Key
	_, err = p.withSession(ctx, func(s p11.SessionHandle) error {
		wk, err := p.domainKey(s, id)
		if err != nil {
			return err
		}
		obj, err := p.ctx.UnwrapKey(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_WRAP_PAD, nil)}, wk, w.Value, t)
		if err != nil {
			if tokenGone(err) {
				return hsmErr("unwrap", err)
			}
			return errBadWrapped
		}
		key, err = p.checkRestored(s, obj, nid, doc, pub)
		if err != nil {
			_ = p.ctx.DestroyObject(s, obj)
		}
		return err
	})
	return key, err
}

// checkRestored checks an unwrapped key object against its handle (UnwrapForDomain) and
// makes the public key object of an RSA or EC key.
func (p *Provider) checkRestored(s p11.SessionHandle, obj p11.ObjectHandle, id []byte, doc parsed, want *publicKey) (provider.Key, error) {
	if doc.AESBits != 0 {
		if _, err := p.checkTransferred(s, provider.OctHSM, obj, id, doc.AESBits, nil); err != nil {
			return nil, errBadWrapped
		}
		return newAESKeyOf(p, id, doc.AESBits, doc.Exportable), nil
	}
	var err error
	if want.isRSA() {
		var k provider.Key
		k, err = p.checkTransferred(s, provider.RSAHSM, obj, id, 0, nil)
		if err == nil && !k.(*Key).publicKey.equal(want) {
			err = errBadWrapped
		}
	} else {
		_, err = p.checkTransferredEC(s, obj, id, want)
	}
	if err != nil {
		if tokenGone(err) {
			return nil, err
		}
		return nil, errBadWrapped
	}
	if err := p.createPublic(s, id, want); err != nil {
		return nil, err
	}
	return newKeyOf(p, want, id, doc.Exportable), nil
}

// createPublic makes the public key object of a restored RSA or EC key, as Generate's.
func (p *Provider) createPublic(s p11.SessionHandle, id []byte, pub *publicKey) error {
	t := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_PRIVATE, false),
		p11.NewAttribute(p11.CKA_ID, id),
		p11.NewAttribute(p11.CKA_LABEL, "coffer-"+hex.EncodeToString(id)),
		p11.NewAttribute(p11.CKA_VERIFY, true),
	}
	if pub.isRSA() {
		t = append(t,
			p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_RSA),
			p11.NewAttribute(p11.CKA_MODULUS, pub.rsa.N.Bytes()),
			p11.NewAttribute(p11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(pub.rsa.E)).Bytes()),
			p11.NewAttribute(p11.CKA_ENCRYPT, true),
			p11.NewAttribute(p11.CKA_WRAP, true),
		)
	} else {
		params, err := asn1.Marshal(pub.curve.oid)
		if err != nil {
			return fmt.Errorf("pkcs11: encoding the curve: %w", err)
		}
		raw, err := pub.ec.Bytes()
		if err != nil {
			return fmt.Errorf("pkcs11: encoding the EC point: %w", err)
		}
		pt, err := asn1.Marshal(raw)
		if err != nil {
			return fmt.Errorf("pkcs11: encoding the EC point: %w", err)
		}
		t = append(t,
			p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_EC),
			p11.NewAttribute(p11.CKA_EC_PARAMS, params),
			p11.NewAttribute(p11.CKA_EC_POINT, pt),
		)
	}
	if _, err := p.ctx.CreateObject(s, t); err != nil {
		return hsmErr("create the public key object", err)
	}
	return nil
}
