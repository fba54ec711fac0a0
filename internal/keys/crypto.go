package keys

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// producesNew reports whether an operation makes new protected data (sign, encrypt,
// wrapKey). Key Vault refuses those outside a version's nbf–exp window but still allows
// verify, decrypt and unwrapKey, so data protected before expiry stays readable
// (KEYVAULT-NOTES §1.7.3).
func producesNew(op string) bool {
	return op == OpSign || op == OpEncrypt || op == OpWrapKey
}

// permit reports whether op may run on a version with these attributes at now: it must be
// enabled, within nbf–exp for sign, encrypt and wrapKey, and op must be in keyOps. The error
// wraps ErrKeyDisabled, ErrKeyNotYetValid, ErrKeyExpired or ErrForbiddenOp and says which,
// with Key Vault's wording.
func permit(op string, enabled bool, nbf, exp *int64, keyOps []string, now time.Time) error {
	if !enabled {
		return errorf(ErrKeyDisabled, "Operation %s is not allowed on a disabled key.", op)
	}
	if producesNew(op) {
		if nbf != nil && now.Unix() < *nbf {
			return errorf(ErrKeyNotYetValid, "Operation %s is not allowed before the key's activation date (nbf %s).", op, time.Unix(*nbf, 0).UTC().Format(time.RFC3339))
		}
		if exp != nil && now.Unix() >= *exp {
			return errorf(ErrKeyExpired, "Operation %s is not allowed on an expired key (exp %s).", op, time.Unix(*exp, 0).UTC().Format(time.RFC3339))
		}
	}
	if !contains(keyOps, op) {
		return errorf(ErrForbiddenOp, "Operation %s is not permitted on this key.", op)
	}
	return nil
}

// prepare resolves the version an operation addresses, refuses the operation if the
// version's state does not permit it, and only then loads the key from the provider.
func (s *Service) prepare(ctx context.Context, v tenancy.Vault, base, name, version, op string) (provider.Key, string, error) {
	key, kid, _, _, err := s.prepareVersion(ctx, v, base, name, version, op)
	return key, kid, err
}

// prepareVersion is prepare that also returns the key's display name and version record.
func (s *Service) prepareVersion(ctx context.Context, v tenancy.Vault, base, name, version, op string) (provider.Key, string, string, *versionRecord, error) {
	sc, err := newScope(v, base)
	if err != nil {
		return nil, "", "", nil, err
	}
	meta, ver, err := s.resolveShared(ctx, sc, name, version) // read only, below
	if err != nil {
		return nil, "", "", nil, err
	}
	if err := permit(op, ver.Enabled, ver.NotBefore, ver.Expires, ver.KeyOps, s.clock()); err != nil {
		return nil, "", "", nil, err
	}
	key, err := s.load(ctx, ver.Handle)
	if err != nil {
		return nil, "", "", nil, loadErr(meta.Name, ver.Version, err)
	}
	return key, sc.kid(meta.Name, ver.Version), meta.Name, ver, nil
}

// loadErr is the error of a version whose key the provider cannot load: ErrKeyMaterialGone
// when its key store no longer holds it, else the provider's error (503 or internal).
func loadErr(name, version string, err error) error {
	if errors.Is(err, provider.ErrKeyGone) {
		return fmt.Errorf("%w: key %s version %s: %s", ErrKeyMaterialGone, name, version, keyGoneHint)
	}
	return fmt.Errorf("load key %s/%s: %w", name, version, err)
}

// Sign signs a digest with a key version (sign); version "" is the latest.
func (s *Service) Sign(ctx context.Context, v tenancy.Vault, base, name, version string, p SignParams) (OperationResult, error) {
	key, kid, err := s.prepare(ctx, v, base, name, version, OpSign)
	if err != nil {
		return OperationResult{}, err
	}
	release, err := s.shareOp(ctx, v, key.Type())
	if err != nil {
		return OperationResult{}, err
	}
	sig, err := key.Sign(ctx, p.Algorithm, p.Value)
	release()
	if err != nil {
		return OperationResult{}, provErr("sign", err)
	}
	return OperationResult{KID: kid, Value: sig}, nil
}

// Verify checks a signature over a digest (verify). A signature that does not verify is
// Value false, not an error.
func (s *Service) Verify(ctx context.Context, v tenancy.Vault, base, name, version string, p VerifyParams) (VerifyResult, error) {
	key, kid, err := s.prepare(ctx, v, base, name, version, OpVerify)
	if err != nil {
		return VerifyResult{}, err
	}
	ok, err := key.Verify(ctx, p.Algorithm, p.Digest, p.Signature)
	if err != nil {
		return VerifyResult{}, provErr("verify", err)
	}
	return VerifyResult{Value: ok, KID: kid}, nil
}

// errRSA15Off answers RSA1_5 on a server that refuses it (DisableRSA15), before the key is
// used: the same answer for every ciphertext.
var errRSA15Off = badParam("the algorithm RSA1_5 is disabled on this server (its PKCS #1 v1.5 padding is the Bleichenbacher oracle): use RSA-OAEP-256")

// DisableRSA15 makes encrypt, decrypt, wrapKey and unwrapKey refuse RSA1_5 with 400
// BadParameter (the server's disable-rsa1_5 setting). Signatures are not affected: RS256 and
// the like are PKCS #1 v1.5 signatures, not encryption.
func (s *Service) DisableRSA15() { s.rsa15Off = true }

