package keys

import (
	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// CreateLimiter is the separate, lower bucket of key creations per vault (SECURITY-NOTES R2;
// api.CreateLimiter): Key Vault limits key creations per vault per 10 seconds, HSM keys
// lower, far below other operations. AdmitCreate takes weight from v's bucket of software
// or -HSM (hsm) key creations, or returns the error to answer (a 429 with its Retry-After).
type CreateLimiter interface {
	AdmitCreate(v tenancy.Vault, hsm bool, weight int) error
}

// LimitCreates makes the service admit through l every key generation a request asks for:
// create, rotate, and the new key of a certificate (certificates calls AdmitCreate). An
// import (JWK or BYOK) generates nothing: it is not counted (its cost, one pairwise check
// for RSA, runs in the CPU shares like every RSA private operation). Scheduled rotations
// and renewals are the server's own work and are not counted either. Call it before the
// Service is used.
func (s *Service) LimitCreates(l CreateLimiter) { s.creates = l }

// AdmitCreate admits the creation of a key of type kty and size bits (RSA; 0 for other
// types) in v: it returns nil, or the limiter's error, before any key material is made.
// Callers return that error as it is.
func (s *Service) AdmitCreate(v tenancy.Vault, kty provider.KeyType, size int) error {
	if s.creates == nil {
		return nil
	}
	return s.creates.AdmitCreate(v, isHSM(kty), CreateWeight(kty, size))
}

// CreateWeight is what the creation of a key of type kty and size bits costs in its vault's
// creation bucket: 1 for EC and oct keys and RSA keys up to 2048 bits, 4 for RSA-3072 and 8
// for larger RSA keys, as Key Vault weighs RSA-3072 and RSA-4096 operations (a 4096-bit
// generation costs tens of 2048-bit ones in CPU).
func CreateWeight(kty provider.KeyType, size int) int {
	if baseType(kty) != provider.RSA {
		return 1
	}
	switch {
	case size <= 2048:
		return 1
	case size <= 3072:
		return 4
	}
	return 8
}
