package pkcs11

import (
	"context"
	"crypto/rand"
	"fmt"

	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/provider"
)

// oct-HSM keys: AES secret keys (128, 192 or 256 bits) generated in the token with
// CKM_AES_KEY_GEN, sensitive and never extractable. Every operation runs in the token:
//
//	alg                            operation            mechanism
//	A128GCM, A192GCM, A256GCM      encrypt, decrypt     CKM_AES_GCM (96-bit IV, 128-bit tag)
//	A128CBC, A192CBC, A256CBC      encrypt, decrypt     CKM_AES_CBC (16-byte IV, no padding)
//	A128CBCPAD, ..., A256CBCPAD    encrypt, decrypt     CKM_AES_CBC_PAD (PKCS #7 padding)
//	A128KW, A192KW, A256KW         wrapKey, unwrapKey   CKM_AES_KEY_WRAP (RFC 3394)
//	CKM_AES_KEY_WRAP               wrapKey, unwrapKey   CKM_AES_KEY_WRAP (any key size)
//	CKM_AES_KEY_WRAP_PAD           wrapKey, unwrapKey   CKM_AES_KEY_WRAP_PAD (RFC 5649)
//
// The A<n>* names need a key of n bits (Key Vault's table). For GCM the IV is generated
// here (12 random bytes, SECURITY-NOTES C4) and a caller's IV is refused, as the Azure
// SDKs do; CBC needs the caller's 16-byte IV. The key-wrap mechanisms are C_WrapKey and
// C_UnwrapKey mechanisms (SoftHSM2 offers them for nothing else), so wrapKey brings the
// caller's key bytes into the token as a session-only generic secret, wraps it and destroys
// it; unwrapKey unwraps into such an object, reads its value (Key Vault returns the key to
// the caller) and destroys it. A token whose CKM_AES_KEY_WRAP_PAD is not RFC 5649 for
// lengths that are not a multiple of 8 (SoftHSM2 2.6.1, see probeKWP) gets such wraps
// refused; its unwrap is used as it is (it passes the Wycheproof aes_kwp vectors).

// aesMode is the AES mode of an algorithm.
type aesMode int

const (
	modeGCM aesMode = iota + 1
	modeCBC
	modeCBCPad
	modeKW
	modeKWP
)

// aesAlg is an AES algorithm: its mode and the key size it needs (0: any).
type aesAlg struct {
	mode aesMode
	bits int
}

var aesAlgs = map[string]aesAlg{
	provider.AlgA128GCM: {modeGCM, 128}, provider.AlgA192GCM: {modeGCM, 192}, provider.AlgA256GCM: {modeGCM, 256},
	provider.AlgA128CBC: {modeCBC, 128}, provider.AlgA192CBC: {modeCBC, 192}, provider.AlgA256CBC: {modeCBC, 256},
	provider.AlgA128CBCPAD: {modeCBCPad, 128}, provider.AlgA192CBCPAD: {modeCBCPad, 192}, provider.AlgA256CBCPAD: {modeCBCPad, 256},
	provider.AlgA128KW: {modeKW, 128}, provider.AlgA192KW: {modeKW, 192}, provider.AlgA256KW: {modeKW, 256},
	provider.AlgCKMAESKeyWrap: {modeKW, 0}, provider.AlgCKMAESKeyWrapPad: {modeKWP, 0},
}

// Sizes of the AES parameters.
const (
	gcmIVLen  = 12
	gcmTagLen = 16
	blockLen  = 16
	// maxAESInput bounds values (the api layer caps bodies at 64 KiB anyway).
	maxAESInput = 64 << 10
)

// aesSizes are the oct-HSM key sizes in bits.
var aesSizes = map[int]bool{128: true, 192: true, 256: true}

// aesKey is an AES key object in the token (oct-HSM). Like Key it is immutable, safe for
// concurrent use and finds its object by CKA_ID for each operation.
type aesKey struct {
	p          *Provider
	id         []byte
	bits       int
	handle     []byte
	exportable bool
}

var _ provider.Key = (*aesKey)(nil)

func newAESKey(p *Provider, id []byte, bits int) *aesKey { return newAESKeyOf(p, id, bits, false) }

