package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/coffer-kms/coffer/internal/certificates"
	"github.com/coffer-kms/coffer/internal/keys"
	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// The security domain in the token (docs/HSM.md): each active pool's token holds the pool's
// security-domain wrapping key, derived from its domain key (secdomain.TokenWrapKey) and
// installed by the token's provider (provider.DomainWrapper, a security officer login the
// first time). It is installed when the domain becomes active (download, upload, dev
// activation) and, for pools activated before, on their first key backup or restore. Key
// backups of pools then carry their HSM keys wrapped by it (keys.WrapPoolKeysWith).

var _ provider.DomainWrapper = keyProvider{}

// poolWrapKey installs pool v's wrapping key in the pool's token if it is not there yet and
// returns its id: keys.PoolWrapKey. Without an SO PIN it is provider.ErrUnsupported.
func (s *Server) poolWrapKey(ctx context.Context, v tenancy.Vault) ([]byte, error) {
	return s.installWrapKey(ctx, "managedhsms/"+strings.ToLower(v.Name), func() ([]byte, []byte, error) { return s.sd.TokenWrapKey(ctx, v) })
}

// installWrapKey installs the wrapping key derive gives (its id and value) in the token of
// store, if it is not there yet, and returns its id.
func (s *Server) installWrapKey(ctx context.Context, store string, derive func() (id, key []byte, err error)) ([]byte, error) {
	dw, ok := s.provider.(provider.DomainWrapper)
	if !ok {
		return nil, provider.ErrUnsupported
	}
	id, key, err := derive()
	if err != nil {
		return nil, err
	}
	defer clear(key)
	if err := dw.InstallDomainKey(ctx, store, id, key); err != nil {
		return nil, err
	}
	return id, nil
}

// certWrapKey is keys.PoolWrapKey for the HSM keys of vaults' certificates: it installs
// the tenant's certificate wrapping key (certificates.TokenWrapKey, derived from the
// certificates backup key) in the vault's token if it is not there yet and returns its id.
// Without an SO PIN it is provider.ErrUnsupported, and certificate backups carry handles
// only.
func (s *Server) certWrapKey(backupKey []byte) keys.PoolWrapKey {
	return func(ctx context.Context, v tenancy.Vault) ([]byte, error) {
		return s.installWrapKey(ctx, "vaults/"+strings.ToLower(v.Name), func() ([]byte, []byte, error) { return certificates.TokenWrapKey(backupKey, v.TenantID) })
	}
}

// installPoolWrapKey is the security domain's activation hook: it installs the pool's
// wrapping key and logs a failure (the activation stands; the first backup tries again).
func (s *Server) installPoolWrapKey(ctx context.Context, v tenancy.Vault) {
	if _, err := s.poolWrapKey(ctx, v); err != nil && !errors.Is(err, provider.ErrUnsupported) {
		s.log.Error("the managed HSM pool's security-domain wrapping key could not be installed in its token; key backups of the pool will retry", "pool", v.Name, "err", err)
	}
}

// domainWrapper is p as a DomainWrapper; a software provider is not one.
func domainWrapper(p provider.Provider) (provider.DomainWrapper, error) {
	if dw, ok := p.(provider.DomainWrapper); ok {
		return dw, nil
	}
	return nil, fmt.Errorf("%w: software keys have no security-domain wrapping", provider.ErrUnsupported)
}

// InstallDomainKey installs the wrapping key in the token of store (a pool's own token, else
// the default token).
func (k keyProvider) InstallDomainKey(ctx context.Context, store string, id, value []byte) error {
	dw, err := domainWrapper(k.pick(provider.OctHSM, store))
	if err != nil {
		return err
	}
	return dw.InstallDomainKey(ctx, store, id, value)
}

// WrapForDomain wraps a key in the token its handle names.
func (k keyProvider) WrapForDomain(ctx context.Context, handle, id []byte) (provider.DomainWrapped, error) {
	dw, err := domainWrapper(k.byHandle(handle))
	if err != nil {
		return provider.DomainWrapped{}, err
	}
	return dw.WrapForDomain(ctx, handle, id)
}

// UnwrapForDomain unwraps a key into the token of store, whichever token its handle names.
func (k keyProvider) UnwrapForDomain(ctx context.Context, store string, id, handle []byte, w provider.DomainWrapped) (provider.Key, error) {
	dw, err := domainWrapper(k.pick(provider.OctHSM, store))
	if err != nil {
		return nil, err
	}
	return dw.UnwrapForDomain(ctx, store, id, handle, w)
}

var _ provider.DomainWrapper = missingToken{}

func (m missingToken) InstallDomainKey(context.Context, string, []byte, []byte) error {
	return m.err()
}

func (m missingToken) WrapForDomain(context.Context, []byte, []byte) (provider.DomainWrapped, error) {
	return provider.DomainWrapped{}, m.err()
}

func (m missingToken) UnwrapForDomain(context.Context, string, []byte, []byte, provider.DomainWrapped) (provider.Key, error) {
	return nil, m.err()
}
