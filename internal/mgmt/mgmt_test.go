package mgmt

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/audit"
	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/storage/mem"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// fakeJWT is a token-shaped string whose payload names tid; fakeIdentity decides validity.
func fakeJWT(tid, nonce string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"ES256"}`)) + "." + enc([]byte(`{"tid":"`+tid+`","jti":"`+nonce+`"}`)) + ".c2ln"
}

type fakeIdentity struct {
	mu     sync.Mutex
	tokens map[string]api.Caller
}

func (f *fakeIdentity) CheckOperator(_ context.Context, raw string) error {
	if raw == "cof.operator" {
		return nil
	}
	return ErrUnauthenticated
}

func (f *fakeIdentity) Authenticate(_ context.Context, raw, tenantID string) (api.Caller, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.tokens[raw]
	if !ok || c.TenantID != tenantID {
		return api.Caller{}, ErrUnauthenticated
	}
	return c, nil
}

func (f *fakeIdentity) Audience() string { return "https://localhost:8443" }

func (f *fakeIdentity) issue(c api.Caller) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	raw := fakeJWT(c.TenantID, tenancy.NewUUID())
	f.tokens[raw] = c
	return raw
}

// snapAuthorizer decides with the store's snapshot, as the server's authorizer does.
type snapAuthorizer struct{ store *tenancy.Store }

func (a snapAuthorizer) Authorize(ctx context.Context, c api.Caller, action, scope string) error {
	snap, err := a.store.Snapshot(ctx)
	if err != nil {
		return err
	}
	sc, err := authz.ParseScope(scope)
	if err != nil {
		return api.Errorf(http.StatusBadRequest, "BadParameter", "bad scope")
	}
	d := snap.Decide(authz.Request{PrincipalID: c.ObjectID, PrincipalTenant: c.TenantID, Action: authz.Action(action), Scope: sc, Now: time.Now()})
	if !d.Allowed {
		return &api.Error{Status: http.StatusForbidden, Code: "Forbidden", Inner: "ForbiddenByRbac", Message: d.Message()}
	}
	return nil
}

type fakeAudit struct {
	mu     sync.Mutex
	events []audit.Event
	fail   bool
}

func (f *fakeAudit) Append(_ context.Context, ev audit.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("disk full")
	}
	f.events = append(f.events, ev)
	return nil
}

func (f *fakeAudit) Open(context.Context, time.Time, time.Time) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("")), nil
}

func (f *fakeAudit) PublicKey(context.Context) (crypto.PublicKey, audit.Head, error) {
	return nil, audit.Head{}, errors.New("no key")
}

type fixture struct {
	srv   *httptest.Server
	mux   *http.ServeMux
	store *tenancy.Store
	ids   *fakeIdentity
	audit *fakeAudit
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{store: tenancy.New(mem.New(), nil), ids: &fakeIdentity{tokens: map[string]api.Caller{}}, audit: &fakeAudit{}}
	svc := New(Config{Store: f.store, Identity: f.ids, Authorizer: snapAuthorizer{f.store}, Audit: f.audit})
	mux := http.NewServeMux()
	for _, rt := range svc.Routes() {
		mux.HandleFunc(rt.Pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := svc.Serve(w, r); err != nil {
				api.WriteError(w, err)
			}
		})
	}
	f.mux, f.srv = mux, httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) call(t *testing.T, method, path, token, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestAuditFailureWithholdsResult(t *testing.T) {
	f := newFixture(t)
	f.audit.fail = true
	status, body := f.call(t, "POST", "/v1/tenants", "cof.operator", `{"name":"Contoso"}`)
	if status != http.StatusServiceUnavailable || strings.Contains(string(body), "clientSecret") {
		t.Errorf("create tenant with a failing audit log = %d %s; want 503 without the secret", status, body)
	}
	if status, _ := f.call(t, "GET", "/v1/tenants", "", ""); status != http.StatusUnauthorized {
		t.Errorf("an error response with a failing audit log = %d; want the error (401)", status)
	}
}

func TestAuditAttribution(t *testing.T) {
	f := newFixture(t)
	var a, b TenantCreated
	for _, tc := range []struct {
		name string
		out  *TenantCreated
	}{{"A", &a}, {"B", &b}} {
		status, body := f.call(t, "POST", "/v1/tenants", "cof.operator", `{"name":"`+tc.name+`"}`)
		if status != 201 || json.Unmarshal(body, tc.out) != nil {
			t.Fatalf("create %s = %d %s", tc.name, status, body)
		}
	}
	tokB := f.ids.issue(api.Caller{TenantID: b.Tenant.ID, ObjectID: b.Administrator.ObjectID, AppID: b.Administrator.ClientID})
	if status, _ := f.call(t, "GET", "/v1/tenants/"+a.Tenant.ID+"/vaults", tokB, ""); status != 404 {
		t.Fatalf("B on A = %d; want 404", status)
	}
	f.call(t, "GET", "/v1/tenants/"+a.Tenant.ID+"/principals", "cof.operator", "")
	f.call(t, "GET", "/v1/tenants/"+a.Tenant.ID, fakeJWT(a.Tenant.ID, "forged"), "")

	want := []struct{ op, tenant, caller, result string }{
		{"TenantCreate", a.Tenant.ID, OperatorOID, audit.ResultSuccess},
		{"TenantCreate", b.Tenant.ID, OperatorOID, audit.ResultSuccess},
		{"VaultList", b.Tenant.ID, b.Administrator.ObjectID, audit.ResultError}, // B's probe is B's record
		{"PrincipalList", a.Tenant.ID, OperatorOID, audit.ResultDenied},         // A sees the operator try
		{"TenantGet", "", "", audit.ResultUnauthenticated},                      // nobody's
	}
	if len(f.audit.events) != len(want) {
		t.Fatalf("%d audit events; want %d: %+v", len(f.audit.events), len(want), f.audit.events)
	}
	for i, w := range want {
		ev := f.audit.events[i]
		if ev.Operation != w.op || ev.Tenant != w.tenant || ev.CallerOID != w.caller || ev.Result != w.result {
			t.Errorf("event %d = %s tenant=%q caller=%q %s; want %s tenant=%q caller=%q %s", i, ev.Operation, ev.Tenant, ev.CallerOID, ev.Result, w.op, w.tenant, w.caller, w.result)
		}
	}
}

func TestTokenTenant(t *testing.T) {
	tid := tenancy.NewUUID()
	enc := base64.RawURLEncoding.EncodeToString
	for _, tc := range []struct {
		name, raw string
		ok        bool
	}{
		{"ok/tid", fakeJWT(tid, "x"), true},
		{"fail/two-parts", "a.b", false},
		{"fail/not-base64", "a.!!!.c", false},
		{"fail/not-json", "a." + enc([]byte("tid")) + ".c", false},
		{"fail/no-tid", "a." + enc([]byte(`{"oid":"x"}`)) + ".c", false},
		{"fail/tid-not-uuid", "a." + enc([]byte(`{"tid":"../etc"}`)) + ".c", false},
		{"fail/huge", "a." + strings.Repeat("A", maxTokenLen) + ".c", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tokenTenant(tc.raw)
			if ok != tc.ok || ok && got != tid {
				t.Errorf("tokenTenant = %q, %v; want ok=%v", got, ok, tc.ok)
			}
		})
	}
}

func TestAuditField(t *testing.T) {
	long := strings.Repeat("é", audit.MaxFieldLen)
	for _, in := range []string{"/v1/tenants", "bad\xffutf8", long} {
		got := auditField(in)
		if len(got) > audit.MaxFieldLen || !utf8.ValidString(got) {
			t.Errorf("auditField(%.20q) = %d bytes, valid UTF-8 %v", in, len(got), utf8.ValidString(got))
		}
	}
}

func TestPrincipalDTOHidesCredentials(t *testing.T) {
	p := tenancy.Principal{ObjectID: "o", TenantID: "t", Type: tenancy.ServicePrincipal,
		Secrets:      []tenancy.SecretCred{{ID: "s", Hint: "abc", Salt: []byte("SALTSALT"), Hash: []byte("HASHHASH")}},
		Certificates: []tenancy.CertificateCred{{Thumbprint: "aa", SHA256: "bb", DER: []byte("DERDER")}}}
	b, _ := json.Marshal(principalDTO(p))
	for _, leak := range []string{"salt", "hash", "der", base64.StdEncoding.EncodeToString([]byte("SALTSALT")), base64.StdEncoding.EncodeToString([]byte("HASHHASH")), base64.StdEncoding.EncodeToString([]byte("DERDER"))} {
		if strings.Contains(strings.ToLower(string(b)), strings.ToLower(leak)) {
			t.Errorf("principal DTO %s contains %q", b, leak)
		}
	}
}

func TestParseCertificate(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"ok/base64", base64.StdEncoding.EncodeToString([]byte("der")), true},
		{"ok/base64-trimmed", " ZGVyZGVy\n", true},
		// One base64 rule (SECURITY-NOTES I6): no line breaks inside, standard alphabet, padded.
		{"fail/base64-wrapped", "ZGVy\nZGVy\n", false},
		{"fail/base64-crlf", "ZGVy\r\nZGVy", false},
		{"fail/base64-url-alphabet", base64.RawURLEncoding.EncodeToString([]byte{0xfb, 0xff, 0xfe}), false},
		{"fail/base64-unpadded", "ZGVyZA", false},
		{"ok/pem", "-----BEGIN CERTIFICATE-----\nZGVy\n-----END CERTIFICATE-----\n", true},
		{"fail/empty", "  ", false},
		{"fail/pem-key", "-----BEGIN PRIVATE KEY-----\nZGVy\n-----END PRIVATE KEY-----\n", false},
		{"fail/pem-chain", "-----BEGIN CERTIFICATE-----\nZGVy\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nZGVy\n-----END CERTIFICATE-----\n", false},
		{"fail/not-base64", "***", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseCertificate(tc.in)
			if (err == nil) != tc.ok {
				t.Errorf("parseCertificate = %v; want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestRoutesTable checks the route declarations against the pipeline's assumptions.
func TestRoutesTable(t *testing.T) {
	ops := map[string]bool{}
	for _, rt := range New(Config{}).Routes() {
		t.Run(rt.Pattern, func(t *testing.T) {
			if rt.Operation == "" || ops[rt.Operation] {
				t.Errorf("operation %q is empty or used twice", rt.Operation)
			}
			ops[rt.Operation] = true
			if !authz.IsKnownAction(rt.Action) || authz.IsDataAction(rt.Action) {
				t.Errorf("action %q is not a management action", rt.Action)
			}
			tenantRoute := strings.Contains(rt.Pattern, "{tenant}")
			switch {
			case rt.Who == Operator && (tenantRoute || rt.Scope != ScopeNone):
				t.Error("an operator route names a tenant or an RBAC scope")
			case rt.Who != Operator && (!tenantRoute || rt.Scope == ScopeNone):
				t.Error("a tenant route lacks {tenant} or an RBAC scope")
			case (rt.Scope == ScopeVault || rt.Scope == ScopeManagedHSM) && !strings.HasSuffix(rt.Pattern, "/{name}"):
				t.Error("a vault-scoped route lacks {name}")
			case rt.Handle == nil:
				t.Error("no handler")
			}
		})
	}
}