// newAESKeyOf is newAESKey for a key that may be exportable (secure key release, export.go).
func newAESKeyOf(p *Provider, id []byte, bits int, exportable bool) *aesKey {
	return &aesKey{p: p, id: append([]byte(nil), id...), bits: bits, handle: p.stamp(marshalAESHandle(id, bits, exportable)), exportable: exportable}
}

// generateAES makes an AES key of spec.Size bits in the token.
func (p *Provider) generateAES(ctx context.Context, spec provider.KeySpec) (provider.Key, error) {
	if !aesSizes[spec.Size] {
		return nil, fmt.Errorf("%w: oct-HSM key size %d: use 128, 192 or 256", provider.ErrUnsupported, spec.Size)
	}
	if spec.Curve != "" || spec.PublicExponent != 0 {
		return nil, fmt.Errorf("%w: an oct-HSM key has no curve or public exponent", provider.ErrInvalidParameter)
	}
	id := make([]byte, idLen)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("pkcs11: no randomness for the key id")
	}
	s, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	_, err = p.ctx.GenerateKey(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_GEN, nil)}, p.protect(aesTemplate(id, spec.Size/8), spec.Exportable, spec.SecurityDomain))
	p.put(s, sessionBroken(err))
	if err != nil {
		return nil, hsmErr("generate key", err)
	}
	return newAESKeyOf(p, id, spec.Size, spec.Exportable), nil
}

// aesTemplate is the template of an AES key object: a token object, private, sensitive,
// never extractable, usable for encrypt, decrypt, wrap and unwrap. valueLen 0 leaves
// CKA_VALUE_LEN out (C_CreateObject and C_UnwrapKey take the length from the value).
func aesTemplate(id []byte, valueLen int) []*p11.Attribute {
	t := append(protectedTemplate(p11.CKO_SECRET_KEY, p11.CKK_AES, id),
		p11.NewAttribute(p11.CKA_ENCRYPT, true),
		p11.NewAttribute(p11.CKA_DECRYPT, true),
		p11.NewAttribute(p11.CKA_WRAP, true),
		p11.NewAttribute(p11.CKA_UNWRAP, true),
	)
	if valueLen > 0 {
		t = append(t, p11.NewAttribute(p11.CKA_VALUE_LEN, valueLen))
	}
	return t
}

// checkAESObject finds the AES key object of id and checks its type and length.
func (p *Provider) checkAESObject(s p11.SessionHandle, id []byte, bits int) (p11.ObjectHandle, error) {
	obj, ok, err := p.findKey(s, p11.CKO_SECRET_KEY, id)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, errObjectGone
	}
	attrs, err := p.ctx.GetAttributeValue(s, obj, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_KEY_TYPE, nil),
		p11.NewAttribute(p11.CKA_VALUE_LEN, nil),
	})
	if err != nil || len(attrs) != 2 {
		return 0, hsmErr("read key attributes", err)
	}
	// CKA_VALUE_LEN is 0 on a key SoftHSM2 unwrapped (BYOK); ImportTransfer checked its
	// length then, and the handle's size is stored through the barrier.
	if n := ulong(attrs[1].Value); ulong(attrs[0].Value) != p11.CKK_AES || (n != uint(bits/8) && n != 0) {
		return 0, fmt.Errorf("%w: the token object is not the handle's AES key", provider.ErrInvalidKey)
	}
	return obj, nil
}

// ulong decodes a CK_ULONG attribute value (native byte order, as the library returns it).
func ulong(b []byte) uint {
	var v uint
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint(b[i])
	}
	return v
}

// Handle returns a copy of the handle: CKA_ID and size, no key material.
func (k *aesKey) Handle() []byte { return append([]byte(nil), k.handle...) }

// Public returns a JWK with only kty: an oct key has no public part.
func (k *aesKey) Public() *provider.JWK { return &provider.JWK{Kty: provider.OctHSM} }

// Type returns oct-HSM.
func (k *aesKey) Type() provider.KeyType { return provider.OctHSM }

// Size returns the key size in bits.
func (k *aesKey) Size() int { return k.bits }

