package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/identity/token"
	"github.com/coffer-kms/coffer/internal/storage/mem"
)

// oidcIssuer is an external OpenID Connect issuer on loopback (real TLS), signing with its
// own ES256 key.
type oidcIssuer struct {
	srv    *httptest.Server
	signer *token.Signer
}

func newOIDCIssuer(t *testing.T) *oidcIssuer {
	t.Helper()
	o := &oidcIssuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": o.srv.URL, "jwks_uri": o.srv.URL + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		b, _ := o.signer.JWKS()
		w.Write(b)
	})
	o.srv = httptest.NewTLSServer(mux)
	t.Cleanup(o.srv.Close)
	var err error
	if o.signer, err = token.NewSigner(mem.New(), "k", time.Now, time.Hour); err != nil {
		t.Fatal(err)
	}
	return o
}

func (o *oidcIssuer) token(t *testing.T, iss, aud, oid string) string {
	t.Helper()
	now := time.Now()
	tok, err := o.signer.Sign(token.Claims{Issuer: iss, Audience: []string{aud}, ObjectID: oid, Subject: oid, IssuedAt: now.Unix(), NotBefore: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestExternalIssuer(t *testing.T) {
	ts := startDev(t)
	ctx := context.Background()
	idp := newOIDCIssuer(t)
	other := newOIDCIssuer(t)
	ts.ExternalHTTPClient = idp.srv.Client()
	tenant := ts.Dev.Credentials.TenantID
	// The tenant administrator trusts the issuer and registers Alice through the management API.
	hc := loopbackClient(t, ts.caFile)
	_, adminTok := rawToken(t, ts, hc, tenant, ts.Dev.Credentials.ClientID, ts.Dev.Credentials.ClientSecret, ts.resources().Base())
	status, is := mgmtCall(t, ts, hc, "POST", "/v1/tenants/"+tenant+"/issuers", adminTok, map[string]string{"issuer": idp.srv.URL, "audience": "api://coffer"})
	if status != 201 {
		t.Fatalf("create issuer = %d %v", status, is)
	}
	if status, bad := mgmtCall(t, ts, hc, "POST", "/v1/tenants/"+tenant+"/issuers", adminTok, map[string]string{"issuer": "http://plain.example", "audience": "x"}); status != 400 {
		t.Errorf("http issuer = %d %v; want 400", status, bad)
	}
	status, alice := mgmtCall(t, ts, hc, "POST", "/v1/tenants/"+tenant+"/issuers/"+is["id"].(string)+"/users", adminTok, map[string]string{"subject": "alice-oid", "displayName": "Alice"})
	if status != 201 {
		t.Fatalf("register user = %d %v", status, alice)
	}
	if _, err := ts.tenants.CreateRoleAssignment(ctx, authz.Assignment{PrincipalID: alice["objectId"].(string), TenantID: tenant, RoleDefinitionID: mustRole("Managed HSM Crypto User"), Scope: "/tenants/" + tenant + "/managedHsms/devhsm"}); err != nil {
		t.Fatal(err)
	}
	port := ts.resources().port
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"ok/registered-user", idp.token(t, idp.srv.URL, "api://coffer", "alice-oid"), 200},
		{"fail/unregistered-user", idp.token(t, idp.srv.URL, "api://coffer", "mallory-oid"), 403},
		{"fail/wrong-audience", idp.token(t, idp.srv.URL, "api://other", "alice-oid"), 401},
		{"fail/untrusted-issuer", other.token(t, other.srv.URL, "api://coffer", "alice-oid"), 401},
		{"fail/trusted-iss-other-key", other.token(t, idp.srv.URL, "api://coffer", "alice-oid"), 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, _, body := rng(t, hc, "devhsm.managedhsm.localhost", port, tc.token); status != tc.want {
				t.Errorf("rng = %d %s; want %d", status, body, tc.want)
			}
		})
	}
}
