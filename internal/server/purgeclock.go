package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/audit"
	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// purgeClockPath holds the scheduler's trusted time and purge hold (records.PurgeClock), sealed.
const purgeClockPath = "scheduler/purge-clock"

// schedulerOID is the caller of the audit records the scheduler writes.
const schedulerOID = "coffer-scheduler"

// newPurgeClock makes the server's purge clock (SECURITY-NOTES S5).
func (s *Server) newPurgeClock() *records.PurgeClock {
	return records.NewPurgeClock(s.barrier, purgeClockPath, s.cfg.PurgeClockJumpLimit, s.purgesHeld)
}

// purgeHooks connect the domain services' purges to the purge clock and the audit log.
func (s *Server) purgeHooks() records.PurgeHooks {
	return records.PurgeHooks{Gate: s.purgeClock.Check, Purged: s.auditScheduledPurge}
}

// purgesHeld is the alert of a purge hold: an ERROR log line, the coffer_purges_held gauge and
// an audit record. It runs with the purge clock locked, possibly inside a purge's storage
// transaction, so it touches no storage and never builds the identity.
func (s *Server) purgesHeld(st records.PurgeClockState) {
	s.metrics.purgesHeld.Set(1)
	s.metrics.purgeHolds.Inc()
	msg := fmt.Sprintf("the clock reads %s, more than %s ahead of the last trusted time; purges are held until an operator checks the clock and runs `coffer operator confirm-clock`",
		time.Unix(st.HeldAt, 0).UTC().Format(time.RFC3339), s.cfg.PurgeClockJumpLimit)
	s.log.Error("purges held: the clock jumped forward", "clock", time.Unix(st.HeldAt, 0).UTC(), "limit", s.cfg.PurgeClockJumpLimit)
	s.recordSystem(audit.Event{Operation: "PurgesHeld", CallerOID: schedulerOID, Status: http.StatusConflict, Result: audit.ResultError, Reason: msg})
}

// auditScheduledPurge records one purge the scheduler did.
func (s *Server) auditScheduledPurge(p records.Purged) {
	s.metrics.scheduledPurges.Inc()
	reason := "scheduled purge due " + time.Unix(p.Due, 0).UTC().Format(time.RFC3339)
	if p.Destroyed > 0 {
		reason += fmt.Sprintf("; %d provider objects destroyed", p.Destroyed)
	}
	vault := p.Vault
	if p.Kind == tenancy.KindManagedHSM {
		vault += ".managedhsm"
	}
	s.recordSystem(audit.Event{Operation: "ScheduledPurge", CallerOID: schedulerOID, Tenant: p.TenantID, Vault: vault,
		ObjectID: "/" + p.Path, Status: http.StatusNoContent, Result: audit.ResultSuccess, Reason: reason})
}

// recordSystem appends an event of the server's own to the audit log if it is open (the
// scheduler runs only while unsealed); a failure is logged.
func (s *Server) recordSystem(ev audit.Event) {
	s.idh.mu.Lock()
	id := s.idh.cur
	s.idh.mu.Unlock()
	if id == nil {
		s.log.Error("audit record not written: the audit log is closed (sealed)", "op", ev.Operation)
		return
	}
	if err := id.record(ev); err != nil {
		s.log.Error("audit write failed for a scheduler record", "op", ev.Operation, "err", err)
	}
}

// tickPurgeClock starts a scheduler round on the purge clock. While purges are held the
// services skip their purges themselves, through the gate.
func (s *Server) tickPurgeClock(ctx context.Context) {
	switch err := s.purgeClock.Tick(ctx, s.now()); {
	case errors.Is(err, records.ErrPurgesHeld):
		s.metrics.purgesHeld.Set(1) // also after a restart with a persisted hold
		s.log.Warn("scheduled purges skipped: purges are held until `coffer operator confirm-clock`")
	case err != nil:
		s.log.Error("scheduled purges skipped: the purge clock failed", "err", err)
	default:
		s.metrics.purgesHeld.Set(0)
	}
}

// purgeClockStatus answers GET /v1/sys/purge-clock: the trusted time and whether purges are held.
func (s *Server) purgeClockStatus(w http.ResponseWriter, r *http.Request) error {
	st, err := s.purgeClock.State(r.Context())
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, purgeClockDTO(st, s.now(), s.cfg.PurgeClockJumpLimit))
	return nil
}

// confirmPurgeClock answers POST /v1/sys/purge-clock/confirm: the operator has checked the
// clock, its reading becomes the trusted time and held purges resume.
func (s *Server) confirmPurgeClock(w http.ResponseWriter, r *http.Request) error {
	st, err := s.purgeClock.Confirm(r.Context(), s.now())
	if err != nil {
		_ = s.auditOperator(r, "SysPurgeClockConfirm", http.StatusInternalServerError) // logged if it fails
		return err
	}
	s.metrics.purgesHeld.Set(0)
	s.log.Warn("purge clock confirmed by operator: held purges resume", "trusted", time.Unix(st.Trusted(), 0).UTC())
	if err := s.auditOperator(r, "SysPurgeClockConfirm", http.StatusOK); err != nil {
		// As rotate does: the answer is withheld, though the confirmation took effect.
		return api.Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "the audit log cannot be written, so the result is withheld; the purge clock was confirmed and held purges resume; check the audit log's disk and output")
	}
	api.WriteJSON(w, http.StatusOK, purgeClockDTO(st, s.now(), s.cfg.PurgeClockJumpLimit))
	return nil
}

func purgeClockDTO(st records.PurgeClockState, now time.Time, limit time.Duration) map[string]any {
	out := map[string]any{"held": st.Held, "trusted": st.Trusted(), "now": now.Unix(), "limitSeconds": int64(limit / time.Second)}
	if st.Held {
		out["heldAt"] = st.HeldAt
	}
	return out
}
