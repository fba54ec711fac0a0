package pkcs11

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	p11 "github.com/miekg/pkcs11"
)

// Auto-unseal: an AES-256 key object of the token, found by its CKA_LABEL, wraps the
// barrier's root key with CKM_AES_GCM inside the token. Seal satisfies the barrier's
// RootKeyWrapper seam (by shape: this package does not import barrier).
//
// A wrapped root key is 0x01 ‖ iv (12 bytes) ‖ ciphertext ‖ tag (16 bytes); the aad the
// barrier gives (the seal configuration) is authenticated by the token's GCM.

// ErrNoSealKey says the token has no seal key with the configured label: the store was
// initialised with another token, or the key object was deleted.
var ErrNoSealKey = errors.New("pkcs11: the token has no seal key with this label")

// sealFormat is the version byte of a wrapped root key.
const sealFormat = 1

// Seal wraps and unwraps the barrier root key with the token's AES-256 key labelled Label.
type Seal struct {
	p     *Provider
	label string
}

// Seal returns the auto-unseal wrapper whose key object has CKA_LABEL label. Nothing is read
// from the token until Wrap or Unwrap.
func (p *Provider) Seal(label string) *Seal { return &Seal{p: p, label: label} }

// Type returns "pkcs11", the seal type recorded in the seal configuration.
func (*Seal) Type() string { return "pkcs11" }

// Label returns the CKA_LABEL of the seal key.
func (s *Seal) Label() string { return s.label }

// Wrap encrypts rootKey under the seal key, authenticating aad. It creates the seal key
// (AES-256, sensitive, never extractable, encrypt/decrypt only) if the token has none with
// the label: Wrap runs once, at init.
func (s *Seal) Wrap(ctx context.Context, rootKey, aad []byte) ([]byte, error) {
	k, err := s.key(ctx, true)
	if err != nil {
		return nil, err
	}
	iv, err := newGCMIV()
	if err != nil {
		return nil, err
	}
	r, err := k.sealGCM(ctx, iv, aad, rootKey)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 1+gcmIVLen+len(r.Value)+gcmTagLen)
	out = append(append(append(append(out, sealFormat), iv...), r.Value...), r.Tag...)
	return out, nil
}

// Unwrap decrypts a blob made by Wrap. It fails with ErrNoSealKey if the token has no seal
// key with the label, and with an error wrapping provider.ErrDecrypt if blob or aad changed
// (or the key is another one).
func (s *Seal) Unwrap(ctx context.Context, blob, aad []byte) ([]byte, error) {
	if len(blob) < 1+gcmIVLen+gcmTagLen || blob[0] != sealFormat {
		return nil, fmt.Errorf("pkcs11: the wrapped root key is not in format %d", sealFormat)
	}
	k, err := s.key(ctx, false)
	if err != nil {
		return nil, err
	}
	iv, rest := blob[1:1+gcmIVLen], blob[1+gcmIVLen:]
	n := len(rest) - gcmTagLen
	return k.openGCM(ctx, iv, aad, rest[:n], rest[n:])
}

// key finds the seal key by label (creating it if create is set and there is none) and
// checks that it is an AES-256 key that is sensitive and was never extractable.
func (s *Seal) key(ctx context.Context, create bool) (*aesKey, error) {
	if s.label == "" {
		return nil, errors.New("pkcs11: no seal key label configured")
	}
	sess, err := s.p.get(ctx)
	if err != nil {
		return nil, err
	}
	id, err := s.find(sess)
	if errors.Is(err, ErrNoSealKey) && create {
		id, err = s.generate(sess)
	}
	s.p.put(sess, sessionBroken(err))
	if err != nil {
		return nil, err
	}
	return newAESKey(s.p, id, 256), nil
}

func (s *Seal) find(sess p11.SessionHandle) ([]byte, error) {
	tmpl := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_LABEL, s.label),
	}
	if err := s.p.ctx.FindObjectsInit(sess, tmpl); err != nil {
		return nil, hsmErr("find seal key", err)
	}
	objs, _, err := s.p.ctx.FindObjects(sess, 2)
	if ferr := s.p.ctx.FindObjectsFinal(sess); err == nil {
		err = ferr
	}
	if err != nil {
		return nil, hsmErr("find seal key", err)
	}
	switch len(objs) {
	case 0:
		return nil, fmt.Errorf("%w %q", ErrNoSealKey, s.label)
	case 1:
	default:
		return nil, fmt.Errorf("pkcs11: %d secret keys are labelled %q: the seal key label must be unique", len(objs), s.label)
	}
	attrs, err := s.p.ctx.GetAttributeValue(sess, objs[0], []*p11.Attribute{
		p11.NewAttribute(p11.CKA_KEY_TYPE, nil),
		p11.NewAttribute(p11.CKA_VALUE_LEN, nil),
		p11.NewAttribute(p11.CKA_SENSITIVE, nil),
		p11.NewAttribute(p11.CKA_NEVER_EXTRACTABLE, nil),
		p11.NewAttribute(p11.CKA_ID, nil),
	})
	if err != nil || len(attrs) != 5 {
		return nil, hsmErr("read seal key attributes", err)
	}
	if ulong(attrs[0].Value) != p11.CKK_AES || ulong(attrs[1].Value) != 32 {
		return nil, fmt.Errorf("pkcs11: the secret key labelled %q is not an AES-256 key", s.label)
	}
	if !isTrue(attrs[2].Value) || !isTrue(attrs[3].Value) {
		return nil, fmt.Errorf("pkcs11: the secret key labelled %q is extractable or not sensitive: refusing it as the seal key", s.label)
	}
	if len(attrs[4].Value) == 0 {
		return nil, fmt.Errorf("pkcs11: the secret key labelled %q has no CKA_ID", s.label)
	}
	return attrs[4].Value, nil
}

// generate makes the seal key: a token object, private, sensitive, never extractable,
// that encrypts and decrypts only.
func (s *Seal) generate(sess p11.SessionHandle) ([]byte, error) {
	id := make([]byte, idLen)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("pkcs11: no randomness for the key id")
	}
	tmpl := append(protectedTemplate(p11.CKO_SECRET_KEY, p11.CKK_AES, id),
		p11.NewAttribute(p11.CKA_ENCRYPT, true),
		p11.NewAttribute(p11.CKA_DECRYPT, true),
		p11.NewAttribute(p11.CKA_WRAP, false),
		p11.NewAttribute(p11.CKA_UNWRAP, false),
		p11.NewAttribute(p11.CKA_VALUE_LEN, 32),
	)
	for i, a := range tmpl {
		if a.Type == p11.CKA_LABEL {
			tmpl[i] = p11.NewAttribute(p11.CKA_LABEL, s.label) // found by label, not by CKA_ID
		}
	}
	if _, err := s.p.ctx.GenerateKey(sess, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_GEN, nil)}, tmpl); err != nil {
		return nil, hsmErr("generate seal key", err)
	}
	return id, nil
}

// isTrue decodes a CK_BBOOL attribute value.
func isTrue(b []byte) bool { return len(b) == 1 && b[0] != 0 }
