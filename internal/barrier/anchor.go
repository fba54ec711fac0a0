package barrier

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/coffer-kms/coffer/internal/storage"
)

// GenerationAnchor keeps the store generation outside the store (a data object of the HSM
// that holds the seal key, for example), so that a whole store restored from an older copy,
// which matches its own old store state, is still found out at unseal: its generation is
// lower than the anchored one.
type GenerationAnchor interface {
	// Describe names where the generation is kept, for operators ("PKCS#11 token data object
	// …").
	Describe() string
	// LoadGeneration returns the anchored generation; found is false if none was stored yet.
	LoadGeneration(ctx context.Context) (gen uint64, found bool, err error)
	// StoreGeneration replaces the anchored generation with gen.
	StoreGeneration(ctx context.Context, gen uint64) error
}

// StoreChecks configures what unseal does with the store state (state.go).
type StoreChecks struct {
	// Anchor keeps the generation outside the store; nil: none (a whole-store rollback is
	// then undetectable, docs/FORMAT.md).
	Anchor GenerationAnchor
	// AcceptStore is the operator's override after a restore they mean: the store as it is
	// becomes the truth. An unseal that would refuse because the records do not match the
	// store state, or because the store is older than the anchor, instead records the records'
	// hash as a new generation and moves the anchor down to it. Records that fail to open
	// still fail their reads.
	AcceptStore bool
	// Log receives the warnings of automatic keyring rotations (sealcount.go); nil: none.
	Log *slog.Logger
}

// SetStoreChecks configures the store checks of later unseals. Call it before the first one.
func (m *Manager) SetStoreChecks(c StoreChecks) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.checks = c
}

// checkStore checks the data records against the store state and the store generation
// against the anchor, writing the store state of a store made before store states. It
// returns the generation the barrier starts from. rootKey reseals the keyring when its
// storeState mark is added.
func (m *Manager) checkStore(ctx context.Context, kr *keyring, rootKey []byte) (uint64, error) {
	accept := m.checks.AcceptStore
	stored, found, stateErr := loadState(ctx, m.raw, kr)
	if stateErr != nil && !accept {
		return 0, fmt.Errorf("unseal: %w; restore the store from a backup", stateErr)
	}
	anchored, anchorFound, err := m.loadAnchor(ctx)
	if err != nil {
		return 0, err
	}
	res, err := scan(ctx, m.raw, kr)
	if err != nil {
		return 0, fmt.Errorf("unseal: %w", err)
	}
	var problem error
	switch {
	case stateErr != nil:
		problem = stateErr
	case !found && kr.storeState:
		problem = fmt.Errorf("%w: the store state record %s is missing, but this store's keyring says it keeps one: it was deleted; restore the store from a backup", ErrIntegrity, storeStatePath)
	case !found:
		// A store written before store states: its records become the first state.
		problem = res.check(res.state)
		stored = res.state
	default:
		problem = res.check(stored)
	}
	if problem == nil && anchorFound && stored.gen < anchored {
		problem = fmt.Errorf("%w: the store is at generation %d, but %s recorded generation %d: the store was restored from an older copy, so changes made since (new keys, deletions, revoked access) are lost. Restore the newest backup; or, to serve this store as it is, start once with the setting \"accept-store-rollback\" (docs/OPERATOR.md, \"Store integrity\")",
			ErrRollback, stored.gen, m.checks.Anchor.Describe(), anchored)
	}
	rewrite := !found || !kr.storeState
	if problem != nil {
		if !accept {
			return 0, fmt.Errorf("unseal: %w", problem)
		}
		// The operator accepts the store as it is: its records are the new state, at a
		// generation above every one seen.
		gen := max(stored.gen, anchored)
		stored, rewrite = res.state, true
		stored.gen = gen
	}
	if rewrite {
		stored.gen++
		if err := m.writeState(ctx, kr, rootKey, stored); err != nil {
			return 0, err
		}
	}
	if a := m.checks.Anchor; a != nil && (!anchorFound || anchored != stored.gen) {
		if err := a.StoreGeneration(ctx, stored.gen); err != nil {
			return 0, fmt.Errorf("unseal: record the store generation %d in %s: %w", stored.gen, a.Describe(), err)
		}
	}
	m.anchored = stored.gen
	return stored.gen, nil
}

// loadAnchor reads the anchored generation, if there is an anchor.
func (m *Manager) loadAnchor(ctx context.Context) (uint64, bool, error) {
	a := m.checks.Anchor
	if a == nil {
		return 0, false, nil
	}
	gen, found, err := a.LoadGeneration(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("unseal: read the store generation from %s: %w; coffer does not unseal without it (fix the access to it)", a.Describe(), err)
	}
	return gen, found, nil
}

// writeState writes st and, if the keyring lacks the storeState mark, the keyring with it,
// in one transaction.
func (m *Manager) writeState(ctx context.Context, kr *keyring, rootKey []byte, st storeState) error {
	kr.storeState = true
	krBytes, err := kr.marshal()
	if err != nil {
		return err
	}
	sealedKR, err := sealWithKey(rootKey, keyringPath, krBytes)
	clear(krBytes)
	if err != nil {
		return err
	}
	err = m.raw.Txn(ctx, func(tx storage.Tx) error {
		if err := putState(ctx, tx, kr, st); err != nil {
			return err
		}
		return tx.Put(ctx, keyringPath, sealedKR)
	})
	if err != nil {
		return fmt.Errorf("unseal: write the store state: %w", err)
	}
	return nil
}

// AnchorGeneration records the barrier's current store generation in the anchor, if it
// advanced since it was last recorded. The server calls it periodically and before sealing:
// a whole-store rollback is detected only to the last recorded generation.
func (m *Manager) AnchorGeneration(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.checks.Anchor
	gen := m.barrier.Generation()
	if a == nil || gen <= m.anchored {
		return nil
	}
	if err := a.StoreGeneration(ctx, gen); err != nil {
		return fmt.Errorf("record the store generation %d in %s: %w", gen, a.Describe(), err)
	}
	m.anchored = gen
	return nil
}