// Curve returns "".
func (k *aesKey) Curve() provider.Curve { return "" }

// checkSig refuses every signature algorithm: RS*/PS*/ES* need another key type, and
// HMAC (HS*) with oct-HSM keys is not offered yet.
func (k *aesKey) checkSig(alg string) error {
	switch {
	case alg == provider.AlgHS256 || alg == provider.AlgHS384 || alg == provider.AlgHS512:
		return fmt.Errorf("%w: %s (HMAC) is not offered by this HSM provider yet", provider.ErrUnsupported, alg)
	case isIn(alg, provider.SignatureAlgorithms()):
		return fmt.Errorf("%w: %s needs an RSA or EC key, this is an oct-HSM key", provider.ErrWrongKeyType, alg)
	case isIn(alg, provider.EncryptionAlgorithms()):
		return fmt.Errorf("%w: %s is an encryption algorithm, not a signature algorithm", provider.ErrUnsupported, alg)
	}
	return fmt.Errorf("%w: signature algorithm %s is unknown", provider.ErrUnsupported, algName(alg))
}

// Sign is not offered for oct-HSM keys.
func (k *aesKey) Sign(_ context.Context, alg string, _ []byte) ([]byte, error) {
	return nil, k.checkSig(alg)
}

// Verify is not offered for oct-HSM keys.
func (k *aesKey) Verify(_ context.Context, alg string, _, _ []byte) (bool, error) {
	return false, k.checkSig(alg)
}

// checkAlg resolves p.Algorithm for this key and operation: known, AES, of this key's size,
// of the operation's kind (GCM and CBC encrypt; KW and KWP wrap).
func (k *aesKey) checkAlg(p provider.EncryptParams, wrap bool) (aesAlg, error) {
	a, ok := aesAlgs[p.Algorithm]
	if !ok {
		switch {
		case isIn(p.Algorithm, provider.EncryptionAlgorithms()):
			return a, fmt.Errorf("%w: %s needs an RSA key, this is an oct-HSM key", provider.ErrWrongKeyType, p.Algorithm)
		case isIn(p.Algorithm, provider.SignatureAlgorithms()):
			return a, fmt.Errorf("%w: %s is a signature algorithm, not an encryption algorithm", provider.ErrUnsupported, p.Algorithm)
		}
		return a, fmt.Errorf("%w: encryption algorithm %s is unknown", provider.ErrUnsupported, algName(p.Algorithm))
	}
	if a.bits != 0 && a.bits != k.bits {
		return a, fmt.Errorf("%w: %s needs a %d-bit key, this key has %d bits", provider.ErrWrongKeyType, p.Algorithm, a.bits, k.bits)
	}
	isWrap := a.mode == modeKW || a.mode == modeKWP
	switch {
	case isWrap && !wrap:
		return a, fmt.Errorf("%w: %s is a key-wrap algorithm: use wrapKey and unwrapKey", provider.ErrInvalidParameter, p.Algorithm)
	case !isWrap && wrap:
		return a, fmt.Errorf("%w: %s is not a key-wrap algorithm: use A%dKW, CKM_AES_KEY_WRAP or CKM_AES_KEY_WRAP_PAD", provider.ErrInvalidParameter, p.Algorithm, k.bits)
	}
	if len(p.Value) > maxAESInput {
		return a, fmt.Errorf("%w: the value is larger than %d bytes", provider.ErrInvalidParameter, maxAESInput)
	}
	if a.mode != modeGCM && (len(p.AAD) > 0 || len(p.Tag) > 0) {
		return a, fmt.Errorf("%w: %s takes no aad or tag", provider.ErrInvalidParameter, p.Algorithm)
	}
	if isWrap && len(p.IV) > 0 {
		return a, fmt.Errorf("%w: %s takes no iv", provider.ErrInvalidParameter, p.Algorithm)
	}
	return a, nil
}

// checkCBCIV checks a CBC IV.
func checkCBCIV(alg string, iv []byte) error {
	if len(iv) != blockLen {
		return fmt.Errorf("%w: %s needs a 16-byte iv, got %d bytes", provider.ErrInvalidParameter, alg, len(iv))
	}
	return nil
}

