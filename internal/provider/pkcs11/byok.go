package pkcs11

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"

	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/provider"
)

var _ provider.TransferImporter = (*Provider)(nil)

// ImportTransfer imports a BYOK transfer (provider.Transfer) inside the token. The token
// has no CKM_RSA_AES_KEY_WRAP (SECURITY-NOTES F10), so the unwrap is its two halves, each a
// C_UnwrapKey:
//
//  1. RSA-OAEP (t.Hash, MGF1 of the same hash, no label) with the KEK's private key →
//     the ephemeral AES key, a session object (CKA_TOKEN false), sensitive and not
//     extractable, usable only to unwrap;
//  2. CKM_AES_KEY_WRAP_PAD (RFC 5649) with the ephemeral key → the target key as a token
//     object, sensitive and not extractable: an RSA private key from PKCS #8, or an AES key
//     from raw bytes.
//
// The ephemeral key is destroyed on every path. The target is then checked: an RSA key must
// have 2048, 3072 or 4096 bits and e = 65537 and pass a sign/verify consistency test; an
// AES key must be 16, 24 or 32 bytes. A target that fails is destroyed. Every failure of
// the ciphertext is exactly provider.ErrTransfer; a token that is gone (tokenGone) is ErrHSM.
// An EC-HSM target (byokec.go) may come with its public point t.X, t.Y: the point must be
// on t.Curve (else ErrInvalidParameter before the token is used). Without them the token
// works the point out (transferredPoint). Either way the unwrapped key must be on t.Curve
// (else ErrTransfer) and must sign for the point (else ErrInvalidParameter).
func (p *Provider) ImportTransfer(ctx context.Context, t provider.Transfer) (provider.Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	doc, kek, err := p.ownHandle(t.KEK)
	if err != nil || kek == nil || !kek.isRSA() {
		return nil, fmt.Errorf("%w: the key-exchange key is not an RSA-HSM key of this HSM", provider.ErrInvalidParameter)
	}
	mgf, ok := ckgMGF[t.Hash]
	if !ok || t.Hash == crypto.SHA512 {
		return nil, fmt.Errorf("%w: the transfer's OAEP hash is not offered", provider.ErrUnsupported)
	}
	if t.Hash != crypto.SHA1 && !p.oaep256 {
		return nil, fmt.Errorf("%w: this HSM unwraps RSA-OAEP with SHA-1 only: use enc CKM_RSA_AES_KEY_WRAP", provider.ErrUnsupported)
	}
	var targetT []*p11.Attribute
	var ecPub *publicKey // an EC-HSM target's public key, from the request
	id := make([]byte, idLen)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("pkcs11: no randomness for the key id")
	}
	switch t.Type {
	case provider.RSAHSM:
		targetT = p.protect(privateTemplate(id, p11.CKK_RSA), false, t.SecurityDomain)
	case provider.OctHSM:
		// An AES key is a multiple of 8 bytes, so RFC 5649 adds no padding: its length is
		// the wrapped length less the 8-byte integrity block (checkTransferred makes sure).
		if !aesSizes[8*(len(t.Ciphertext)-kek.modulusLen()-8)] {
			return nil, provider.ErrTransfer
		}
		targetT = p.protect(aesTemplate(id, 0), false, t.SecurityDomain)
	case provider.ECHSM:
		c, ok := curves[t.Curve]
		if !ok {
			return nil, fmt.Errorf("%w: an EC-HSM transfer needs crv P-256, P-384 or P-521", provider.ErrInvalidParameter)
		}
		if len(t.X)+len(t.Y) > 0 { // else importTransfer derives the point in the token
			if ecPub, err = transferPoint(c, t.X, t.Y); err != nil {
				return nil, err
			}
		}
		targetT = p.protect(privateTemplate(id, p11.CKK_EC), false, t.SecurityDomain)
	default:
		return nil, fmt.Errorf("%w: a transfer imports RSA-HSM, EC-HSM or oct-HSM keys", provider.ErrUnsupported)
	}
	k := kek.modulusLen()
	if len(t.Ciphertext) < k+16 || (len(t.Ciphertext)-k)%8 != 0 {
		return nil, provider.ErrTransfer
	}
	s, err := p.get(ctx)
	if err != nil {
		return nil, err // ErrHSM (or the context's error)
	}
	key, err := p.importTransfer(s, t, kek, doc.ID, id, targetT, mgf, ecPub)
	p.put(s, sessionBroken(err))
	if err != nil {
		if tokenGone(err) {
			return nil, err
		}
		if errors.Is(err, provider.ErrInvalidParameter) {
			return nil, err
		}
		return nil, provider.ErrTransfer
	}
	return key, nil
}

