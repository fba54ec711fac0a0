package api

import (
	"bytes"
	"net/http/httptest"
	"testing"

	"github.com/coffer-kms/coffer/internal/certificates"
	"github.com/coffer-kms/coffer/internal/keys"
	"github.com/coffer-kms/coffer/internal/provider/soft"
	"github.com/coffer-kms/coffer/internal/secrets"
	"github.com/coffer-kms/coffer/internal/storage/mem"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// FuzzKeysRequestBodies sends arbitrary bodies to every keys operation that takes one,
// through the real handlers, domain and software provider: whatever the bytes, the answer is
// a 2xx or a 4xx in Key Vault's shape — never a 5xx or a panic (SECURITY-NOTES I5).
func FuzzKeysRequestBodies(f *testing.F) {
	store := mem.New()
	svc := keys.NewService(store, soft.New(), nil, bytes.Repeat([]byte{7}, 32))
	vault := tenancy.Vault{Name: "v1", Kind: tenancy.KindVault, TenantID: "00000000-0000-4000-8000-000000000001", SoftDeleteRetention: 7}
	call := &Call{Store: vault, StoreURL: "https://v1.localhost"}
	if _, err := svc.Create(f.Context(), vault, call.StoreURL, "rsa", keys.CreateParams{Kty: "RSA", KeySize: 2048}); err != nil {
		f.Fatal(err)
	}
	if _, err := svc.Create(f.Context(), vault, call.StoreURL, "ec", keys.CreateParams{Kty: "EC"}); err != nil {
		f.Fatal(err)
	}
	k := &Keys{Svc: func(tenancy.Kind) (*keys.Service, error) { return svc, nil }}
	routes := map[string]Route{}
	for _, rt := range k.Routes() {
		routes[rt.Pattern] = rt
	}
	ops := []struct{ pattern, name string }{
		{"POST /keys/{name}/create", "new"},
		{"PUT /keys/{name}", "imported"},
		{"PATCH /keys/{name}", "ec"},
		{"POST /keys/{name}/sign", "ec"},
		{"POST /keys/{name}/verify", "ec"},
		{"POST /keys/{name}/encrypt", "rsa"},
		{"POST /keys/{name}/decrypt", "rsa"},
		{"POST /keys/{name}/wrapkey", "rsa"},
		{"POST /keys/{name}/unwrapkey", "rsa"},
		{"POST /keys/restore", ""},
		{"PUT /keys/{name}/rotationpolicy", "ec"},
	}
	for _, seed := range []string{
		`{"kty":"EC","crv":"P-256"}`, `{"alg":"ES256","value":"AAAA"}`, `{"alg":"RSA-OAEP-256","value":"AAAA"}`,
		`{"key":{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB"}}`, `{"value":"AQID"}`, `{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P1Y2M"},"action":{"type":"Rotate"}}]}`,
		`{"attributes":{"enabled":false,"exp":1}}`, `{"kty":"RSA","key_size":1024}`, `{"alg":"ES256","digest":"AAAA","value":"AAAA"}`, `[]`, `{"kty":"EC","kty":"RSA"}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, op := range ops {
			rt := routes[op.pattern]
			req := httptest.NewRequest("POST", "https://v1.localhost/x", bytes.NewReader([]byte(body)))
			req.Header.Set("Content-Type", "application/json")
			req.SetPathValue("name", op.name)
			w := httptest.NewRecorder()
			err := rt.Handle(w, req, call)
			status := w.Code
			if err != nil {
				status = Resolve(err).Status
			}
			if status >= 500 {
				t.Fatalf("%s with body %q = %d (%v); want 2xx or 4xx", op.pattern, body, status, err)
			}
		}
	})
}

// FuzzSecretsRequestBodies: arbitrary bodies to set, update and restore through the real
// handlers and secrets domain never give a 5xx or a panic.
func FuzzSecretsRequestBodies(f *testing.F) {
	svc := secrets.NewService(mem.New(), nil, bytes.Repeat([]byte{9}, 32))
	vault := tenancy.Vault{Name: "v1", Kind: tenancy.KindVault, TenantID: "00000000-0000-4000-8000-000000000001", SoftDeleteRetention: 7}
	call := &Call{Store: vault, StoreURL: "https://v1.localhost"}
	s := &Secrets{Svc: func() (*secrets.Service, error) { return svc, nil }}
	routes := map[string]Route{}
	for _, rt := range s.Routes() {
		routes[rt.Pattern] = rt
	}
	for _, seed := range []string{`{"value":"v"}`, `{"value":"v","contentType":"text/plain","tags":{"a":"b"},"attributes":{"enabled":false,"nbf":2,"exp":1}}`,
		`{"attributes":{"enabled":true}}`, `{"value":"AAAA"}`, `{"value":null}`, `[]`, `{"value":"v","value":"w"}`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, pattern := range []string{"PUT /secrets/{name}", "PATCH /secrets/{name}", "POST /secrets/restore"} {
			req := httptest.NewRequest("POST", "https://v1.localhost/x", bytes.NewReader([]byte(body)))
			req.Header.Set("Content-Type", "application/json")
			req.SetPathValue("name", "s1")
			w := httptest.NewRecorder()
			err := routes[pattern].Handle(w, req, call)
			status := w.Code
			if err != nil {
				status = Resolve(err).Status
			}
			if status >= 500 {
				t.Fatalf("%s with body %q = %d (%v); want 2xx or 4xx", pattern, body, status, err)
			}
		}
	})
}

// FuzzCertificatesRequestBodies: create, import, merge, update, policy, operation, contacts,
// issuer and restore bodies never give a 5xx.
func FuzzCertificatesRequestBodies(f *testing.F) {
	store := mem.New()
	bk := bytes.Repeat([]byte{9}, 32)
	keySvc := keys.NewService(store, soft.New(), nil, bk)
	secSvc := secrets.NewService(store, nil, bk)
	svc := certificates.NewService(store, keySvc, secSvc, nil, bk, nil)
	vault := tenancy.Vault{Name: "v1", Kind: tenancy.KindVault, TenantID: "00000000-0000-4000-8000-000000000001", SoftDeleteRetention: 7}
	call := &Call{Store: vault, StoreURL: "https://v1.localhost"}
	cs := &Certificates{Svc: func() (*certificates.Service, error) { return svc, nil }}
	routes := map[string]Route{}
	for _, rt := range cs.Routes() {
		routes[rt.Pattern] = rt
	}
	for _, seed := range []string{
		`{"policy":{"key_props":{"kty":"EC","crv":"P-256"},"x509_props":{"subject":"CN=a","sans":{"dns_names":["a.b"]},"validity_months":1},"issuer":{"name":"Self"}}}`,
		`{"policy":{"issuer":{"name":"Unknown"},"x509_props":{"subject":"CN=a"}}}`,
		`{"value":"MIIB","pwd":"x"}`, `{"value":"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}`,
		`{"x5c":["AAAA"]}`, `{"cancellation_requested":true}`, `{"contacts":[{"email":"a@b.c"}]}`,
		`{"provider":"TenantCA","credentials":{"account_id":"a","pwd":"b"}}`, `{"value":"AAAA"}`, `{"policy":{"lifetime_actions":[{"trigger":{"days_before_expiry":-1},"action":{"action_type":"AutoRenew"}}]}}`,
	} {
		f.Add(seed)
	}
	patterns := []string{
		"POST /certificates/{name}/create", "POST /certificates/{name}/import", "POST /certificates/{name}/pending/merge",
		"PATCH /certificates/{name}", "PATCH /certificates/{name}/policy", "PATCH /certificates/{name}/pending",
		"PUT /certificates/contacts", "PUT " + issuersPath + "/{name}", "PATCH " + issuersPath + "/{name}", "POST /certificates/restore",
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, pattern := range patterns {
			req := httptest.NewRequest("POST", "https://v1.localhost/x", bytes.NewReader([]byte(body)))
			req.Header.Set("Content-Type", "application/json")
			req.SetPathValue("name", "c1")
			w := httptest.NewRecorder()
			err := routes[pattern].Handle(w, req, call)
			status := w.Code
			if err != nil {
				status = Resolve(err).Status
			}
			if status >= 500 {
				t.Fatalf("%s with body %q = %d (%v); want 2xx or 4xx", pattern, body, status, err)
			}
		}
	})
}
