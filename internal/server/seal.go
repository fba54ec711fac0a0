package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/coffer-kms/coffer/internal/barrier"
	"github.com/coffer-kms/coffer/internal/provider/pkcs11"
)

// Auto-unseal with a PKCS#11 key (--seal pkcs11): the barrier root key is wrapped by an
// AES-256 key of the token (pkcs11.Seal), so a restart needs no shares. The token must be
// there at start: without it, or without the seal key, the server starts sealed, logs the
// reason naming the setting to fix, reports it in the seal status, and never falls back to
// anything else. Recovery shares made at init can still unseal it (docs/OPERATOR.md).

// errSealUnavailable marks a failure of the configured seal (token or key missing).
var errSealUnavailable = errors.New("the PKCS#11 seal is unavailable")

// tokenSeal adapts pkcs11.Seal to barrier.RootKeyWrapper, naming the settings in its errors.
// open is the error of opening the token at start (nil if it opened).
type tokenSeal struct {
	seal  *pkcs11.Seal // nil when the token did not open
	open  error
	label string
}

var _ barrier.RootKeyWrapper = tokenSeal{}

func (t tokenSeal) Type() string { return "pkcs11" }

func (t tokenSeal) explain(err error) error {
	if errors.Is(err, pkcs11.ErrNoSealKey) {
		return fmt.Errorf("%w: setting \"pkcs11-seal-key-label\" %q: the token has no such AES key (was the store initialised with another token or label?)", errSealUnavailable, t.label)
	}
	return fmt.Errorf("%w: %w", errSealUnavailable, err)
}

func (t tokenSeal) Wrap(ctx context.Context, rootKey, aad []byte) ([]byte, error) {
	return t.with(func(s *pkcs11.Seal) ([]byte, error) { return s.Wrap(ctx, rootKey, aad) })
}

func (t tokenSeal) Unwrap(ctx context.Context, blob, aad []byte) ([]byte, error) {
	return t.with(func(s *pkcs11.Seal) ([]byte, error) { return s.Unwrap(ctx, blob, aad) })
}

// with runs op on the token's seal, explaining every failure.
func (t tokenSeal) with(op func(*pkcs11.Seal) ([]byte, error)) ([]byte, error) {
	if t.seal == nil {
		return nil, t.explain(t.open)
	}
	b, err := op(t.seal)
	if err != nil {
		return nil, t.explain(err)
	}
	return b, nil
}

// sealWrapper returns the root key wrapper of the configured seal: nil for shamir.
// hsmErr is the error of opening the token.
func (s *Server) sealWrapper(hsmErr error) barrier.RootKeyWrapper {
	if s.cfg.Seal != "pkcs11" {
		return nil
	}
	t := tokenSeal{open: hsmErr, label: s.cfg.PKCS11SealKeyLabel}
	if s.hsm != nil {
		t.seal = s.hsm.Seal(s.cfg.PKCS11SealKeyLabel)
	}
	return t
}

// startAutoUnseal unseals an initialised store with the PKCS#11 seal at start. A failure
// leaves the server sealed; it is logged and kept for the seal status.
func (s *Server) startAutoUnseal(ctx context.Context) {
	err := s.manager.AutoUnseal(ctx)
	if err == nil {
		s.log.Info("coffer unsealed itself with the PKCS#11 seal", "token", s.cfg.PKCS11Token, "seal_key_label", s.cfg.PKCS11SealKeyLabel)
		return
	}
	s.sealErr = fmt.Errorf("auto-unseal (setting \"seal\" pkcs11) failed, coffer stays sealed: %w", err)
	s.log.Error("coffer is sealed: fix the token settings and restart, or unseal with the recovery shares (`coffer operator unseal`)", "err", s.sealErr)
}

// sealStatusBody is the seal status with the reason auto-unseal failed, if it did.
type sealStatusBody struct {
	barrier.Status
	Error string `json:"error,omitempty"`
}

func (s *Server) withSealError(st barrier.Status) sealStatusBody {
	b := sealStatusBody{Status: st}
	if st.Sealed && s.sealErr != nil {
		b.Error = s.sealErr.Error()
	}
	return b
}

// storeChecks configures the barrier's store checks (docs/FORMAT.md, "Store state"): with
// the PKCS#11 seal the store generation is also kept in a data object of the token, labelled
// after the seal key, so that a store restored from an older copy refuses to unseal.
func (s *Server) storeChecks() barrier.StoreChecks {
	c := barrier.StoreChecks{AcceptStore: s.cfg.AcceptStoreRollback, Log: s.log}
	if s.cfg.Seal == "pkcs11" && s.hsm != nil {
		c.Anchor = s.hsm.GenerationObject(s.cfg.PKCS11SealKeyLabel + "-generation")
	}
	if c.AcceptStore {
		s.log.Warn("setting \"accept-store-rollback\" is on: the next unseal serves the store even if it was rolled back; remove the setting once it has unsealed")
	}
	return c
}

// anchorGeneration records the store generation outside the store (every scheduler round,
// before sealing and at shutdown): a rollback is detected back to the last one recorded.
func (s *Server) anchorGeneration(ctx context.Context) {
	if err := s.manager.AnchorGeneration(ctx); err != nil {
		s.log.Error("could not record the store generation outside the store; a rollback to a state after the last recorded one would go unnoticed", "err", err)
	}
}
