package server

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/provider/pkcs11"
)

// Per-pool tokens (pkcs11-pool-tokens): each listed managed HSM pool keeps its HSM keys in
// a token of its own, opened at start with the default token's library, PIN file and
// session count. Generate goes to the pool's token by KeySpec.Store; a handle goes to the
// token it names, and a handle naming a token that is not configured fails with
// provider.ErrUnavailable (503), never tried on another token.

// tokenConfig is the pkcs11 configuration of the token labelled label. The PIN is read
// from its file and never logged.
func (s *Server) tokenConfig(label string) (pkcs11.Config, error) {
	pin, err := os.ReadFile(s.cfg.PKCS11PINFile)
	if err != nil {
		return pkcs11.Config{}, fmt.Errorf("setting \"pkcs11-pin-file\": %w", err)
	}
	cfg := pkcs11.Config{Library: s.cfg.PKCS11Library, TokenLabel: label,
		PIN: strings.TrimSpace(string(pin)), Sessions: int(s.cfg.PKCS11Sessions), SessionWait: s.cfg.PKCS11SessionWait}
	if s.cfg.PKCS11SOPINFile != "" {
		so, err := os.ReadFile(s.cfg.PKCS11SOPINFile)
		if err != nil {
			return pkcs11.Config{}, fmt.Errorf("setting \"pkcs11-so-pin-file\": %w", err)
		}
		cfg.SOPIN = strings.TrimSpace(string(so))
	}
	return cfg, nil
}

// openPoolTokens opens the token of every pool of pkcs11-pool-tokens into s.poolTokens;
// the error names the setting, the pool and the token. Start closes what was opened when
// it fails (closeHSM).
func (s *Server) openPoolTokens() error {
	for _, pt := range s.cfg.PKCS11PoolTokens {
		cfg, err := s.tokenConfig(pt.Label)
		if err != nil {
			return err
		}
		p, err := pkcs11.Open(cfg)
		if err != nil {
			return fmt.Errorf("setting \"pkcs11-pool-tokens\": pool %q, token %q: %w", pt.Pool, pt.Label, err)
		}
		if s.poolTokens == nil {
			s.poolTokens = map[string]*pkcs11.Provider{}
		}
		s.poolTokens[pt.Label] = p
		s.log.Info("the managed HSM pool's HSM keys live in a token of its own", "pool", pt.Pool, "token", pt.Label)
	}
	return nil
}

// hsmProvider is the routing provider over the software provider, the default token and
// the pools' tokens.
func (s *Server) hsmProvider(soft provider.Provider) keyProvider {
	if s.hsm == nil {
		return keyProvider{soft: soft}
	}
	k := keyProvider{soft: soft, hsm: s.hsm, tokens: map[string]provider.Provider{s.cfg.PKCS11Token: s.hsm}, pools: map[string]provider.Provider{}}
	for _, pt := range s.cfg.PKCS11PoolTokens {
		if p, ok := s.poolTokens[pt.Label]; ok {
			k.tokens[pt.Label], k.pools["managedhsms/"+pt.Pool] = p, p
		}
	}
	return k
}

// closeHSM closes the pools' tokens, then the default token (which finalizes the library).
func (s *Server) closeHSM() {
	for label, p := range s.poolTokens {
		p.Close()
		delete(s.poolTokens, label)
	}
	if s.hsm != nil {
		s.hsm.Close()
	}
}

// token is the provider of the token a handle names: "" is the default token (handles
// made before handles named their token), else the token of that label; a token that is
// not configured is missingToken.
func (k keyProvider) token(label string) provider.Provider {
	if label == "" {
		return k.hsm
	}
	if p, ok := k.tokens[label]; ok {
		return p
	}
	return missingToken{label: label}
}

// missingToken answers for a token a handle names that is not configured (removed from
// pkcs11-pool-tokens, or relabelled): every call fails with provider.ErrUnavailable.
type missingToken struct{ label string }

var _ provider.TransferImporter = missingToken{}

func (m missingToken) err() error {
	return fmt.Errorf("%w: the key's PKCS#11 token %q is not configured (pkcs11-token-label, pkcs11-pool-tokens)", provider.ErrUnavailable, m.label)
}

func (missingToken) Name() string { return "pkcs11" }

func (m missingToken) Generate(context.Context, provider.KeySpec) (provider.Key, error) {
	return nil, m.err()
}

func (m missingToken) Import(context.Context, *provider.JWK) (provider.Key, error) {
	return nil, m.err()
}

func (m missingToken) Load(context.Context, []byte) (provider.Key, error) { return nil, m.err() }

func (m missingToken) Destroy(context.Context, []byte) error { return m.err() }

func (m missingToken) ImportTransfer(context.Context, provider.Transfer) (provider.Key, error) {
	return nil, m.err()
}
