package server

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// tokenPost posts a raw form body to the token endpoint of tenant.
func tokenPost(t *testing.T, ts *testServer, hc *http.Client, tenant, body string) (int, map[string]any) {
	t.Helper()
	resp, err := hc.Post(ts.resources().Base()+"/"+tenant+"/oauth2/v2.0/token", "application/x-www-form-urlencoded", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

func TestTokenEndpointBadInput(t *testing.T) {
	ts := startDev(t)
	hc := loopbackClient(t, ts.caFile)
	c := ts.Dev.Credentials
	scope := url.QueryEscape(ts.resources().Base() + "/.default")
	good := "grant_type=client_credentials&client_id=" + c.ClientID + "&client_secret=" + url.QueryEscape(c.ClientSecret) + "&scope=" + scope
	if status, out := tokenPost(t, ts, hc, c.TenantID, good); status != 200 || out["token_type"] != "Bearer" {
		t.Fatalf("good request = %d %v", status, out)
	}
	for _, tc := range []struct {
		name, tenant, body string
		status             int
		code               string
	}{
		{"fail/wrong-secret", c.TenantID, strings.Replace(good, "client_secret=", "client_secret=x", 1), 401, "invalid_client"},
		{"fail/unknown-client", c.TenantID, strings.Replace(good, c.ClientID, "00000000-0000-4000-8000-000000000001", 1), 401, "invalid_client"},
		{"fail/grant-type", c.TenantID, strings.Replace(good, "client_credentials", "password", 1), 400, "unsupported_grant_type"},
		{"fail/duplicate-secret", c.TenantID, good + "&client_secret=other", 400, "invalid_request"},
		{"fail/two-scopes", c.TenantID, good + "%20" + scope, 400, "invalid_scope"},
		{"fail/foreign-scope", c.TenantID, strings.Replace(good, scope, url.QueryEscape("https://vault.azure.net/.default"), 1), 400, "invalid_scope"},
		{"fail/unknown-tenant", "00000000-0000-4000-8000-000000000002", good, 400, "invalid_request"},
		{"fail/tenant-not-uuid", "common", good, 400, "invalid_request"},
		{"fail/no-credential", c.TenantID, "grant_type=client_credentials&client_id=" + c.ClientID + "&scope=" + scope, 401, "invalid_client"},
		{"fail/huge-body", c.TenantID, good + "&x=" + strings.Repeat("a", 70<<10), 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := tokenPost(t, ts, hc, tc.tenant, tc.body)
			if status != tc.status || out["error"] != tc.code || out["access_token"] != nil {
				t.Errorf("token = %d %v; want %d %s and no token", status, out, tc.status, tc.code)
			}
		})
	}
}

// TestClientAssertionIsSingleUse: a certificate assertion (RFC 7523) gets one token; replaying
// the same assertion is refused (SECURITY-NOTES A14).
func TestClientAssertionIsSingleUse(t *testing.T) {
	ts := startDev(t)
	ctx := context.Background()
	c := ts.Dev.Credentials
	certs, key := selfSignedClientCert(t)
	if _, err := ts.tenants.AddCertificate(ctx, c.TenantID, c.ObjectID, certs[0].Raw); err != nil {
		t.Fatal(err)
	}
	endpoint := ts.resources().Base() + "/" + c.TenantID + "/oauth2/v2.0/token"
	thumb := sha256.Sum256(certs[0].Raw)
	enc := base64.RawURLEncoding.EncodeToString
	header, _ := json.Marshal(map[string]string{"alg": "PS256", "typ": "JWT", "x5t#S256": base64.StdEncoding.EncodeToString(thumb[:])})
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{"aud": endpoint, "iss": c.ClientID, "sub": c.ClientID, "jti": "once-only", "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()})
	input := enc(header) + "." + enc(claims)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPSS(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	if err != nil {
		t.Fatal(err)
	}
	assertion := input + "." + enc(sig)
	body := "grant_type=client_credentials&client_id=" + c.ClientID + "&client_assertion_type=" + url.QueryEscape("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") +
		"&client_assertion=" + assertion + "&scope=" + url.QueryEscape(ts.resources().Base()+"/.default")
	hc := loopbackClient(t, ts.caFile)
	if status, out := tokenPost(t, ts, hc, c.TenantID, body); status != 200 {
		t.Fatalf("first use of the assertion = %d %v", status, out)
	}
	if status, out := tokenPost(t, ts, hc, c.TenantID, body); status != 401 || out["error"] != "invalid_client" {
		t.Errorf("replayed assertion = %d %v; want 401 invalid_client", status, out)
	}
	tampered := strings.Replace(body, "client_assertion="+assertion[:10], "client_assertion="+assertion[:9]+"X", 1)
	if status, _ := tokenPost(t, ts, hc, c.TenantID, tampered); status != 401 {
		t.Errorf("tampered assertion = %d; want 401", status)
	}
}

// TestTokenEndpointThrottlesGuessing: after 20 wrong secrets for one client, that client gets
// 429 with Retry-After (even with the right secret) while another client still signs in.
func TestTokenEndpointThrottlesGuessing(t *testing.T) {
	ts := startDev(t)
	hc := loopbackClient(t, ts.caFile)
	c := ts.Dev.Credentials
	other, otherSecret, err := ts.tenants.CreateServicePrincipal(context.Background(), c.TenantID, "other")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if status, _ := rawToken(t, ts, hc, c.TenantID, c.ClientID, "wrong-secret", ts.resources().Base()); status != 401 {
			t.Fatalf("wrong secret %d = %d; want 401", i, status)
		}
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}, "scope": {ts.resources().Base() + "/.default"}}
	resp, err := hc.PostForm(ts.resources().Base()+"/"+c.TenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("after 20 failures, the right secret = %d (Retry-After %q); want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if status, _ := rawToken(t, ts, hc, c.TenantID, other.AppID, otherSecret, ts.resources().Base()); status != 200 {
		t.Errorf("another client from the same address = %d; want 200", status)
	}
}

// TestOddPathsAreAudited: a request whose path is over 1 KiB or not UTF-8 is refused with a
// 4xx and still leaves its audit record; before, the record was refused (the field was too
// long or not UTF-8), which made the discovery endpoints answer 503 and let such data-plane
// and token requests go unrecorded.
func TestOddPathsAreAudited(t *testing.T) {
	ts := startDev(t)
	hc := loopbackClient(t, ts.caFile)
	c := ts.Dev.Credentials
	base := ts.resources().Base()
	_, tok := rawToken(t, ts, hc, c.TenantID, c.ClientID, c.ClientSecret, base)
	long := strings.Repeat("t", 2000)
	for _, u := range []string{
		base + "/" + long + "/v2.0/.well-known/openid-configuration", base + "/%C0%AF/discovery/v2.0/keys",
		strings.TrimSuffix(c.VaultURL, "/") + "/keys/%C0%AF?api-version=7.6", strings.TrimSuffix(c.VaultURL, "/") + "/keys/" + long + "?api-version=7.6",
	} {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode > 499 {
			t.Errorf("GET %.80s… = %d; want a 4xx", u, resp.StatusCode)
		}
	}
	if status, _ := tokenPost(t, ts, hc, "%C0%AF", "grant_type=client_credentials"); status != 400 {
		t.Errorf("token request for tenant %%C0%%AF = %d; want 400", status)
	}
	if l := ts.logs.String(); strings.Contains(l, "audit write failed") || strings.Contains(l, "audit record could not be written") {
		t.Errorf("a record was refused:\n%s", grepLines(l, "audit"))
	}
}
