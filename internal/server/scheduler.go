package server

import (
	"context"
	"time"
)

// runScheduler performs due work on an interval while the server runs: key rotations that
// rotation policies call for and purges of deleted objects whose retention has ended (held
// while the purge clock says the clock jumped forward, purgeclock.go). It does nothing while
// sealed.
func (s *Server) runScheduler(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.runDue(ctx)
		}
	}
}

// runDue runs one round of scheduled work.
func (s *Server) runDue(ctx context.Context) {
	if s.barrier.Sealed() {
		return
	}
	s.anchorGeneration(ctx)
	id, err := s.ident()
	if err != nil {
		return
	}
	s.tickPurgeClock(ctx)
	s.rotateSigner(id.signer, "token signing key")
	s.rotateSigner(id.attestSigner, "attestation token key")
	rotated, purged, err := id.keys.RunDue(ctx, s.now())
	if err != nil {
		s.log.Error("scheduled key work failed", "err", err)
	}
	if rotated+purged > 0 {
		s.log.Info("scheduled key work done", "rotated", rotated, "purged", purged)
	}
	if renewed, notified, purged, err := id.certs.RunDue(ctx, s.now()); err != nil {
		s.log.Error("scheduled certificate work failed", "err", err)
	} else if renewed+notified+purged > 0 {
		s.log.Info("scheduled certificate work done", "renewed", renewed, "notified", notified, "purged", purged)
	}
	if n, err := id.secrets.RunDue(ctx, s.now()); err != nil {
		s.log.Error("scheduled secret purges failed", "err", err)
	} else if n > 0 {
		s.log.Info("scheduled secret purges done", "purged", n)
	}
}
