package barrier

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/coffer-kms/coffer/internal/shamir"
	"github.com/coffer-kms/coffer/internal/storage"
)

// Physical paths of the seal records (outside the sealed data namespace).
const (
	sealConfigPath = corePrefix + "seal-config"
	rootKeyPath    = corePrefix + "root-key"
	keyringPath    = corePrefix + "keyring"
	// rootTokenPath holds the SHA-256 of the operator token, sealed by the keyring.
	rootTokenPath = corePrefix + "root-token"
	// recoveryKeyPath holds the root key sealed by the recovery key (auto-unseal seals only).
	recoveryKeyPath = corePrefix + "recovery-root-key"
)

// SealTypeShamir is the seal type whose root key is wrapped by a key split into shares.
const SealTypeShamir = "shamir"

// Errors of the seal lifecycle. Each leaves the seal state unchanged unless it says otherwise.
var (
	ErrNotInitialized     = errors.New("coffer is not initialized: run `coffer operator init`")
	ErrAlreadyInitialized = errors.New("coffer is already initialized")
	ErrWrongShares        = errors.New("the unseal shares do not open the root key: a share is wrong (or core/root-key is damaged); progress was reset, enter the shares again")
	ErrDuplicateShare     = errors.New("this unseal share was already entered")
	ErrShareMismatch      = errors.New("this unseal share does not belong with the shares entered before it")
	ErrBadRootToken       = errors.New("operator token is not valid")
	ErrAutoUnseal         = errors.New("this server unseals itself with its configured seal; unseal shares are not used")
)

// RootKeyWrapper protects the root key at rest for auto-unseal: an HSM key (PKCS#11) or a
// cloud KMS wraps it so that a restart needs no shares. The Shamir seal needs no wrapper.
type RootKeyWrapper interface {
	// Type names the seal in the seal configuration, e.g. "pkcs11".
	Type() string
	// Wrap encrypts the root key, authenticating aad.
	Wrap(ctx context.Context, rootKey, aad []byte) ([]byte, error)
	// Unwrap reverses Wrap; it fails if blob or aad were changed.
	Unwrap(ctx context.Context, blob, aad []byte) ([]byte, error)
}

// SealConfig is the persisted, non-secret description of the seal. It is bound into the
// associated data of the wrapped root key, so editing it on disk makes unseal fail. With an
// auto-unseal seal, Shares and Threshold describe the recovery shares (0: none).
type SealConfig struct {
	Version   int       `json:"version"`
	Type      string    `json:"type"`
	Shares    int       `json:"shares,omitempty"`
	Threshold int       `json:"threshold,omitempty"`
	Created   time.Time `json:"created"`
}

// Status is the seal state reported to operators.
type Status struct {
	Initialized bool   `json:"initialized"`
	Sealed      bool   `json:"sealed"`
	Type        string `json:"type,omitempty"`
	Shares      int    `json:"shares,omitempty"`
	Threshold   int    `json:"threshold,omitempty"`
	Progress    int    `json:"progress"`
	Term        uint32 `json:"term,omitempty"`
	// Generation is the store generation (docs/FORMAT.md, "Store state"); 0 while sealed.
	Generation uint64 `json:"generation,omitempty"`
}

// InitOptions configures an init: the unseal shares of the Shamir seal, or the recovery
// shares of an auto-unseal seal (both 0: no recovery shares).
type InitOptions struct {
	Shares    int
	Threshold int
}

// InitResult is shown once to the operator and never stored.
type InitResult struct {
	Shares    []string `json:"shares"`
	RootToken string   `json:"rootToken"`
}

// Manager owns the seal lifecycle of one Barrier: init, unseal, seal and keyring rotation.
type Manager struct {
	raw     storage.Backend
	barrier *Barrier
	wrapper RootKeyWrapper // nil for the Shamir seal
	now     func() time.Time

	mu       sync.Mutex
	rootKey  []byte   // set while unsealed
	pending  [][]byte // unseal shares entered so far
	checks   StoreChecks
	anchored uint64 // the generation last recorded in checks.Anchor
	// rotateFailed is when an automatic rotation last failed (retried a minute later).
	rotateFailed time.Time
}

