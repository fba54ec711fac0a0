package api

import (
	"bytes"
	"net/http/httptest"
	"testing"

	"github.com/coffer-kms/coffer/internal/keys"
	"github.com/coffer-kms/coffer/internal/provider/soft"
	"github.com/coffer-kms/coffer/internal/storage/mem"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// TestKeyOperationsNeedTheirMembers: a key operation without the value (or, for verify, the
// digest) keys.json requires is 400; a member that is present but empty is the caller's.
func TestKeyOperationsNeedTheirMembers(t *testing.T) {
	svc := keys.NewService(mem.New(), soft.New(), nil, bytes.Repeat([]byte{7}, 32))
	vault := tenancy.Vault{Name: "v1", Kind: tenancy.KindVault, TenantID: "00000000-0000-4000-8000-000000000001", SoftDeleteRetention: 7}
	call := &Call{Store: vault, StoreURL: "https://v1.localhost"}
	if _, err := svc.Create(t.Context(), vault, call.StoreURL, "rsa", keys.CreateParams{Kty: "RSA", KeySize: 2048}); err != nil {
		t.Fatal(err)
	}
	routes := map[string]Route{}
	for _, rt := range (&Keys{Svc: func(tenancy.Kind) (*keys.Service, error) { return svc, nil }}).Routes() {
		routes[rt.Pattern] = rt
	}
	for _, tc := range []struct {
		name, pattern, body string
		want                int
	}{
		{"fail/encrypt-no-value", "POST /keys/{name}/encrypt", `{"alg":"RSA-OAEP"}`, 400},
		{"fail/encrypt-null-value", "POST /keys/{name}/encrypt", `{"alg":"RSA-OAEP","value":null}`, 400},
		{"ok/encrypt-empty-value", "POST /keys/{name}/encrypt", `{"alg":"RSA-OAEP","value":""}`, 200},
		{"fail/decrypt-no-value", "POST /keys/{name}/decrypt", `{"alg":"RSA-OAEP"}`, 400},
		{"fail/wrap-no-value", "POST /keys/{name}/wrapkey", `{"alg":"RSA-OAEP"}`, 400},
		{"fail/unwrap-no-value", "POST /keys/{name}/unwrapkey", `{"alg":"RSA-OAEP"}`, 400},
		{"fail/sign-no-value", "POST /keys/{name}/sign", `{"alg":"RS256"}`, 400},
		{"fail/verify-no-digest", "POST /keys/{name}/verify", `{"alg":"RS256","value":"AAAA"}`, 400},
		{"fail/verify-no-value", "POST /keys/{name}/verify", `{"alg":"RS256","digest":"AAAA"}`, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "https://v1.localhost/x", bytes.NewReader([]byte(tc.body)))
			req.Header.Set("Content-Type", "application/json")
			req.SetPathValue("name", "rsa")
			w := httptest.NewRecorder()
			status := 200
			if err := routes[tc.pattern].Handle(w, req, call); err != nil {
				status = Resolve(err).Status
			}
			if status != tc.want {
				t.Errorf("%s %s = %d; want %d", tc.pattern, tc.body, status, tc.want)
			}
		})
	}
}
