package keys

import (
	"fmt"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// ErrKeyTypeNotSupported: the store cannot hold keys of this type (Key Vault's 400
// BadParameter "Invalid kty value: oct" with innererror KeyTypeNotSupported). It wraps
// ErrBadParameter.
var ErrKeyTypeNotSupported = fmt.Errorf("%w: key type not supported", ErrBadParameter)

// checkSymmetric decides where symmetric (oct) keys may live. They exist only inside an
// HSM token: oct-HSM in vaults and managed HSM pools when a token is configured (the
// server calls RequireHSMInPools then), plain oct only in pools, where it becomes oct-HSM.
// Without a token every oct request is refused as Key Vault refuses oct in a vault; a
// software oct key is never made.
func (s *Service) checkSymmetric(sc scope, kty provider.KeyType) error {
	if baseType(kty) != provider.Oct {
		return nil
	}
	if !s.hsmPools || (kty == provider.Oct && sc.vault.Kind != tenancy.KindManagedHSM) {
		return errorf(ErrKeyTypeNotSupported, "Invalid kty value: %.20s (symmetric keys live only in an HSM: use oct-HSM with a PKCS#11 token configured)", kty)
	}
	return nil
}
