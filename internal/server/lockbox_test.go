package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
)

// mgmtCall sends a management request with a bearer credential and decodes the JSON answer.
func mgmtCall(t *testing.T, ts *testServer, hc *http.Client, method, path, bearer string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, ts.resources().Base()+path, r)
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestLockboxOverHTTP: the operator asks, the tenant administrator approves, the operator's
// grant works for exactly its scope and duration, and revocation ends it early.
func TestLockboxOverHTTP(t *testing.T) {
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	cfg := loadConfig(t, "--dev", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	ts := startWithClock(t, cfg, "", clock)
	ts.caFile = ts.Dev.CAFile
	ts.client = clientFor(t, ts.caFile, nil)
	ctx := context.Background()
	c := ts.Dev.Credentials
	hc := loopbackClient(t, ts.caFile)
	res := ts.resources()
	operator := ts.Dev.Token
	_, adminTok := rawToken(t, ts, hc, c.TenantID, c.ClientID, c.ClientSecret, res.Base())
	base := "/v1/tenants/" + c.TenantID + "/accessRequests"

	// A key to use, made by the tenant.
	owner := keysClient(t, ts)
	if _, err := owner.CreateKey(ctx, "payments", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC)}, nil); err != nil {
		t.Fatal(err)
	}
	request := func() string {
		t.Helper()
		status, ar := mgmtCall(t, ts, hc, "POST", base, operator, map[string]string{
			"scope": "/tenants/" + c.TenantID + "/vaults/dev/keys/payments", "roleDefinitionId": mustRole("Key Vault Crypto User"),
			"duration": "30m", "justification": "incident INC-42: verify signatures",
		})
		if status != 201 || ar["state"] != "Pending" {
			t.Fatalf("access request = %d %v", status, ar)
		}
		return ar["id"].(string)
	}
	signAs := func(clientID, secret string) int {
		t.Helper()
		_, tok := rawToken(t, ts, hc, c.TenantID, clientID, secret, res.Base())
		d := sha256.Sum256([]byte("x"))
		body, _ := json.Marshal(map[string]string{"alg": "ES256", "value": b64(d[:])})
		req, _ := http.NewRequest("POST", c.VaultURL+"keys/payments/sign?api-version=7.6", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	id := request()
	// The operator cannot approve its own request, nor claim before approval.
	if status, _ := mgmtCall(t, ts, hc, "POST", base+"/"+id+"/approve", operator, nil); status != 403 {
		t.Errorf("operator approving = %d; want 403", status)
	}
	if status, _ := mgmtCall(t, ts, hc, "POST", base+"/"+id+"/credential", operator, nil); status != 409 {
		t.Errorf("claim before approval = %d; want 409", status)
	}
	if status, ar := mgmtCall(t, ts, hc, "POST", base+"/"+id+"/approve", adminTok, nil); status != 200 || ar["state"] != "Approved" {
		t.Fatalf("approve = %d %v", status, ar)
	}
	status, cred := mgmtCall(t, ts, hc, "POST", base+"/"+id+"/credential", operator, nil)
	if status != 200 || cred["clientSecret"] == "" {
		t.Fatalf("claim = %d %v", status, cred)
	}
	if status, _ := mgmtCall(t, ts, hc, "POST", base+"/"+id+"/credential", operator, nil); status != 409 {
		t.Errorf("second claim = %d; want 409 (shown once)", status)
	}
	clientID, secret := cred["clientId"].(string), cred["clientSecret"].(string)
	if got := signAs(clientID, secret); got != 200 {
		t.Fatalf("operator's approved grant: sign = %d; want 200", got)
	}
	offset.Store(int64(31 * time.Minute))
	ts.idh.tokens.reset()
	if got := signAs(clientID, secret); got != 403 {
		t.Errorf("after the grant's 30 minutes: sign = %d; want 403", got)
	}
	offset.Store(0)

	// Revoke ends a grant early; deny never grants.
	id2 := request()
	mgmtCall(t, ts, hc, "POST", base+"/"+id2+"/approve", adminTok, nil)
	_, cred2 := mgmtCall(t, ts, hc, "POST", base+"/"+id2+"/credential", operator, nil)
	if got := signAs(cred2["clientId"].(string), cred2["clientSecret"].(string)); got != 200 {
		t.Fatalf("second grant: sign = %d", got)
	}
	if status, ar := mgmtCall(t, ts, hc, "POST", base+"/"+id2+"/revoke", adminTok, nil); status != 200 || ar["state"] != "Revoked" {
		t.Fatalf("revoke = %d %v", status, ar)
	}
	ts.idh.tokens.reset()
	if status, _ := rawToken(t, ts, hc, c.TenantID, cred2["clientId"].(string), cred2["clientSecret"].(string), res.Base()); status != 401 {
		t.Errorf("token for a revoked guest = %d; want 401", status)
	}
	id3 := request()
	if status, ar := mgmtCall(t, ts, hc, "POST", base+"/"+id3+"/deny", adminTok, nil); status != 200 || ar["state"] != "Denied" {
		t.Fatalf("deny = %d %v", status, ar)
	}
	// Every step is in the audit log.
	ts.dropIdentity()
	log := readAudit(t, ts)
	for _, op := range []string{"AccessRequestCreate", "AccessRequestApprove", "AccessRequestCredentialClaim", "AccessRequestRevoke", "AccessRequestDeny"} {
		if !strings.Contains(log, `"op":"`+op+`"`) {
			t.Errorf("audit log lacks %s", op)
		}
	}
	if strings.Contains(log, secret) {
		t.Error("the audit log contains the granted secret")
	}
}
