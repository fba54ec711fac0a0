package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/audit"
	"github.com/coffer-kms/coffer/internal/barrier"
	"github.com/coffer-kms/coffer/internal/storage"
)

// AuditFile is the audit log inside the data directory.
const AuditFile = "audit.log"

// auditKeysPath holds the audit log's checkpoint signing key and HMAC salt (sealed).
const auditKeysPath = "audit/keys"

type auditKeys struct {
	LogID   string `json:"logId"`
	Seed    []byte `json:"ed25519Seed"`
	HMACKey []byte `json:"hmacKey"`
}

// auditOptions returns the audit log options built from the sealed audit keys, creating the
// keys on first use.
func (s *Server) auditOptions(ctx context.Context) (audit.Options, error) {
	var keys auditKeys
	b, err := s.barrier.Get(ctx, auditKeysPath)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		keys = auditKeys{LogID: "coffer-" + randomHex(8), Seed: randomBytes(ed25519.SeedSize), HMACKey: randomBytes(32)}
		b, _ = json.Marshal(keys)
		if err := s.barrier.Put(ctx, auditKeysPath, b); err != nil {
			return audit.Options{}, err
		}
	case err != nil:
		return audit.Options{}, err
	default:
		if err := json.Unmarshal(b, &keys); err != nil {
			return audit.Options{}, fmt.Errorf("audit keys record is damaged: %w", err)
		}
	}
	return audit.Options{
		Signer:  ed25519.NewKeyFromSeed(keys.Seed),
		HMACKey: keys.HMACKey,
		LogID:   keys.LogID,
		Clock:   s.now,
	}, nil
}

// openAudit opens the audit log file of the data directory.
func (s *Server) openAudit(ctx context.Context) (*audit.Log, error) {
	opts, err := s.auditOptions(ctx)
	if err != nil {
		return nil, err
	}
	// Check only from the last signed checkpoint on unseal, so unsealing does not slow down
	// as the log grows; `coffer audit verify` checks the whole file.
	opts.VerifyFromCheckpoint = true
	opts.SyncInterval = s.cfg.AuditSyncInterval
	opts.LazySyncInterval = s.cfg.AuditReadSyncInterval
	opts.MaxFileBytes = s.cfg.AuditMaxSize
	opts.OnRotate = func(rotated string, err error) {
		if err != nil {
			s.log.Error("audit log rotation failed; the log goes on in the same file and tries again after another MiB", "err", err)
			return
		}
		s.log.Info("audit log rotated", "rotated", rotated, "max-size", s.cfg.AuditMaxSize)
	}
	return audit.Open(filepath.Join(s.cfg.DataDir, AuditFile), opts)
}

// openAuditSink opens the standard-output audit sink: the same records, its own chain.
func (s *Server) openAuditSink(ctx context.Context, w io.Writer) (*audit.Log, error) {
	opts, err := s.auditOptions(ctx)
	if err != nil {
		return nil, err
	}
	opts.LogID += "-stdout"
	return audit.NewWriterSink(w, opts)
}

// AuditPublicKey returns the public key that verifies the audit log's checkpoints.
func (s *Server) AuditPublicKey(ctx context.Context) (ed25519.PublicKey, error) {
	b, err := s.barrier.Get(ctx, auditKeysPath)
	if err != nil {
		return nil, err
	}
	var keys auditKeys
	if err := json.Unmarshal(b, &keys); err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(keys.Seed).Public().(ed25519.PublicKey), nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return b
}

func randomHex(n int) string { return fmt.Sprintf("%x", randomBytes(n)) }

// auditor adapts the audit log to the data plane.
type auditor struct{ s *Server }

func (s *Server) auditor() api.Auditor { return auditor{s} }

func (a auditor) Record(ctx context.Context, rec api.AuditRecord) error {
	a.s.decryptAlarm.note(rec)
	id, err := a.s.ident()
	if errors.Is(err, barrier.ErrSealed) {
		a.s.sealedRefused.note(rec) // recorded in one summary at the next unseal
	}
	if err != nil {
		return err
	}
	// The path (ObjectID) and the store name come from the request: clipped, so that a
	// path of invalid UTF-8 or over 1 KiB is recorded rather than lost.
	ev := audit.Event{
		Time: rec.Time, CallerOID: rec.CallerOID, CallerAppID: rec.CallerApp, CallerTenant: rec.CallerTn,
		Tenant: rec.Tenant, Vault: audit.Clip(rec.Vault), Operation: rec.Operation, ObjectID: audit.Clip(rec.ObjectID),
		Status: rec.Status, Result: rec.Result, ClientAddr: rec.ClientAddr, Reason: auditReason(rec.Reason),
	}
	if rec.ReadOnly {
		return id.recordLazy(ev)
	}
	return id.record(ev)
}

// auditTokenRequest records every token request of the identity provider; an error makes
// the provider withhold an issued token.
func (s *Server) auditTokenRequest(ctx context.Context, r *http.Request, tenantID, appID, objectID string, status int, reason string) error {
	id, err := s.ident()
	if err != nil {
		return err
	}
	result := audit.ResultSuccess
	if status >= 400 {
		result = audit.ResultUnauthenticated
	}
	// The tenant and client id are the request's own: clipped (audit.Clip).
	tenantID, appID = audit.Clip(tenantID), audit.Clip(appID)
	if err := id.record(audit.Event{
		Operation: "TokenIssue", Tenant: tenantID, CallerTenant: tenantID, CallerAppID: appID, CallerOID: objectID,
		Status: status, Result: result, ClientAddr: r.RemoteAddr, Reason: reason,
	}); err != nil {
		s.log.Error("audit write failed for a token request; no token issued", "status", status, "err", err)
		return err
	}
	return nil
}

// auditOperator records an operator (seal lifecycle) action and returns whether the record
// was written. The audit log exists only while unsealed, so seal is recorded just before
// sealing and unseal just after; init and refused unseal attempts go to the server log only.
func (s *Server) auditOperator(r *http.Request, op string, status int) error {
	id, err := s.ident()
	if err != nil {
		s.log.Warn("operator action not in the audit log (sealed, or the log cannot be opened)", "op", op, "err", err)
		return err
	}
	result := audit.ResultSuccess
	if status >= 400 {
		result = audit.ResultError
	}
	if err := id.record(audit.Event{Operation: op, CallerOID: "operator", Status: status, Result: result, ClientAddr: r.RemoteAddr}); err != nil {
		s.log.Error("audit write failed for an operator action", "op", op, "err", err)
		return err
	}
	return nil
}

// keysBackupKeyPath holds the AES-256 key that seals key backups (sealed by the barrier, so
// backups restore only into this installation).
const keysBackupKeyPath = "keys/backup-key"

// sealedSecret returns the 32-byte secret stored (sealed) at path, creating it on first use.
func (s *Server) sealedSecret(ctx context.Context, path string) ([]byte, error) {
	var out []byte
	err := s.barrier.Txn(ctx, func(tx storage.Tx) error {
		b, err := tx.Get(ctx, path)
		if err == nil {
			if len(b) != 32 {
				return fmt.Errorf("%s is damaged (%d bytes)", path, len(b))
			}
			out = b
			return nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		out = randomBytes(32)
		return tx.Put(ctx, path, out)
	})
	return out, err
}