// Encrypt encrypts with AES-GCM (random IV, returned with the tag and aad) or AES-CBC
// (caller's IV; without padding the plaintext must be a multiple of 16 bytes).
func (k *aesKey) Encrypt(ctx context.Context, p provider.EncryptParams) (provider.EncryptResult, error) {
	a, err := k.checkAlg(p, false)
	if err != nil {
		return provider.EncryptResult{}, err
	}
	switch a.mode {
	case modeGCM:
		if len(p.IV) > 0 || len(p.Tag) > 0 {
			return provider.EncryptResult{}, fmt.Errorf("%w: %s encryption takes no iv or tag: the HSM generates the iv", provider.ErrInvalidParameter, p.Algorithm)
		}
		if p.BeforeRandomIV != nil {
			if err := p.BeforeRandomIV(); err != nil {
				return provider.EncryptResult{}, err
			}
		}
		iv, err := newGCMIV()
		if err != nil {
			return provider.EncryptResult{}, err
		}
		return k.sealGCM(ctx, iv, p.AAD, p.Value)
	case modeCBC:
		if len(p.Value)%blockLen != 0 {
			return provider.EncryptResult{}, fmt.Errorf("%w: %s (no padding) needs a plaintext of a multiple of 16 bytes: use %sPAD for other lengths", provider.ErrInvalidParameter, p.Algorithm, p.Algorithm)
		}
	}
	if err := checkCBCIV(p.Algorithm, p.IV); err != nil {
		return provider.EncryptResult{}, err
	}
	out, err := k.run(ctx, k.p.ctx.EncryptInit, k.p.ctx.Encrypt, cbcMech(a.mode, p.IV), p.Value)
	if err != nil {
		return provider.EncryptResult{}, err
	}
	return provider.EncryptResult{Value: out, IV: append([]byte(nil), p.IV...)}, nil
}

// newGCMIV draws the 96-bit IV of one AES-GCM encryption from crypto/rand. Random IVs
// bound a key to 2^32 encryptions (NIST SP 800-38D §8.3), which the keys service counts
// (keys.GCMLimit).
func newGCMIV() ([]byte, error) {
	iv := make([]byte, gcmIVLen)
	if _, err := rand.Read(iv); err != nil {
		return nil, fmt.Errorf("pkcs11: no randomness for the iv")
	}
	return iv, nil
}

// sealGCM encrypts with AES-GCM under iv in the token and splits ciphertext and tag.
func (k *aesKey) sealGCM(ctx context.Context, iv, aad, plaintext []byte) (provider.EncryptResult, error) {
	params := p11.NewGCMParams(iv, aad, 8*gcmTagLen)
	defer params.Free()
	out, err := k.run(ctx, k.p.ctx.EncryptInit, k.p.ctx.Encrypt, p11.NewMechanism(p11.CKM_AES_GCM, params), plaintext)
	if err != nil {
		return provider.EncryptResult{}, err
	}
	if len(out) != len(plaintext)+gcmTagLen {
		return provider.EncryptResult{}, fmt.Errorf("pkcs11: the token returned %d bytes of AES-GCM output, want %d: %w", len(out), len(plaintext)+gcmTagLen, ErrHSM)
	}
	n := len(plaintext)
	r := provider.EncryptResult{Value: out[:n:n], IV: append([]byte(nil), iv...), Tag: out[n:]}
	if len(aad) > 0 {
		r.AAD = append([]byte(nil), aad...)
	}
	return r, nil
}

func cbcMech(mode aesMode, iv []byte) *p11.Mechanism {
	if mode == modeCBCPad {
		return p11.NewMechanism(p11.CKM_AES_CBC_PAD, iv)
	}
	return p11.NewMechanism(p11.CKM_AES_CBC, iv)
}

