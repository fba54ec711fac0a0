package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// TestInstanceDiscoveryRefusesForeignAuthority: /common/discovery/instance vouches only for
// authorities on this server. For an authorization_endpoint elsewhere it answers as Entra
// does for an unknown authority (400 invalid_instance, AADSTS50049), so it never tells MSAL
// that another host is a valid authority; for its own it answers 200 naming the tenant's
// OpenID configuration.
func TestInstanceDiscoveryRefusesForeignAuthority(t *testing.T) {
	ts := startDev(t)
	hc := loopbackClient(t, ts.caFile)
	base, tid := ts.resources().Base(), ts.Dev.Credentials.TenantID
	u, _ := url.Parse(base)
	discover := func(endpoint string) (int, map[string]any) {
		t.Helper()
		resp, err := hc.Get(base + "/common/discovery/instance?api-version=1.1&authorization_endpoint=" + url.QueryEscape(endpoint))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("instance discovery for %q: body is not JSON: %v", endpoint, err)
		}
		return resp.StatusCode, body
	}
	foreign := []string{
		"https://login.microsoftonline.com/" + tid + "/oauth2/v2.0/authorize",
		"https://evil.example/" + tid + "/oauth2/v2.0/authorize",
		"http://" + u.Host + "/" + tid + "/oauth2/v2.0/authorize",                                 // not https
		"https://" + u.Hostname() + ":1/" + tid + "/oauth2/v2.0/authorize",                        // other port
		"https://" + u.Hostname() + ".evil.example:" + u.Port() + "/common/oauth2/v2.0/authorize", // suffix
		"https://" + u.Host + "@evil.example/" + tid + "/oauth2/v2.0/authorize",                   // userinfo
		"https://evil.example/" + u.Host + "/oauth2/v2.0/authorize",
		"//" + u.Host + "/" + tid + "/oauth2/v2.0/authorize",
		"not a url",
	}
	for _, ep := range foreign {
		st, body := discover(ep)
		if st != 400 || body["error"] != "invalid_instance" || !strings.Contains(body["error_description"].(string), "AADSTS50049") {
			t.Errorf("instance discovery for %q = %d %v; want 400 invalid_instance (AADSTS50049)", ep, st, body)
		}
	}
	for _, ep := range []string{base + "/" + tid + "/oauth2/v2.0/authorize", strings.ToUpper(base[:8]) + base[8:] + "/" + tid + "/oauth2/v2.0/authorize"} {
		st, body := discover(ep)
		if want := base + "/" + tid + "/v2.0/.well-known/openid-configuration"; st != 200 || body["tenant_discovery_endpoint"] != want {
			t.Errorf("instance discovery for this server's %q = %d %v; want 200 with %s", ep, st, body, want)
		}
	}
	t.Logf("%d foreign authorities refused with invalid_instance, this server's answered", len(foreign))
}

// hostRouter is an azcore transport that sends requests for one host to another, standing in
// for a network where Entra's discovery host (login.microsoftonline.com) is this server.
type hostRouter struct {
	from, to string
	hc       *http.Client
	routed   *atomic.Int32
}

func (h hostRouter) Do(req *http.Request) (*http.Response, error) {
	if req.URL.Host == h.from {
		req = req.Clone(req.Context())
		req.URL.Host, req.Host = h.to, h.to
		h.routed.Add(1)
	}
	return h.hc.Do(req)
}

// TestMSALInstanceDiscovery runs MSAL's authority validation (azidentity with instance
// discovery on) against this server: for an authority on this server MSAL asks
// login.microsoftonline.com (routed here), gets a 200 and goes on to a token; for an
// authority on another host it gets invalid_instance and stops, without requesting a token.
func TestMSALInstanceDiscovery(t *testing.T) {
	ts := startDev(t)
	c := ts.Dev.Credentials
	u, _ := url.Parse(ts.resources().Base())
	var routed atomic.Int32
	tr := hostRouter{from: "login.microsoftonline.com", to: u.Host, hc: loopbackClient(t, ts.caFile), routed: &routed}
	cred := func(authority string) azcore.TokenCredential {
		cr, err := azidentity.NewClientSecretCredential(c.TenantID, c.ClientID, c.ClientSecret, &azidentity.ClientSecretCredentialOptions{
			ClientOptions: azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: authority}, Transport: tr},
		})
		if err != nil {
			t.Fatal(err)
		}
		return cr
	}
	ctx := context.Background()
	if _, err := cred(c.AuthorityHost).GetToken(ctx, policyFor(ts.resources().Base())); err != nil {
		t.Fatalf("GetToken with instance discovery on = %v", err)
	}
	if routed.Load() == 0 {
		t.Fatalf("MSAL made no instance discovery request; the test does not test it")
	}
	_, err := cred("https://evil.localhost:"+u.Port()).GetToken(ctx, policyFor(ts.resources().Base()))
	if err == nil || !strings.Contains(err.Error(), "invalid_instance") {
		t.Errorf("GetToken with a foreign authority = %v; want MSAL's invalid_instance", err)
	}
}