// NewManager returns a Manager for a barrier over raw. wrapper is nil for the Shamir seal.
func NewManager(raw storage.Backend, b *Barrier, wrapper RootKeyWrapper, now func() time.Time) *Manager {
	if now == nil {
		now = time.Now
	}
	m := &Manager{raw: raw, barrier: b, wrapper: wrapper, now: now}
	b.rotate = m.autoRotate
	return m
}

// Status reports the seal state.
func (m *Manager) Status(ctx context.Context) (Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.statusLocked(ctx)
}

func (m *Manager) statusLocked(ctx context.Context) (Status, error) {
	cfg, _, err := m.loadConfig(ctx)
	if errors.Is(err, ErrNotInitialized) {
		return Status{Sealed: true}, nil
	}
	if err != nil {
		return Status{Sealed: true}, err
	}
	return Status{
		Initialized: true,
		Sealed:      m.barrier.Sealed(),
		Type:        cfg.Type,
		Shares:      cfg.Shares,
		Threshold:   cfg.Threshold,
		Progress:    len(m.pending),
		Term:        m.barrier.ActiveTerm(),
		Generation:  m.barrier.Generation(),
	}, nil
}

func (m *Manager) loadConfig(ctx context.Context) (SealConfig, []byte, error) {
	b, err := m.raw.Get(ctx, sealConfigPath)
	if errors.Is(err, storage.ErrNotFound) {
		return SealConfig{}, nil, ErrNotInitialized
	}
	if err != nil {
		return SealConfig{}, nil, fmt.Errorf("read seal configuration %s: %w", sealConfigPath, err)
	}
	var cfg SealConfig
	if err := json.Unmarshal(b, &cfg); err != nil || cfg.Version != 1 {
		return SealConfig{}, nil, fmt.Errorf("seal configuration %s is damaged: cannot unseal", sealConfigPath)
	}
	return cfg, b, nil
}

