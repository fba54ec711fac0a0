package server

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/audit"
)

// sealedRefusals counts the data-plane requests refused while the server was sealed. The
// audit log cannot be open then (its keys are sealed by the barrier), so each refusal cannot
// have its own record; instead the next unseal appends one record that says how many were
// refused, when, and for which operations (SECURITY-NOTES D7, issue 3: every request leaves
// a trace). The count lives in memory: a restart while sealed loses it (the server log still
// has each refusal at info level).
type sealedRefusals struct {
	mu          sync.Mutex
	n           int
	first, last time.Time
	ops         map[string]int
}

// maxSealedOps bounds the operations named in the summary.
const maxSealedOps = 8

// note counts one refused request.
func (c *sealedRefusals) note(rec api.AuditRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		c.first, c.ops = rec.Time, map[string]int{}
	}
	c.n++
	c.last = rec.Time
	if _, ok := c.ops[rec.Operation]; ok || len(c.ops) < maxSealedOps {
		c.ops[rec.Operation]++
	} else {
		c.ops["other"]++
	}
}

// take returns the summary event of the refusals counted so far, and resets the count; ok is
// false if there were none.
func (c *sealedRefusals) take() (audit.Event, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		return audit.Event{}, false
	}
	reason := fmt.Sprintf("%d requests refused while sealed, %s to %s:", c.n,
		c.first.UTC().Format(time.RFC3339), c.last.UTC().Format(time.RFC3339))
	for _, op := range slices.Sorted(maps.Keys(c.ops)) {
		reason += fmt.Sprintf(" %s=%d", op, c.ops[op])
	}
	if len(reason) > audit.MaxReasonLen {
		reason = reason[:audit.MaxReasonLen-3] + "..."
	}
	c.n, c.ops = 0, nil
	return audit.Event{
		Operation: "SealedRequestsRefused", Status: http.StatusServiceUnavailable,
		Result: audit.ResultError, Reason: reason,
	}, true
}
