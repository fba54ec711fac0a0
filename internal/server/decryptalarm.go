package server

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/audit"
)

// Decryption failure alarm (SECURITY-NOTES C1). Every failed decrypt or unwrapKey answers the
// same, so no response tells a padding-oracle attacker which way the padding was wrong; but
// the attack itself — Bleichenbacher's against RSA1_5, Manger's against RSA-OAEP, a CBC-PAD
// oracle — is thousands of ciphertexts the key does not decrypt. A key that fails that often
// in a minute raises an alarm: one audit record, a warning in the server log and a metric,
// once per key and minute, naming the key and what to do.

// alarmWindow is how long failures are counted before the count of a key starts over.
const alarmWindow = time.Minute

// maxAlarmKeys bounds the keys counted at once; when it is reached, the counts of keys whose
// window has passed are dropped, and if none has, all are (a flood of distinct keys cannot
// grow the map, at worst it delays an alarm by one window).
const maxAlarmKeys = 10000

// decryptAlarm counts failed decryptions per key in fixed windows.
type decryptAlarm struct {
	threshold int // failures per key and window that raise the alarm; 0: off
	now       func() time.Time
	raise     func(k alarmKey, n int)

	mu     sync.Mutex
	counts map[alarmKey]*alarmCount
}

// alarmKey names a key: its tenant, vault and path (/keys/<name>).
type alarmKey struct{ tenant, vault, key string }

type alarmCount struct {
	start  time.Time // when the window began
	n      int
	raised bool
}

// note counts one audited request; only failed decryptions count.
func (a *decryptAlarm) note(rec api.AuditRecord) {
	if a == nil || a.threshold <= 0 || !strings.HasSuffix(rec.Reason, api.DecryptFailedReason) {
		return
	}
	k := alarmKey{tenant: rec.Tenant, vault: rec.Vault, key: keyPath(rec.ObjectID)}
	now := a.now()
	a.mu.Lock()
	c := a.counts[k]
	if c == nil || now.Sub(c.start) >= alarmWindow || now.Before(c.start) {
		if c == nil && len(a.counts) >= maxAlarmKeys {
			a.prune(now)
		}
		c = &alarmCount{start: now}
		a.counts[k] = c
	}
	c.n++
	fire := c.n >= a.threshold && !c.raised
	c.raised = c.raised || fire
	n := c.n
	a.mu.Unlock()
	if fire {
		a.raise(k, n)
	}
}

// prune drops the counts whose window has passed, or all of them if none has; a.mu held.
func (a *decryptAlarm) prune(now time.Time) {
	for k, c := range a.counts {
		if now.Sub(c.start) >= alarmWindow {
			delete(a.counts, k)
		}
	}
	if len(a.counts) >= maxAlarmKeys {
		clear(a.counts)
	}
}

// keyPath returns /keys/<name> of a key operation's request path (/keys/<name>/…).
func keyPath(p string) string {
	parts := strings.SplitN(strings.TrimPrefix(p, "/"), "/", 3)
	if len(parts) < 2 {
		return audit.Clip(p)
	}
	return audit.Clip("/" + parts[0] + "/" + parts[1])
}

// newDecryptAlarm returns the server's alarm, which records each alarm in the audit log, the
// server log and the coffer_decrypt_failure_alarms_total metric.
func (s *Server) newDecryptAlarm(threshold int) *decryptAlarm {
	alarms := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "coffer_decrypt_failure_alarms_total",
		Help: "Keys that failed to decrypt or unwrap at least decrypt-failure-alarm ciphertexts within a minute (possible padding-oracle attacks), counted once per key and minute.",
	})
	s.metrics.registry.MustRegister(alarms)
	return &decryptAlarm{threshold: threshold, now: s.now, counts: map[alarmKey]*alarmCount{}, raise: func(k alarmKey, n int) {
		alarms.Inc()
		reason := fmt.Sprintf("%d decrypt or unwrapKey calls failed within %s: a padding-oracle attack (Bleichenbacher against RSA1_5, Manger against RSA-OAEP) sends such ciphertexts by the thousand; find the caller in the audit log, and consider --disable-rsa1_5 and rotating the key", n, alarmWindow)
		s.log.Warn("decryption failure alarm", "tenant", k.tenant, "vault", k.vault, "key", k.key, "failures", n, "window", alarmWindow.String())
		id, err := s.ident()
		if err != nil {
			return
		}
		if err := id.record(audit.Event{Operation: "KeyDecryptFailureAlarm", Tenant: k.tenant, Vault: k.vault, ObjectID: k.key, Result: audit.ResultAlarm, Reason: reason}); err != nil {
			s.log.Error("audit write failed for a decryption failure alarm", "err", err)
		}
	}}
}
