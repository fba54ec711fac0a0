package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// brokenStdout is the server's standard output for the --audit-stdout sink: while broken,
// every write fails as a write to a pipe whose reader has gone does.
type brokenStdout struct {
	lockedWriter
	broken atomic.Bool
}

func (w *brokenStdout) Write(p []byte) (int, error) {
	if w.broken.Load() {
		return 0, &os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.EPIPE}
	}
	return w.lockedWriter.Write(p)
}

// sinkProbe sends one request of each kind a client can make — a token, a data-plane read
// and writes on a vault and a pool, the management API, the unauthenticated probes — to a
// server whose audit sink works or fails (SECURITY-NOTES L1).
type sinkProbe struct {
	t      *testing.T
	ts     *testServer
	hc     *http.Client
	tok    string // a vault token issued before the sink failed
	hsmTok string // a pool token issued before the sink failed
	value  string // the value of secret "probe", which must not leave while the sink fails
	n      int
	// before, if set, runs before each request of refusedAll (to keep a disk full).
	before func()
	// records, if set, counts the records of the audit log: a request refusedAll sees
	// served is then accepted if its record was written (a full disk can still take a
	// small record into the last page of the file).
	records func() int
	audited int // requests refusedAll saw served with their record written
}

func newSinkProbe(t *testing.T, ts *testServer) *sinkProbe {
	t.Helper()
	c := ts.Dev.Credentials
	hc := loopbackClient(t, ts.caFile)
	p := &sinkProbe{t: t, ts: ts, hc: hc, value: canaryValue(t, "probe")}
	p.tok = tokenFor(t, hc, ts.resources().Base(), c.TenantID, c.ClientID, c.ClientSecret)
	_, p.hsmTok = rawToken(t, ts, hc, c.TenantID, c.ClientID, c.ClientSecret, "https://managedhsm.localhost:"+ts.resources().port)
	if status, raw := p.kv("PUT", "secrets/probe", `{"value":"`+p.value+`"}`); status != 200 {
		t.Fatalf("set secret probe = %d %s", status, raw)
	}
	return p
}

func (p *sinkProbe) kv(method, path, body string) (int, []byte) {
	p.t.Helper()
	return kvCall(p.t, p.hc, p.tok, method, p.ts.Dev.Credentials.VaultURL+path+kvVersion, body)
}

func (p *sinkProbe) get(url, bearer string) (int, []byte) {
	p.t.Helper()
	return kvCall(p.t, p.hc, bearer, "GET", url, "")
}

// requests are the probe's requests by name; each returns its status and body.
func (p *sinkProbe) requests() map[string]func() (int, []byte) {
	c, base := p.ts.Dev.Credentials, p.ts.URL()
	p.n++
	name := "probe-" + strconv.Itoa(p.n)
	return map[string]func() (int, []byte){
		"token": func() (int, []byte) {
			status, tok := rawToken(p.t, p.ts, p.hc, c.TenantID, c.ClientID, c.ClientSecret, p.ts.resources().Base())
			return status, []byte(tok)
		},
		"secret-get":  func() (int, []byte) { return p.kv("GET", "secrets/probe", "") },
		"secret-set":  func() (int, []byte) { return p.kv("PUT", "secrets/"+name, `{"value":"v"}`) },
		"key-create":  func() (int, []byte) { return p.kv("POST", "keys/"+name+"/create", `{"kty":"EC","crv":"P-256"}`) },
		"secret-list": func() (int, []byte) { return p.kv("GET", "secrets", "") },
		"pool-rng": func() (int, []byte) {
			status, _, body := rng(p.t, p.hc, "devhsm.managedhsm.localhost", p.ts.resources().port, p.hsmTok)
			return status, []byte(body)
		},
		"sys-rotate": func() (int, []byte) { return p.ts.mcall(p.t, "POST", "/v1/sys/rotate", p.ts.Dev.Token, nil) },
		"sys-purge-clock-confirm": func() (int, []byte) {
			return p.ts.mcall(p.t, "POST", "/v1/sys/purge-clock/confirm", p.ts.Dev.Token, nil)
		},
		"mgmt-tenants":  func() (int, []byte) { return p.get(base+"/v1/tenants", p.ts.Dev.Token) },
		"audit-pubkey":  func() (int, []byte) { return p.get(base+"/v1/audit/public-key", p.ts.Dev.Token) },
		"openid-config": func() (int, []byte) { return p.get(base+"/"+c.TenantID+"/v2.0/.well-known/openid-configuration", "") },
		"metrics":       func() (int, []byte) { return p.get(base+"/metrics", "") },
		"healthz":       func() (int, []byte) { return p.get(base+"/healthz", "") },
	}
}

