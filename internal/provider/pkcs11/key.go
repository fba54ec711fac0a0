package pkcs11

import (
	"context"
	"crypto"
	"errors"
	"fmt"

	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/provider"
)

// Key is a key pair in the token: the private key object (found by CKA_ID) signs and
// decrypts inside the token; the embedded public key verifies and encrypts in software.
// A Key is immutable and safe for concurrent use (each operation takes its own session).
type Key struct {
	*publicKey
	p          *Provider
	id         []byte
	handle     []byte
	exportable bool
}

var _ provider.Key = (*Key)(nil)

func newKey(p *Provider, pub *publicKey, id []byte) *Key { return newKeyOf(p, pub, id, false) }

// newKeyOf is newKey for a key that may be exportable (secure key release, export.go).
func newKeyOf(p *Provider, pub *publicKey, id []byte, exportable bool) *Key {
	pub.noOAEP256 = !p.oaep256
	return &Key{publicKey: pub, p: p, id: append([]byte(nil), id...), handle: p.stamp(marshalHandle(pub, id, exportable)), exportable: exportable}
}

// Handle returns a copy of the handle (handle.go): CKA_ID and public key, no private material.
func (k *Key) Handle() []byte { return append([]byte(nil), k.handle...) }

// DigestInfo prefixes (RFC 8017 §9.2 note 1): DER of AlgorithmIdentifier and the OCTET
// STRING header, followed by the digest. CKM_RSA_PKCS signs prefix ‖ digest, so the token
// applies PKCS #1 v1.5 type-1 padding to a well-formed DigestInfo only (H4: no RSNULL).
var digestInfoPrefix = map[crypto.Hash][]byte{
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

// pkcs11 hash and MGF1 identifiers of each hash.
var (
	ckmHash = map[crypto.Hash]uint{crypto.SHA1: p11.CKM_SHA_1, crypto.SHA256: p11.CKM_SHA256, crypto.SHA384: p11.CKM_SHA384, crypto.SHA512: p11.CKM_SHA512}
	ckgMGF  = map[crypto.Hash]uint{crypto.SHA1: p11.CKG_MGF1_SHA1, crypto.SHA256: p11.CKG_MGF1_SHA256, crypto.SHA384: p11.CKG_MGF1_SHA384, crypto.SHA512: p11.CKG_MGF1_SHA512}
)

// Sign signs digest inside the token: PS256/384/512 with CKM_RSA_PKCS_PSS (hash, MGF1 of
// the same hash, salt length = hash length), RS256/384/512 with CKM_RSA_PKCS over
// DigestInfo ‖ digest, ES256/384/512 with CKM_ECDSA (raw r ‖ s of the curve's size).
// Algorithm and digest are checked before the token is used; token failures wrap ErrHSM.
func (k *Key) Sign(ctx context.Context, alg string, digest []byte) ([]byte, error) {
	a, err := k.checkSigAlg(alg, digest)
	if err != nil {
		return nil, err
	}
	var mech *p11.Mechanism
	data := digest
	switch {
	case a.PSS:
		mech = p11.NewMechanism(p11.CKM_RSA_PKCS_PSS, p11.NewPSSParams(ckmHash[a.Hash], ckgMGF[a.Hash], uint(a.Hash.Size())))
	case a.RSA:
		mech = p11.NewMechanism(p11.CKM_RSA_PKCS, nil)
		data = append(append([]byte(nil), digestInfoPrefix[a.Hash]...), digest...)
	default:
		mech = p11.NewMechanism(p11.CKM_ECDSA, nil)
	}
	s, err := k.p.get(ctx)
	if err != nil {
		return nil, err
	}
	var sig []byte
	err = k.p.useObject(s, p11.CKO_PRIVATE_KEY, k.id, func(obj p11.ObjectHandle) error {
		if err := k.p.ctx.SignInit(s, []*p11.Mechanism{mech}, obj); err != nil {
			return hsmErr("sign", err)
		}
		var err error
		if sig, err = k.p.ctx.Sign(s, data); err != nil {
			return hsmErr("sign", err)
		}
		return nil
	})
	k.p.put(s, sessionBroken(err))
	if err != nil {
		return nil, err
	}
	if len(sig) != k.sigLen() {
		return nil, fmt.Errorf("pkcs11: the token returned a %d-byte signature, want %d: %w", len(sig), k.sigLen(), ErrHSM)
	}
	return sig, nil
}

// Decrypt decrypts inside the token: RSA-OAEP (CKM_RSA_PKCS_OAEP, SHA-1 and MGF1-SHA1),
// RSA-OAEP-256 (SHA-256 and MGF1-SHA256), RSA1_5 (CKM_RSA_PKCS); no label. A wrong
// algorithm or an iv/aad/tag is refused with its own error first; after that every failure,
// whatever the token says (CKR_ENCRYPTED_DATA_INVALID, _LEN_RANGE, ...), is exactly
// provider.ErrDecrypt, except that a token, session or login that is gone (tokenGone) is
// ErrHSM: the server answers 503 for an outage rather than blaming the ciphertext. A cancelled context is reported as such before
// the token is used. The RSA1_5 oracle discussion of soft.Key.Decrypt applies; the padding
// check itself is the token's.
func (k *Key) Decrypt(ctx context.Context, p provider.EncryptParams) ([]byte, error) {
	return k.decrypt(ctx, p)
}

// UnwrapKey is Decrypt for wrapped keys (C_Decrypt: Key Vault's unwrapKey returns the key
// bytes to the caller); same algorithms, same single error.
func (k *Key) UnwrapKey(ctx context.Context, p provider.EncryptParams) ([]byte, error) {
	return k.decrypt(ctx, p)
}

// decryptErr is the error of a failed decryption: ErrHSM (503) when the token, session or
// login is gone (tokenGone), errObjectGone when the key's object is (found before the
// ciphertext reaches the token, so no oracle), else exactly provider.ErrDecrypt.
func decryptErr(err error) error {
	if tokenGone(err) || errors.Is(err, provider.ErrKeyGone) {
		return err
	}
	return provider.ErrDecrypt
}

func (k *Key) decrypt(ctx context.Context, p provider.EncryptParams) ([]byte, error) {
	a, err := k.checkEncAlg(p)
	if err != nil {
		return nil, err
	}
	if len(p.Value) != k.modulusLen() {
		return nil, provider.ErrDecrypt
	}
	var mech *p11.Mechanism
	if a.OAEP {
		mech = p11.NewMechanism(p11.CKM_RSA_PKCS_OAEP, p11.NewOAEPParams(ckmHash[a.Hash], ckgMGF[a.Hash], p11.CKZ_DATA_SPECIFIED, nil))
	} else {
		mech = p11.NewMechanism(p11.CKM_RSA_PKCS, nil)
	}
	s, err := k.p.get(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err // no session: ErrHSM, before the ciphertext reached the token
	}
	var out []byte
	err = k.p.useObject(s, p11.CKO_PRIVATE_KEY, k.id, func(obj p11.ObjectHandle) error {
		if err := k.p.ctx.DecryptInit(s, []*p11.Mechanism{mech}, obj); err != nil {
			return hsmErr("decrypt init", err)
		}
		var err error
		if out, err = k.p.ctx.Decrypt(s, p.Value); err != nil {
			return hsmErr("decrypt", err)
		}
		return nil
	})
	k.p.put(s, sessionBroken(err))
	if err != nil {
		return nil, decryptErr(err)
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}
