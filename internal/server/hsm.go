package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/provider/pkcs11"
)

// openHSM opens the configured PKCS#11 token, if any. The PIN is read from its file and
// never logged.
func (s *Server) openHSM() (*pkcs11.Provider, error) {
	if s.cfg.PKCS11Library == "" {
		return nil, nil
	}
	cfg, err := s.tokenConfig(s.cfg.PKCS11Token)
	if err != nil {
		return nil, err
	}
	p, err := pkcs11.Open(cfg)
	if err != nil {
		setting, value := "pkcs11-token-label", s.cfg.PKCS11Token
		switch {
		case errors.Is(err, pkcs11.ErrLibrary):
			setting, value = "pkcs11-library", s.cfg.PKCS11Library
		case errors.Is(err, pkcs11.ErrPINRefused):
			setting, value = "pkcs11-pin-file", s.cfg.PKCS11PINFile
		}
		return nil, fmt.Errorf("setting %q %q: %w", setting, value, err)
	}
	return p, nil
}

// keyProvider sends HSM key types (RSA-HSM, EC-HSM, oct-HSM) to a PKCS#11 token — a
// managed HSM pool's own token if pkcs11-pool-tokens gives it one (by KeySpec.Store), else
// the default token — and the others to the software provider; handles are routed by their
// shape and the token they name (pooltokens.go). Without a token the software provider
// answers everything, and refuses HSM key types as unsupported — an HSM key never silently
// becomes a software key.
type keyProvider struct {
	soft provider.Provider
	hsm  provider.Provider // the default token; nil without a token
	// tokens are the providers of every token by label (the default's included), pools
	// those of the pools' own tokens by store ("managedhsms/<pool>").
	tokens map[string]provider.Provider
	pools  map[string]provider.Provider
}

var (
	_ provider.Provider         = keyProvider{}
	_ provider.TransferImporter = keyProvider{}
)

// Name stays the software provider's name so that key backups made before a token was
// configured still restore; Load routes every handle to the provider that made it.
func (k keyProvider) Name() string { return k.soft.Name() }

func (k keyProvider) pick(t provider.KeyType, store string) provider.Provider {
	if k.hsm != nil && strings.HasSuffix(string(t), "-HSM") {
		if p, ok := k.pools[store]; ok {
			return p
		}
		return k.hsm
	}
	return k.soft
}

func (k keyProvider) Generate(ctx context.Context, spec provider.KeySpec) (provider.Key, error) {
	return k.pick(spec.Type, spec.Store).Generate(ctx, spec)
}

func (k keyProvider) Import(ctx context.Context, jwk *provider.JWK) (provider.Key, error) {
	return k.pick(jwk.Kty, jwk.Store).Import(ctx, jwk)
}

// byHandle: PKCS#11 handles name a token object ({"v":1,"id":...,"pub":...}, or for
// oct-HSM {"v":1,"id":...,"kty":"oct-HSM","size":...}) and the token ("tok", absent in
// handles of the default token made before); software handles carry the key itself.
func (k keyProvider) byHandle(handle []byte) provider.Provider {
	if k.hsm == nil {
		return k.soft
	}
	var h struct {
		ID  string           `json:"id"`
		Kty provider.KeyType `json:"kty"`
		Pub json.RawMessage  `json:"pub"`
	}
	if json.Unmarshal(handle, &h) == nil && h.ID != "" && (len(h.Pub) > 0 || h.Kty == provider.OctHSM) {
		return k.token(pkcs11.HandleToken(handle))
	}
	return k.soft
}

// ImportTransfer sends a BYOK transfer to the KEK's token, where the target key lands: the
// pool's own token for a pool's KEK.
func (k keyProvider) ImportTransfer(ctx context.Context, t provider.Transfer) (provider.Key, error) {
	if p := k.byHandle(t.KEK); p != k.soft {
		if imp, ok := p.(provider.TransferImporter); ok {
			return imp.ImportTransfer(ctx, t)
		}
	}
	return nil, fmt.Errorf("%w: BYOK needs a key-exchange key in the PKCS#11 token", provider.ErrUnsupported)
}

func (k keyProvider) Load(ctx context.Context, handle []byte) (provider.Key, error) {
	return k.byHandle(handle).Load(ctx, handle)
}

func (k keyProvider) Destroy(ctx context.Context, handle []byte) error {
	return k.byHandle(handle).Destroy(ctx, handle)
}