// refusedAll sends every request while the sink fails and checks each fails closed: no 2xx,
// no token, no secret value, and a 5xx in Key Vault's error shape (OAuth's on the token
// endpoint) — unless p.records shows the request's record was written after all. It
// returns how many requests it sent and how many failed closed.
func (p *sinkProbe) refusedAll(what string) (sent, closed int) {
	p.t.Helper()
	for name, do := range p.requests() {
		sent++
		if p.before != nil {
			p.before()
		}
		had := -1
		if p.records != nil {
			had = p.records()
		}
		status, raw := do()
		ok := false
		switch {
		case status/100 == 2 && had >= 0 && p.records() > had:
			p.audited++
		case status/100 == 2:
			p.t.Errorf("%s: %s = %d %.200s; want it refused (no unaudited request)", what, name, status, raw)
		case strings.Contains(string(raw), p.value) || strings.Contains(string(raw), "access_token"):
			p.t.Errorf("%s: %s = %d and its body holds a secret or a token", what, name, status)
		case status < 500:
			p.t.Errorf("%s: %s = %d %.200s; want a 5xx: the server failed, not the client", what, name, status, raw)
		case name == "token":
			ok = true
		default:
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(raw, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				p.t.Errorf("%s: %s = %d %.200s; want Key Vault's error shape", what, name, status, raw)
				break
			}
			ok = true
		}
		if ok {
			closed++
		}
	}
	return sent, closed
}

// servedAll checks every request succeeds: the sink works (again).
func (p *sinkProbe) servedAll(what string) {
	p.t.Helper()
	for name, do := range p.requests() {
		if status, raw := do(); status/100 != 2 {
			p.t.Errorf("%s: %s = %d %.300s; want success", what, name, status, raw)
		}
	}
}

// auditFailures reads coffer_audit_failures_total{sink} from /metrics.
func (p *sinkProbe) auditFailures(sink string) int {
	p.t.Helper()
	status, raw := p.get(p.ts.URL()+"/metrics", "")
	if status != 200 {
		p.t.Fatalf("GET /metrics = %d", status)
	}
	m := regexp.MustCompile(`(?m)^coffer_audit_failures_total\{sink="` + sink + `"\} (\d+)$`).FindSubmatch(raw)
	if m == nil {
		p.t.Errorf("/metrics has no coffer_audit_failures_total{sink=%q}", sink)
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestAuditStdoutSinkFailureFailsClosed: with --audit-stdout, a standard output that fails
// like a closed pipe (EPIPE) must fail every request closed — no token, no secret value,
// no write acknowledged — count the failures in coffer_audit_failures_total{sink="stdout"},
// and serve again, without a restart, once the output works again (SECURITY-NOTES L1).
func TestAuditStdoutSinkFailureFailsClosed(t *testing.T) {
	out := &brokenStdout{}
	cfg := loadConfig(t, "--dev", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--audit-stdout")
	ts := startWithClock(t, cfg, "", nil, func(s *Server) { s.out = out })
	p := newSinkProbe(t, ts)
	p.servedAll("before")
	out.broken.Store(true)
	n, closed := p.refusedAll("stdout closed")
	out.broken.Store(false)
	p.servedAll("after the pipe works again")
	if got := p.auditFailures("stdout"); got < n {
		t.Errorf("coffer_audit_failures_total{sink=\"stdout\"} = %d; want at least the %d refused requests", got, n)
	}
	t.Logf("stdout sink failing with EPIPE: %d/%d requests failed closed", closed, n)
}

// countRecords counts the records of an audit log file (its lines up to the zero padding).
func countRecords(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return bytes.Count(b, []byte("\n"))
}
