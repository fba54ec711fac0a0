package server

import (
	"errors"
	"net/http"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/barrier"
)

// The operator (sys) API: seal lifecycle and health. Documented in docs/OPERATOR.md.

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	api.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if err := s.barrier.Ping(r.Context()); err != nil {
		s.log.Warn("readiness: storage ping failed", "err", err)
		api.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "storage unavailable"})
		return nil
	}
	if s.barrier.Sealed() {
		api.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "sealed"})
		return nil
	}
	api.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	s.metrics.handler().ServeHTTP(w, r)
	return nil
}

func (s *Server) sealStatus(w http.ResponseWriter, r *http.Request) error {
	st, err := s.manager.Status(r.Context())
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, s.withSealError(st))
	return nil
}

type initRequest struct {
	Shares    int `json:"shares"`
	Threshold int `json:"threshold"`
}

func (s *Server) initSys(w http.ResponseWriter, r *http.Request) error {
	var req initRequest
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Shares == 0 && req.Threshold == 0 {
		req.Shares, req.Threshold = 5, 3
	}
	res, err := s.manager.Init(r.Context(), barrier.InitOptions{Shares: req.Shares, Threshold: req.Threshold})
	if err != nil {
		if e := mapDomainError(err); e != nil {
			return e
		}
		if errors.Is(err, errSealUnavailable) {
			s.log.Error("init failed: the PKCS#11 seal is unavailable", "err", err)
			return api.Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", err.Error())
		}
		return api.Errorf(http.StatusBadRequest, "BadParameter", err.Error())
	}
	s.log.Info("coffer initialized", "seal", s.cfg.Seal, "shares", req.Shares, "threshold", req.Threshold)
	api.WriteJSON(w, http.StatusOK, res)
	return nil
}

type unsealRequest struct {
	Share string `json:"share"`
}

func (s *Server) unseal(w http.ResponseWriter, r *http.Request) error {
	var req unsealRequest
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	st, err := s.manager.Unseal(r.Context(), req.Share)
	if err != nil {
		s.log.Warn("unseal share refused", "err", err, "progress", st.Progress)
		if e := mapDomainError(err); e != nil {
			return e
		}
		return api.Errorf(http.StatusBadRequest, "BadParameter", err.Error())
	}
	if !st.Sealed {
		s.log.Info("coffer unsealed", "term", st.Term)
		// Unsealed either way: if the record fails, so will every request (logged).
		_ = s.auditOperator(r, "SysUnseal", http.StatusOK)
	}
	api.WriteJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) seal(w http.ResponseWriter, r *http.Request) error {
	if !s.barrier.Sealed() {
		if err := s.checkOperator(r); err != nil {
			return err
		}
		// Sealing protects: it goes ahead even if its record fails (logged).
		_ = s.auditOperator(r, "SysSeal", http.StatusOK)
		s.anchorGeneration(r.Context())
		s.manager.Seal()
		s.dropIdentity()
		s.log.Warn("coffer sealed by operator")
	}
	return s.sealStatus(w, r)
}

// verifyStoreBody is the answer of POST /v1/sys/verify-store.
type verifyStoreBody struct {
	Generation uint64 `json:"generation"`
	Intact     bool   `json:"intact"`
	Problem    string `json:"problem,omitempty"`
}

// verifyStore checks every record and the store hash against the store state, in one
// read-only snapshot (writes go on during the scan). A damaged store is the answer, not an error of the request: 200 with
// "intact": false and what is wrong.
func (s *Server) verifyStore(w http.ResponseWriter, r *http.Request) error {
	gen, err := s.barrier.Verify(r.Context())
	body := verifyStoreBody{Generation: gen, Intact: err == nil}
	switch {
	case errors.Is(err, barrier.ErrIntegrity):
		body.Problem = err.Error()
		s.log.Error("store verification failed", "err", err)
	case err != nil:
		_ = s.auditOperator(r, "SysVerifyStore", http.StatusServiceUnavailable) // logged if it fails
		return err
	default:
		s.log.Info("store verified", "generation", gen)
	}
	if err := s.auditOperator(r, "SysVerifyStore", http.StatusOK); err != nil {
		return api.Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "the audit log cannot be written, so the result is withheld; check the audit log's disk and output")
	}
	api.WriteJSON(w, http.StatusOK, body)
	return nil
}

func (s *Server) rotate(w http.ResponseWriter, r *http.Request) error {
	term, err := s.manager.Rotate(r.Context())
	if err != nil {
		_ = s.auditOperator(r, "SysRotate", http.StatusInternalServerError) // logged if it fails
		return err
	}
	s.log.Info("keyring rotated", "term", term)
	if err := s.auditOperator(r, "SysRotate", http.StatusOK); err != nil {
		// As the data plane does for a write it cannot audit (SECURITY-NOTES L1): the
		// answer is withheld, though the rotation took effect.
		return api.Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "the audit log cannot be written, so the result is withheld; the keyring was rotated (coffer operator status shows its term); check the audit log's disk and output")
	}
	api.WriteJSON(w, http.StatusOK, map[string]uint32{"term": term})
	return nil
}
