package mgmt

import (
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strconv"
	"time"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/audit"
)

// MaxAuditLimit is the most records one audit query returns; page with since.
const MaxAuditLimit = audit.DefaultQueryLimit

// queryAudit returns the tenant's own event records (audit.Query with the tenant as filter:
// never another tenant's, never checkpoints). Parameters: since and until (RFC 3339; since
// inclusive, until exclusive), operation (exact), limit (1-1000, default 1000).
func (s *Service) queryAudit(w http.ResponseWriter, r *http.Request, c *Call) error {
	if err := checkQuery(r, "since", "until", "operation", "limit"); err != nil {
		return err
	}
	q := r.URL.Query()
	f := audit.Filter{Tenant: c.TenantID, Limit: MaxAuditLimit}
	var err error
	if f.Since, err = parseTime("since", q.Get("since")); err != nil {
		return err
	}
	if f.Until, err = parseTime("until", q.Get("until")); err != nil {
		return err
	}
	if op := q.Get("operation"); op != "" {
		if len(op) > 64 || !isWord(op) {
			return badParameter("operation must be an operation name such as VaultCreate or GetRandomBytes")
		}
		f.Operation = op
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxAuditLimit {
			return badParameter("limit must be a whole number from 1 to " + strconv.Itoa(MaxAuditLimit))
		}
		f.Limit = n
	}
	rc, err := s.cfg.Audit.Open(r.Context(), f.Since, f.Until)
	if err != nil {
		return err
	}
	defer rc.Close()
	recs, err := audit.Query(rc, f)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, list(recs))
	return nil
}

func parseTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, badParameter(name + " must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
	}
	return t, nil
}

func isWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// AuditKey answers GET /v1/audit/public-key.
type AuditKey struct {
	// PublicKey is the checkpoint verification key, PEM "PUBLIC KEY" (PKIX).
	PublicKey string `json:"publicKey"`
	// Head is the log's head when the key was read: pass "seq:hash" to `coffer audit verify
	// --expect-head` later to detect truncation.
	Head audit.Head `json:"head"`
}

func (s *Service) auditPublicKey(w http.ResponseWriter, r *http.Request, c *Call) error {
	pub, head, err := s.cfg.Audit.PublicKey(r.Context())
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, AuditKey{PublicKey: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), Head: head})
	return nil
}