// encParams converts the wire parameters for the provider.
func encParams(p OperationParams) provider.EncryptParams {
	return provider.EncryptParams{Algorithm: p.Algorithm, Value: p.Value, IV: p.IV, AAD: p.AAD, Tag: p.Tag}
}

// Encrypt encrypts a value (encrypt). For AES-GCM the result carries the IV, tag and AAD;
// an oct-HSM version's AES-GCM encryptions are counted and refused past GCMLimit
// (ErrGCMLimit, gcmlimit.go).
func (s *Service) Encrypt(ctx context.Context, v tenancy.Vault, base, name, version string, p OperationParams) (OperationResult, error) {
	key, kid, display, ver, err := s.prepareVersion(ctx, v, base, name, version, OpEncrypt)
	if err != nil {
		return OperationResult{}, err
	}
	if s.rsa15Off && p.Algorithm == provider.AlgRSA15 {
		return OperationResult{}, errRSA15Off
	}
	params := encParams(p)
	var limitErr error // the count's refusal, returned as it is
	if isGCM(key.Type(), p.Algorithm) {
		// Counted once the provider has checked the parameters: a malformed request
		// reserves nothing (bad input changes nothing).
		params.BeforeRandomIV = func() error {
			limitErr = s.gcm.take(ctx, s.store, gcmCountPath(v.TenantID, ver.Handle), display, ver.Version)
			return limitErr
		}
	}
	r, err := key.Encrypt(ctx, params)
	if limitErr != nil {
		return OperationResult{}, limitErr
	}
	if err != nil {
		return OperationResult{}, provErr("encrypt", err)
	}
	return OperationResult{KID: kid, Value: r.Value, IV: r.IV, Tag: r.Tag, AAD: r.AAD}, nil
}

// The errors of a ciphertext the provider does not decrypt (exactly provider.ErrDecrypt),
// with provErr's wording, made once: formatting them on every failure made a failed
// decryption five allocations dearer than a successful one, a timing difference between
// good and bad padding that tools/dudect measured (|t| ≈ 10; SECURITY-NOTES C1, C2).
var (
	errDecryptFailed = provErr("decrypt", provider.ErrDecrypt)
	errUnwrapFailed  = provErr("unwrap key", provider.ErrDecrypt)
)

// IsDecryptFailure reports whether err is Decrypt's or UnwrapKey's answer to a ciphertext
// the key does not decrypt (one answer for every reason: no padding oracle), for the
// failure-rate alarm (SECURITY-NOTES C1). It compares with the two prepared errors only.
func IsDecryptFailure(err error) bool {
	return err == errDecryptFailed || err == errUnwrapFailed
}

// Decrypt decrypts a value (decrypt). Every failure of the ciphertext is the provider's
// single ErrDecrypt (wrapped in ErrBadParameter), so no padding oracle is exposed, and it
// costs no allocation a success does not.
func (s *Service) Decrypt(ctx context.Context, v tenancy.Vault, base, name, version string, p OperationParams) (OperationResult, error) {
	key, kid, err := s.prepare(ctx, v, base, name, version, OpDecrypt)
	if err != nil {
		return OperationResult{}, err
	}
	if s.rsa15Off && p.Algorithm == provider.AlgRSA15 {
		return OperationResult{}, errRSA15Off
	}
	release, err := s.shareOp(ctx, v, key.Type())
	if err != nil {
		return OperationResult{}, err
	}
	pt, err := key.Decrypt(ctx, encParams(p))
	release()
	if err == provider.ErrDecrypt {
		return OperationResult{}, errDecryptFailed
	}
	if err != nil {
		return OperationResult{}, provErr("decrypt", err)
	}
	return OperationResult{KID: kid, Value: pt}, nil
}

// WrapKey wraps a key (wrapKey).
func (s *Service) WrapKey(ctx context.Context, v tenancy.Vault, base, name, version string, p OperationParams) (OperationResult, error) {
	key, kid, err := s.prepare(ctx, v, base, name, version, OpWrapKey)
	if err != nil {
		return OperationResult{}, err
	}
	if s.rsa15Off && p.Algorithm == provider.AlgRSA15 {
		return OperationResult{}, errRSA15Off
	}
	r, err := key.WrapKey(ctx, encParams(p))
	if err != nil {
		return OperationResult{}, provErr("wrap key", err)
	}
	return OperationResult{KID: kid, Value: r.Value, IV: r.IV, Tag: r.Tag, AAD: r.AAD}, nil
}

// UnwrapKey unwraps a key (unwrapKey), with the same single failure as Decrypt.
func (s *Service) UnwrapKey(ctx context.Context, v tenancy.Vault, base, name, version string, p OperationParams) (OperationResult, error) {
	key, kid, err := s.prepare(ctx, v, base, name, version, OpUnwrapKey)
	if err != nil {
		return OperationResult{}, err
	}
	if s.rsa15Off && p.Algorithm == provider.AlgRSA15 {
		return OperationResult{}, errRSA15Off
	}
	release, err := s.shareOp(ctx, v, key.Type())
	if err != nil {
		return OperationResult{}, err
	}
	pt, err := key.UnwrapKey(ctx, encParams(p))
	release()
	if err == provider.ErrDecrypt {
		return OperationResult{}, errUnwrapFailed
	}
	if err != nil {
		return OperationResult{}, provErr("unwrap key", err)
	}
	return OperationResult{KID: kid, Value: pt}, nil
}