// run performs one single-part operation (init, then the operation) with the key object.
// Token failures wrap ErrHSM.
func (k *aesKey) run(ctx context.Context,
	initFn func(p11.SessionHandle, []*p11.Mechanism, p11.ObjectHandle) error,
	opFn func(p11.SessionHandle, []byte) ([]byte, error),
	mech *p11.Mechanism, in []byte) ([]byte, error) {
	s, err := k.p.get(ctx)
	if err != nil {
		return nil, err
	}
	var out []byte
	err = k.p.useObject(s, p11.CKO_SECRET_KEY, k.id, func(obj p11.ObjectHandle) error {
		if err := initFn(s, []*p11.Mechanism{mech}, obj); err != nil {
			return hsmErr("init", err)
		}
		var err error
		if out, err = opFn(s, in); err != nil {
			return hsmErr("crypt", err)
		}
		return nil
	})
	k.p.put(s, sessionBroken(err))
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// session takes a pooled session and finds the key object in it (by CKA_ID: object
// handles do not survive session losses). On error the session is already returned.
func (k *aesKey) session(ctx context.Context) (p11.SessionHandle, p11.ObjectHandle, error) {
	s, err := k.p.get(ctx)
	if err != nil {
		return 0, 0, err
	}
	obj, err := k.p.keyObject(s, p11.CKO_SECRET_KEY, k.id)
	if err != nil {
		k.p.put(s, sessionBroken(err))
		return 0, 0, err
	}
	return s, obj, nil
}

// sessionSecret is the template of a session-only, extractable generic secret: the
// caller's key bytes on their way into a wrap, or out of an unwrap. They are the caller's
// data in clear either way; only the token's own keys are sensitive.
func sessionSecret(value []byte) []*p11.Attribute {
	t := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_GENERIC_SECRET),
		p11.NewAttribute(p11.CKA_TOKEN, false),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, false),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, true),
	}
	if value != nil {
		t = append(t, p11.NewAttribute(p11.CKA_VALUE, value))
	}
	return t
}

// Decrypt decrypts AES-GCM (12-byte iv, 16-byte tag, the aad given at encryption) or
// AES-CBC. Wrong parameter shapes are refused first with their own errors; after that every
// failure (tag mismatch, bad padding, token error) is exactly provider.ErrDecrypt.
func (k *aesKey) Decrypt(ctx context.Context, p provider.EncryptParams) ([]byte, error) {
	a, err := k.checkAlg(p, false)
	if err != nil {
		return nil, err
	}
	if a.mode == modeGCM {
		if len(p.IV) != gcmIVLen || len(p.Tag) != gcmTagLen {
			return nil, fmt.Errorf("%w: %s decryption needs the 12-byte iv and 16-byte tag that encryption returned", provider.ErrInvalidParameter, p.Algorithm)
		}
		return k.openGCM(ctx, p.IV, p.AAD, p.Value, p.Tag)
	}
	if err := checkCBCIV(p.Algorithm, p.IV); err != nil {
		return nil, err
	}
	if len(p.Value) == 0 || len(p.Value)%blockLen != 0 {
		return nil, fmt.Errorf("%w: %s ciphertext must be a non-zero multiple of 16 bytes", provider.ErrInvalidParameter, p.Algorithm)
	}
	return k.decryptOnly(k.run(ctx, k.p.ctx.DecryptInit, k.p.ctx.Decrypt, cbcMech(a.mode, p.IV), p.Value))
}

// openGCM decrypts and authenticates ciphertext ‖ tag in the token.
func (k *aesKey) openGCM(ctx context.Context, iv, aad, ciphertext, tag []byte) ([]byte, error) {
	params := p11.NewGCMParams(iv, aad, 8*gcmTagLen)
	defer params.Free()
	in := make([]byte, 0, len(ciphertext)+len(tag))
	in = append(append(in, ciphertext...), tag...)
	return k.decryptOnly(k.run(ctx, k.p.ctx.DecryptInit, k.p.ctx.Decrypt, p11.NewMechanism(p11.CKM_AES_GCM, params), in))
}

// decryptOnly turns every failure of a decryption into exactly provider.ErrDecrypt, except
// a cancelled context and a token that is gone (decryptErr: ErrHSM).
func (k *aesKey) decryptOnly(out []byte, err error) ([]byte, error) {
	if err == nil {
		return out, nil
	}
	if err == context.Canceled || err == context.DeadlineExceeded {
		return nil, err
	}
	return nil, decryptErr(err)
}

