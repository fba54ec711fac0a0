package server

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestAuthFailureLimit (SECURITY-NOTES R3): a source address that sends auth-failure-limit
// refused bearer tokens within a minute is answered 429 Throttled with Retry-After before
// its tokens are checked — even a valid one — until the minute ends; requests without a
// token (the challenge flow's first request) are not counted and still get the challenge.
func TestAuthFailureLimit(t *testing.T) {
	ts := startDev(t, "--auth-failure-limit", "5")
	c := ts.Dev.Credentials
	hc := loopbackClient(t, ts.caFile)
	port := ts.resources().port
	_, good := rawToken(t, ts, hc, c.TenantID, c.ClientID, c.ClientSecret, "https://managedhsm.localhost:"+port)
	if good == "" {
		t.Fatal("no token")
	}
	get := func(bearer string) (int, http.Header, string) {
		t.Helper()
		return rng(t, hc, "devhsm.managedhsm.localhost", port, bearer)
	}
	if st, _, _ := get(good); st != 200 {
		t.Fatalf("a valid token = %d; want 200", st)
	}
	forged := good[:strings.LastIndexByte(good, '.')+1] + "AAAA" // signature replaced
	for range 10 {                                               // not counted: no token
		if st, h, _ := get(""); st != 401 || h.Get("WWW-Authenticate") == "" {
			t.Fatalf("no token = %d; want 401 with the challenge", st)
		}
	}
	for i := range 5 {
		if st, _, _ := get(forged); st != 401 {
			t.Fatalf("refused token %d = %d; want 401", i+1, st)
		}
	}
	st, h, body := get(forged)
	ra, _ := strconv.Atoi(h.Get("Retry-After"))
	if st != 429 || ra < 1 || ra > 60 || !strings.Contains(body, `"Throttled"`) {
		t.Fatalf("sixth refused token = %d, Retry-After %q, %s; want 429 Throttled, Retry-After 1–60", st, h.Get("Retry-After"), body)
	}
	if st, _, _ := get(good); st != 429 {
		t.Errorf("a valid token from the blocked address = %d; want 429 until the minute ends", st)
	}
	if st, h, _ := get(""); st != 401 || h.Get("WWW-Authenticate") == "" {
		t.Errorf("no token from the blocked address = %d; want the 401 challenge still", st)
	}
	if log := readAudit(t, ts); !strings.Contains(log, "Throttled") {
		t.Error("the throttled requests are not in the audit log")
	}
}