// importTransfer runs the two unwraps in session s and checks the result.
func (p *Provider) importTransfer(s p11.SessionHandle, t provider.Transfer, kek *publicKey, kekID, id []byte, targetT []*p11.Attribute, mgf uint, ecPub *publicKey) (provider.Key, error) {
	kekObj, err := p.checkObject(s, kekID, kek)
	if errors.Is(err, provider.ErrInvalidKey) {
		return nil, fmt.Errorf("%w: the key-exchange key is not in the token", provider.ErrInvalidParameter)
	}
	if err != nil {
		return nil, err
	}
	k := kek.modulusLen()
	oaep := p11.NewMechanism(p11.CKM_RSA_PKCS_OAEP, p11.NewOAEPParams(ckmHash[t.Hash], mgf, p11.CKZ_DATA_SPECIFIED, nil))
	eph, err := p.ctx.UnwrapKey(s, []*p11.Mechanism{oaep}, kekObj, t.Ciphertext[:k], ephemeralTemplate(nil))
	if err != nil {
		return nil, hsmErr("unwrap the ephemeral key", err)
	}
	if t.Type == provider.ECHSM && ecPub == nil {
		if ecPub, err = p.transferredPoint(s, eph, t.Ciphertext[k:], curves[t.Curve]); err != nil {
			_ = p.ctx.DestroyObject(s, eph)
			return nil, err
		}
	}
	target, err := p.ctx.UnwrapKey(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_WRAP_PAD, nil)}, eph, t.Ciphertext[k:], targetT)
	if derr := p.ctx.DestroyObject(s, eph); derr != nil && err == nil {
		err = derr
		_ = p.ctx.DestroyObject(s, target)
	}
	if err != nil {
		return nil, hsmErr("unwrap the target key", err)
	}
	key, err := p.checkTransferred(s, t.Type, target, id, 8*(len(t.Ciphertext)-k-8), ecPub)
	if err != nil {
		_ = p.ctx.DestroyObject(s, target)
		return nil, err
	}
	return key, nil
}

// errWeakImport marks an unwrapped key that is not acceptable (size, exponent,
// inconsistent); ImportTransfer reports it as ErrTransfer.
var errWeakImport = errors.New("pkcs11: the transferred key is not acceptable")

// checkTransferred checks an unwrapped target key object and returns it as a Key. For AES,
// bits is the padded length of the unwrapped value. SoftHSM2 neither records CKA_VALUE_LEN
// on an unwrapped key nor lets the template name it, but a value of 8·k − 7 to 8·k − 1
// bytes is not an AES key, so one AES-CBC block encrypted in the token shows the key is
// exactly bits long.
func (p *Provider) checkTransferred(s p11.SessionHandle, kty provider.KeyType, obj p11.ObjectHandle, id []byte, bits int, ecPub *publicKey) (provider.Key, error) {
	if kty == provider.ECHSM {
		return p.checkTransferredEC(s, obj, id, ecPub)
	}
	if kty == provider.OctHSM {
		mech := p11.NewMechanism(p11.CKM_AES_CBC, make([]byte, blockLen))
		if err := p.ctx.EncryptInit(s, []*p11.Mechanism{mech}, obj); err != nil {
			return nil, errWeakImport
		}
		if out, err := p.ctx.Encrypt(s, make([]byte, blockLen)); err != nil || len(out) != blockLen {
			return nil, errWeakImport
		}
		return newAESKey(p, id, bits), nil
	}
	pub, err := p.readRSAPublic(s, obj)
	if err != nil {
		return nil, errWeakImport
	}
	// Pairwise consistency (SECURITY-NOTES I8): a PKCS #8 key with inconsistent CRT values
	// would sign wrongly; sign a random digest in the token and verify it here.
	digest := make([]byte, 32)
	if _, err := rand.Read(digest); err != nil {
		return nil, fmt.Errorf("pkcs11: no randomness for the consistency check")
	}
	mech := p11.NewMechanism(p11.CKM_RSA_PKCS_PSS, p11.NewPSSParams(p11.CKM_SHA256, p11.CKG_MGF1_SHA256, 32))
	if err := p.ctx.SignInit(s, []*p11.Mechanism{mech}, obj); err != nil {
		return nil, hsmErr("sign", err)
	}
	sig, err := p.ctx.Sign(s, digest)
	if err != nil {
		return nil, hsmErr("sign", err)
	}
	if rsa.VerifyPSS(pub.rsa, crypto.SHA256, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) != nil {
		return nil, errWeakImport
	}
	return newKey(p, pub, id), nil
}