// wrapMech is the mechanism of a key-wrap mode.
func wrapMech(mode aesMode) *p11.Mechanism {
	if mode == modeKWP {
		return p11.NewMechanism(p11.CKM_AES_KEY_WRAP_PAD, nil)
	}
	return p11.NewMechanism(p11.CKM_AES_KEY_WRAP, nil)
}

// WrapKey wraps the caller's key bytes with RFC 3394 (a multiple of 8 bytes, at least 16)
// or RFC 5649 (1 byte or more).
func (k *aesKey) WrapKey(ctx context.Context, p provider.EncryptParams) (provider.EncryptResult, error) {
	a, err := k.checkAlg(p, true)
	if err != nil {
		return provider.EncryptResult{}, err
	}
	switch {
	case len(p.Value) == 0:
		return provider.EncryptResult{}, fmt.Errorf("%w: wrapKey needs a key to wrap", provider.ErrInvalidParameter)
	case a.mode == modeKW && (len(p.Value) < 16 || len(p.Value)%8 != 0):
		return provider.EncryptResult{}, fmt.Errorf("%w: %s wraps keys of a multiple of 8 bytes, at least 16: use CKM_AES_KEY_WRAP_PAD for other lengths", provider.ErrInvalidParameter, p.Algorithm)
	case a.mode == modeKWP && len(p.Value)%8 != 0 && !k.p.kwp:
		return provider.EncryptResult{}, fmt.Errorf("%w: this HSM's CKM_AES_KEY_WRAP_PAD does not follow RFC 5649 for keys whose length is not a multiple of 8 bytes", provider.ErrUnsupported)
	}
	s, obj, err := k.session(ctx)
	if err != nil {
		return provider.EncryptResult{}, err
	}
	tmp, err := k.p.ctx.CreateObject(s, sessionSecret(p.Value))
	if err != nil {
		k.p.put(s, sessionBroken(err))
		return provider.EncryptResult{}, hsmErr("create session object", err)
	}
	out, err := k.p.ctx.WrapKey(s, []*p11.Mechanism{wrapMech(a.mode)}, obj, tmp)
	derr := k.p.ctx.DestroyObject(s, tmp)
	k.p.put(s, sessionBroken(err) || derr != nil)
	if err != nil {
		return provider.EncryptResult{}, hsmErr("wrap key", err)
	}
	return provider.EncryptResult{Value: out}, nil
}

// UnwrapKey unwraps RFC 3394 or RFC 5649 output and returns the key bytes. A wrong length
// is refused with its own error; after that every failure is exactly provider.ErrDecrypt.
func (k *aesKey) UnwrapKey(ctx context.Context, p provider.EncryptParams) ([]byte, error) {
	a, err := k.checkAlg(p, true)
	if err != nil {
		return nil, err
	}
	min := 24
	if a.mode == modeKWP {
		min = 16
	}
	if len(p.Value) < min || len(p.Value)%8 != 0 {
		return nil, fmt.Errorf("%w: %s output is a multiple of 8 bytes, at least %d", provider.ErrInvalidParameter, p.Algorithm, min)
	}
	return k.decryptOnly(k.unwrap(ctx, wrapMech(a.mode), p.Value))
}

// unwrap runs C_UnwrapKey into a session-only, extractable generic secret, reads its
// value and destroys it.
func (k *aesKey) unwrap(ctx context.Context, mech *p11.Mechanism, wrapped []byte) ([]byte, error) {
	s, obj, err := k.session(ctx)
	if err != nil {
		return nil, err
	}
	tmp, err := k.p.ctx.UnwrapKey(s, []*p11.Mechanism{mech}, obj, wrapped, sessionSecret(nil))
	if err != nil {
		k.p.put(s, sessionBroken(err))
		return nil, hsmErr("unwrap key", err)
	}
	attrs, err := k.p.ctx.GetAttributeValue(s, tmp, []*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE, nil)})
	derr := k.p.ctx.DestroyObject(s, tmp)
	k.p.put(s, sessionBroken(err) || derr != nil)
	if err != nil || len(attrs) != 1 {
		return nil, hsmErr("read unwrapped key", err)
	}
	return attrs[0].Value, nil
}