// Init creates the root key and keyring. With the Shamir seal it splits a fresh unseal key
// into opts.Shares shares of which opts.Threshold unseal; they are returned once and never
// stored. With an auto-unseal wrapper the barrier is unsealed at once, and (unless
// opts.Shares and opts.Threshold are both 0) the root key is also sealed by a recovery key
// split into recovery shares: they unseal the store if the wrapper's key is lost.
func (m *Manager) Init(ctx context.Context, opts InitOptions) (InitResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	cfg := SealConfig{Version: 1, Type: SealTypeShamir, Shares: opts.Shares, Threshold: opts.Threshold, Created: m.now().UTC()}
	recovery := m.wrapper != nil && (opts.Shares != 0 || opts.Threshold != 0)
	if m.wrapper != nil && !recovery {
		cfg = SealConfig{Version: 1, Type: m.wrapper.Type(), Created: cfg.Created}
	} else if m.wrapper != nil {
		cfg.Type = m.wrapper.Type()
	}
	if m.wrapper == nil || recovery {
		if err := checkShares(opts); err != nil {
			return InitResult{}, err
		}
	}
	cfgBytes, err := json.Marshal(cfg)
	if err != nil {
		return InitResult{}, err
	}

	rootKey := randomBytes(32)
	kr, err := newKeyring(m.now())
	if err != nil {
		return InitResult{}, err
	}
	var res InitResult
	var wrapped, recoveryRecord []byte
	if m.wrapper != nil {
		if wrapped, err = m.wrapper.Wrap(ctx, rootKey, rootKeyAAD(cfgBytes)); err != nil {
			return InitResult{}, fmt.Errorf("init: wrap root key with %s seal: %w", m.wrapper.Type(), err)
		}
		if recovery {
			if recoveryRecord, res.Shares, err = splitSealed(rootKey, string(recoveryAAD(cfgBytes)), opts); err != nil {
				return InitResult{}, err
			}
		}
	} else if wrapped, res.Shares, err = splitSealed(rootKey, string(rootKeyAAD(cfgBytes)), opts); err != nil {
		return InitResult{}, err
	}
	krBytes, err := kr.marshal()
	if err != nil {
		return InitResult{}, err
	}
	sealedKR, err := sealWithKey(rootKey, keyringPath, krBytes)
	clear(krBytes)
	if err != nil {
		return InitResult{}, err
	}
	// The first block of term 1's seals is reserved in the same batch (sealcount.go).
	kr.count.extend(0, m.barrier.limits.block)
	sealedSeals, err := kr.termSealsRecord(m.barrier.limits.block)
	if err != nil {
		return InitResult{}, err
	}
	token := randomBytes(32)
	res.RootToken = "cof." + base64.RawURLEncoding.EncodeToString(token)
	tokenHash := sha256.Sum256([]byte(res.RootToken))
	sealedToken, err := kr.seal(rootTokenPath, tokenHash[:])
	if err != nil {
		return InitResult{}, err
	}
	sealedState, err := kr.seal(storeStatePath, (&storeState{}).marshal())
	if err != nil {
		return InitResult{}, err
	}

	err = m.raw.Txn(ctx, func(tx storage.Tx) error {
		if _, err := tx.Get(ctx, sealConfigPath); err == nil {
			return ErrAlreadyInitialized
		} else if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		for _, kv := range []struct {
			k string
			v []byte
		}{{sealConfigPath, cfgBytes}, {rootKeyPath, wrapped}, {keyringPath, sealedKR}, {rootTokenPath, sealedToken}, {storeStatePath, sealedState}, {termSealsPath, sealedSeals}, {recoveryKeyPath, recoveryRecord}} {
			if kv.v == nil {
				continue
			}
			if err := tx.Put(ctx, kv.k, kv.v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return InitResult{}, fmt.Errorf("init: %w", err)
	}
	// A new store starts at generation 0, whatever the anchor held for an earlier one.
	if a := m.checks.Anchor; a != nil {
		if err := a.StoreGeneration(ctx, 0); err != nil {
			return InitResult{}, fmt.Errorf("init: reset the store generation in %s: %w", a.Describe(), err)
		}
	}
	m.anchored = 0
	if m.wrapper != nil {
		m.rootKey = rootKey
		m.barrier.setKeyring(kr)
	} else {
		clear(rootKey)
		kr.wipe()
	}
	return res, nil
}

// splitSealed seals rootKey under a fresh key bound to aad and splits that key into shares.
func splitSealed(rootKey []byte, aad string, opts InitOptions) ([]byte, []string, error) {
	key := randomBytes(32)
	defer clear(key)
	record, err := sealWithKey(key, aad, rootKey)
	if err != nil {
		return nil, nil, err
	}
	raw, err := shamir.Split(key, opts.Shares, opts.Threshold)
	if err != nil {
		return nil, nil, fmt.Errorf("init: split key: %w", err)
	}
	shares := make([]string, 0, len(raw))
	for _, s := range raw {
		shares = append(shares, shamir.EncodeShare(s))
		clear(s)
	}
	return record, shares, nil
}

func checkShares(o InitOptions) error {
	switch {
	case o.Threshold == 1 && o.Shares == 1:
		return nil
	case o.Threshold < 2 || o.Shares < o.Threshold || o.Shares > 255:
		return fmt.Errorf("init: need 2 <= threshold (%d) <= shares (%d) <= 255, or one share with threshold 1", o.Threshold, o.Shares)
	}
	return nil
}

// Unseal adds one share. When enough shares are in, it reconstructs the unseal key, opens the
// root key and the keyring, and unseals the barrier. With an auto-unseal seal the shares are
// the recovery shares (ErrAutoUnseal if init made none). A malformed, corrupted, duplicate or
// mismatched share is refused and changes nothing; shares that together do not open the root
// key reset the progress. While unsealed, a well-formed share gets the status and a
// malformed one is still refused.
func (m *Manager) Unseal(ctx context.Context, share string) (Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cfg, cfgBytes, err := m.loadConfig(ctx)
	if err != nil {
		return Status{Sealed: true}, err
	}
	// A malformed share is refused whatever the seal state (Vault does the same): only a
	// well-formed share is answered with the status of a barrier that is already unsealed.
	raw, err := shamir.DecodeShare(share)
	if !m.barrier.Sealed() {
		clear(raw)
		st, serr := m.statusLocked(ctx)
		if err != nil {
			return st, fmt.Errorf("unseal: %w", err)
		}
		return st, serr
	}
	recordPath, aad := rootKeyPath, rootKeyAAD(cfgBytes)
	if cfg.Type != SealTypeShamir {
		if cfg.Threshold == 0 {
			clear(raw)
			st, _ := m.statusLocked(ctx)
			return st, ErrAutoUnseal
		}
		recordPath, aad = recoveryKeyPath, recoveryAAD(cfgBytes)
	}
	if err != nil {
		st, _ := m.statusLocked(ctx)
		return st, fmt.Errorf("unseal: %w", err)
	}
	for _, p := range m.pending {
		if len(p) != len(raw) {
			st, _ := m.statusLocked(ctx)
			return st, ErrShareMismatch
		}
		if p[len(p)-1] == raw[len(raw)-1] {
			st, _ := m.statusLocked(ctx)
			return st, ErrDuplicateShare
		}
	}
	m.pending = append(m.pending, raw)
	if len(m.pending) < cfg.Threshold {
		return m.statusLocked(ctx)
	}
	shares := m.pending
	m.pending = nil
	unsealKey, err := shamir.Combine(shares)
	for _, s := range shares {
		clear(s)
	}
	if err != nil {
		st, _ := m.statusLocked(ctx)
		return st, ErrWrongShares
	}
	defer clear(unsealKey)
	wrapped, err := m.raw.Get(ctx, recordPath)
	if err != nil {
		st, _ := m.statusLocked(ctx)
		return st, fmt.Errorf("unseal: read %s: %w", recordPath, err)
	}
	rootKey, err := openWithKey(unsealKey, string(aad), wrapped)
	if err != nil {
		st, _ := m.statusLocked(ctx)
		return st, ErrWrongShares
	}
	if err := m.unsealWithRootKey(ctx, rootKey); err != nil {
		st, _ := m.statusLocked(ctx)
		return st, err
	}
	return m.statusLocked(ctx)
}

// AutoUnseal unseals with the configured RootKeyWrapper. It is a no-op when already unsealed.
func (m *Manager) AutoUnseal(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.wrapper == nil {
		return errors.New("auto-unseal: no seal wrapper is configured")
	}
	if !m.barrier.Sealed() {
		return nil
	}
	cfg, cfgBytes, err := m.loadConfig(ctx)
	if err != nil {
		return err
	}
	if cfg.Type != m.wrapper.Type() {
		return fmt.Errorf("auto-unseal: storage was initialized with the %q seal, configuration says %q", cfg.Type, m.wrapper.Type())
	}
	wrapped, err := m.raw.Get(ctx, rootKeyPath)
	if err != nil {
		return fmt.Errorf("auto-unseal: read %s: %w", rootKeyPath, err)
	}
	rootKey, err := m.wrapper.Unwrap(ctx, wrapped, rootKeyAAD(cfgBytes))
	if err != nil {
		return fmt.Errorf("auto-unseal: unwrap root key %s with %s seal: %w", rootKeyPath, cfg.Type, err)
	}
	return m.unsealWithRootKey(ctx, rootKey)
}

func (m *Manager) unsealWithRootKey(ctx context.Context, rootKey []byte) error {
	blob, err := m.raw.Get(ctx, keyringPath)
	if err != nil {
		clear(rootKey)
		return fmt.Errorf("unseal: read keyring %s: %w", keyringPath, err)
	}
	krBytes, err := openWithKey(rootKey, keyringPath, blob)
	if err != nil {
		clear(rootKey)
		return fmt.Errorf("unseal: keyring record %s is damaged or was not sealed by this root key; restore it from a backup", keyringPath)
	}
	kr, err := parseKeyring(krBytes)
	clear(krBytes)
	if err != nil {
		clear(rootKey)
		return fmt.Errorf("unseal: keyring record %s is damaged: %v", keyringPath, err)
	}
	counted, err := reserveSeals(ctx, m.raw, kr, m.barrier.limits, 0)
	if err != nil {
		clear(rootKey)
		kr.wipe()
		return fmt.Errorf("unseal: %w", err)
	}
	gen, err := m.checkStore(ctx, kr, rootKey)
	if err != nil {
		clear(rootKey)
		kr.wipe()
		return err
	}
	m.rootKey = rootKey
	m.barrier.setKeyring(kr)
	m.barrier.noteGeneration(gen)
	if !counted {
		// A store from before seal counts: how often the active term sealed is unknown,
		// so a new term starts the count.
		_ = m.rotateFrom(ctx, kr.active, "its seals were not counted (the store was written before seal counts)") // a failure is logged there
	}
	return nil
}

// Seal drops the keyring and root key from memory; data operations then fail with ErrSealed.
func (m *Manager) Seal() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old := m.barrier.setKeyring(nil); old != nil {
		old.wipe()
	}
	clear(m.rootKey)
	m.rootKey = nil
	for _, s := range m.pending {
		clear(s)
	}
	m.pending = nil
}

// Rotate adds a keyring term and makes it active. The new keyring is durable before any
// record is sealed with the new term; records of older terms stay readable.
func (m *Manager) Rotate(ctx context.Context) (uint32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rotateLocked(ctx)
}

// autoRotate is the barrier's rotate hook: the active term, term, has sealed used records,
// near the AES-GCM limit (sealcount.go). A failure is retried a minute later at the
// earliest; until then the barrier seals on with the term up to its limit.
func (m *Manager) autoRotate(ctx context.Context, term uint32, used uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.rotateFailed.IsZero() && m.now().Sub(m.rotateFailed) < time.Minute {
		return errors.New("barrier: automatic rotation failed less than a minute ago")
	}
	return m.rotateFrom(ctx, term, fmt.Sprintf("it has sealed %d records, near the AES-GCM limit of 2^32 with random nonces (NIST SP 800-38D §8.3)", used))
}

// rotateFrom rotates the keyring if term is still the active one, logging why at Warn.
func (m *Manager) rotateFrom(ctx context.Context, term uint32, why string) error {
	if kr, err := m.barrier.keyring(); err != nil || kr.active != term {
		return err // sealed, or rotated meanwhile
	}
	next, err := m.rotateLocked(ctx)
	if err != nil {
		m.rotateFailed = m.now()
		m.logger().Warn("keyring term could not be rotated automatically: rotate it with `coffer operator rotate`", "term", term, "why", why, "err", err)
		return err
	}
	m.rotateFailed = time.Time{}
	m.logger().Warn("keyring rotated automatically", "from", term, "to", next, "why", why)
	return nil
}

// logger is checks.Log, or a logger that drops everything.
func (m *Manager) logger() *slog.Logger {
	if m.checks.Log != nil {
		return m.checks.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (m *Manager) rotateLocked(ctx context.Context) (uint32, error) {
	kr, err := m.barrier.keyring()
	if err != nil {
		return 0, err
	}
	next, err := kr.rotated(m.now())
	if err != nil {
		return 0, err
	}
	b, err := next.marshal()
	if err != nil {
		return 0, err
	}
	blob, err := sealWithKey(m.rootKey, keyringPath, b)
	clear(b)
	if err != nil {
		return 0, err
	}
	if err := m.raw.Put(ctx, keyringPath, blob); err != nil {
		return 0, fmt.Errorf("rotate: persist keyring: %w", err)
	}
	m.barrier.setKeyring(next)
	return next.active, nil
}

// CheckRootToken verifies the operator token made at init, in constant time.
func (m *Manager) CheckRootToken(ctx context.Context, token string) error {
	kr, err := m.barrier.keyring()
	if err != nil {
		return err
	}
	rec, err := m.raw.Get(ctx, rootTokenPath)
	if err != nil {
		return fmt.Errorf("read %s: %w", rootTokenPath, err)
	}
	want, err := kr.open(rootTokenPath, rec)
	if err != nil {
		return err
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	if subtle.ConstantTimeCompare(got[:], want) != 1 {
		return ErrBadRootToken
	}
	return nil
}

func rootKeyAAD(cfg []byte) []byte {
	return append([]byte(rootKeyPath+"\x00"), cfg...)
}

func recoveryAAD(cfg []byte) []byte {
	return append([]byte(recoveryKeyPath+"\x00"), cfg...)
}

// sealWithKey seals a core record (term 0) under a raw 256-bit key.
func sealWithKey(key []byte, path string, plaintext []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	return sealRecord(aead, 0, path, plaintext)
}

func openWithKey(key []byte, path string, record []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	if _, err := recordTerm(path, record); err != nil {
		return nil, err
	}
	return openRecord(aead, path, record)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error()) // crypto/rand.Read never fails on Linux
	}
	return b
}
