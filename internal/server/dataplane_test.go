package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/coffer-kms/coffer/internal/authz"
)

// rawToken gets a token from the built-in identity provider with a plain form post.
func rawToken(t *testing.T, ts *testServer, hc *http.Client, tenant, clientID, secret, resource string) (int, string) {
	t.Helper()
	return postToken(t, hc, ts.resources().Base(), tenant, clientID, secret, resource)
}

// tokenFor gets a token for resource (the authority base itself) or fails.
func tokenFor(t testing.TB, hc *http.Client, base, tenant, clientID, secret string) string {
	t.Helper()
	status, tok := postToken(t, hc, base, tenant, clientID, secret, base)
	if status != 200 {
		t.Fatalf("token = %d", status)
	}
	return tok
}

func postToken(t testing.TB, hc *http.Client, base, tenant, clientID, secret, resource string) (int, string) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "scope": {resource + "/.default"}}
	resp, err := hc.PostForm(base+"/"+tenant+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	tok, _ := body["access_token"].(string)
	return resp.StatusCode, tok
}

// rng calls POST /rng on host with an optional bearer token and returns status, headers, body.
func rng(t *testing.T, hc *http.Client, host, port, bearer string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", "https://"+host+":"+port+"/rng?api-version=7.5", strings.NewReader(`{"count":4}`))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestDataPlaneAuthentication(t *testing.T) {
	ts := startDev(t)
	ctx := context.Background()
	c := ts.Dev.Credentials
	hc := loopbackClient(t, ts.caFile)
	res := ts.resources()
	hsmResource := "https://managedhsm.localhost:" + res.port

	// Tenant B with its own pool and a principal of it that may use the pool.
	tb, pb, secretB := tenantWithPool(t, ts, "bhsm")
	// A principal of the dev tenant with no role at all.
	nobody, secretN, _ := ts.tenants.CreateServicePrincipal(ctx, c.TenantID, "no-roles")

	status, tokA := rawToken(t, ts, hc, c.TenantID, c.ClientID, c.ClientSecret, hsmResource)
	if status != 200 || tokA == "" {
		t.Fatalf("token for the dev principal = %d", status)
	}
	_, tokB := rawToken(t, ts, hc, tb.ID, pb.AppID, secretB, hsmResource)
	_, tokN := rawToken(t, ts, hc, c.TenantID, nobody.AppID, secretN, hsmResource)
	_, tokVault := rawToken(t, ts, hc, c.TenantID, c.ClientID, c.ClientSecret, res.Base())
	if status, _ := rawToken(t, ts, hc, tb.ID, c.ClientID, c.ClientSecret, hsmResource); status != 401 {
		t.Errorf("dev principal asking tenant B for a token = %d; want 401", status)
	}
	if status, _ := rawToken(t, ts, hc, c.TenantID, c.ClientID, c.ClientSecret, "https://vault.azure.net"); status != 400 {
		t.Errorf("token for a foreign resource = %d; want 400 invalid_scope", status)
	}

	wantChallenge := `Bearer authorization="` + res.Base() + "/" + c.TenantID + `", resource="` + hsmResource + `"`
	status, h, body := rng(t, hc, "devhsm.managedhsm.localhost", res.port, "")
	if status != 401 || h.Get("WWW-Authenticate") != wantChallenge || !strings.Contains(body, "AKV10000") {
		t.Fatalf("no token: %d %q %s; want 401 with %q", status, h.Get("WWW-Authenticate"), body, wantChallenge)
	}

	// Tenant B's token against tenant A's pool is answered exactly as for a pool that does
	// not exist (both 401 with the same body shape and a challenge).
	statusB, hB, bodyB := rng(t, hc, "devhsm.managedhsm.localhost", res.port, tokB)
	statusX, hX, bodyX := rng(t, hc, "nosuch.managedhsm.localhost", res.port, tokB)
	if statusB != 401 || statusX != 401 || bodyB != bodyX || hB.Get("WWW-Authenticate") == "" || hX.Get("WWW-Authenticate") == "" {
		t.Errorf("cross-tenant = %d %s; nonexistent = %d %s; want identical 401s", statusB, bodyB, statusX, bodyX)
	}
	if status, _, _ := rng(t, hc, "bhsm.managedhsm.localhost", res.port, tokB); status != 200 {
		t.Errorf("tenant B on its own pool = %d; want 200", status)
	}

	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"ok/dev-principal", tokA, 200},
		{"fail/vault-audience-on-pool", tokVault, 401},
		{"fail/no-role", tokN, 403},
		{"fail/alg-none", forgeNone(t, tokA), 401},
		{"fail/tampered", tamper(t, tokA), 401},
		{"fail/truncated", tokA[:len(tokA)-10], 401},
		{"fail/huge", strings.Repeat("a", 60000), 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := rng(t, hc, "devhsm.managedhsm.localhost", res.port, tc.token)
			if status != tc.want {
				t.Fatalf("rng = %d %s; want %d", status, body, tc.want)
			}
			if tc.want == 403 && (!strings.Contains(body, "ForbiddenByRbac") || !strings.Contains(body, string(authz.HSMRNG))) {
				t.Errorf("403 body %s does not name ForbiddenByRbac and the action", body)
			}
		})
	}

	// The audit log recorded the requests and never a token or secret.
	ts.dropIdentity() // flush and close the log
	log, err := os.ReadFile(filepath.Join(ts.cfg.DataDir, AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{c.ClientSecret, secretB, secretN, tokA, tokB} {
		if bytes.Contains(log, []byte(secret)) {
			t.Fatal("the audit log contains a secret or token")
		}
	}
	for _, want := range []string{`"op":"GetRandomBytes"`, `"result":"denied"`, `"result":"unauthenticated"`, `"op":"TokenIssue"`} {
		if !bytes.Contains(log, []byte(want)) {
			t.Errorf("audit log lacks %s", want)
		}
	}
}

func forgeNone(t *testing.T, tok string) string {
	parts := strings.Split(tok, ".")
	return "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + "."
}

func tamper(t *testing.T, tok string) string {
	parts := strings.Split(tok, ".")
	b := []byte(parts[1])
	if b[10] == 'A' {
		b[10] = 'B'
	} else {
		b[10] = 'A'
	}
	return parts[0] + "." + string(b) + "." + parts[2]
}

func TestClientCertificateCredential(t *testing.T) {
	ts := startDev(t)
	ctx := context.Background()
	c := ts.Dev.Credentials
	certs, key := selfSignedClientCert(t)
	if _, err := ts.tenants.AddCertificate(ctx, c.TenantID, c.ObjectID, certs[0].Raw); err != nil {
		t.Fatal(err)
	}
	hc := loopbackClient(t, ts.caFile)
	cred, err := azidentity.NewClientCertificateCredential(c.TenantID, c.ClientID, certs, key, &azidentity.ClientCertificateCredentialOptions{
		ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: c.AuthorityHost}, Transport: hc},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	client, _ := azkeys.NewClient(c.ManagedHSMURL, cred, &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: hc}})
	if _, err := client.GetRandomBytes(ctx, azkeys.GetRandomBytesParameters{Count: to.Ptr(int32(16))}, nil); err != nil {
		t.Fatalf("GetRandomBytes with a certificate credential = %v", err)
	}
	// A certificate that is not registered gets no token.
	other, otherKey := selfSignedClientCert(t)
	cred2, _ := azidentity.NewClientCertificateCredential(c.TenantID, c.ClientID, other, otherKey, &azidentity.ClientCertificateCredentialOptions{
		ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: c.AuthorityHost}, Transport: hc},
		DisableInstanceDiscovery: true,
	})
	_, err = cred2.GetToken(ctx, policyFor(ts.resources().Base()))
	var authErr *azidentity.AuthenticationFailedError
	if !errors.As(err, &authErr) {
		t.Errorf("GetToken with an unregistered certificate = %v; want AuthenticationFailedError", err)
	}
}

func TestSNIHostMismatchIs421(t *testing.T) {
	ts := startDev(t)
	hc := loopbackClient(t, ts.caFile)
	port := ts.resources().port
	// Connect with SNI devhsm.managedhsm.localhost but address dev.localhost in Host.
	req, _ := http.NewRequest("POST", "https://devhsm.managedhsm.localhost:"+port+"/rng?api-version=7.6", strings.NewReader(`{"count":1}`))
	req.Host = "dev.localhost:" + port
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("SNI/Host mismatch = %d; want 421", resp.StatusCode)
	}
	// Same host in both: the normal 401 challenge.
	status, _, _ := rng(t, hc, "devhsm.managedhsm.localhost", port, "")
	if status != 401 {
		t.Errorf("matching SNI and Host = %d; want 401", status)
	}
}
