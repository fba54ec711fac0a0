package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coffer-kms/coffer/internal/tenancy"
)

type fakeStores struct{ v tenancy.Vault }

func (f fakeStores) Vault(_ context.Context, kind tenancy.Kind, name string) (tenancy.Vault, error) {
	if kind == f.v.Kind && name == f.v.Name {
		return f.v, nil
	}
	return tenancy.Vault{}, tenancy.ErrNotFound
}

type fakeAuthn struct{}

func (fakeAuthn) Authenticate(context.Context, string, tenancy.Vault, string) (Caller, error) {
	return Caller{TenantID: "t1", ObjectID: "oid", AppID: "app"}, nil
}

type fakeAuthz struct{}

func (fakeAuthz) Authorize(context.Context, Caller, string, string) error { return nil }

// fakeAuditor fails while err is set and keeps the records it accepted.
type fakeAuditor struct {
	mu   sync.Mutex
	err  error
	recs []AuditRecord
}

func (a *fakeAuditor) Record(_ context.Context, rec AuditRecord) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	a.recs = append(a.recs, rec)
	return nil
}

// TestAuditFailureFailsRequest: when the audit record cannot be made durable (the log's
// write or fsync failed), the handler's response never leaves: the caller gets 503 in Key
// Vault's error shape and none of the handler's headers or body.
func TestAuditFailureFailsRequest(t *testing.T) {
	const secret = "the-secret-value"
	aud := &fakeAuditor{}
	d := &DataPlane{
		Stores: fakeStores{tenancy.Vault{Name: "v1", Kind: tenancy.KindVault, TenantID: "t1"}},
		Authn:  fakeAuthn{}, Authz: fakeAuthz{}, Audit: aud,
		Sealed: func() bool { return false }, Authority: "https://localhost", DNSSuffix: "localhost",
		TenantSecret: []byte("0123456789abcdef"), MaxBody: 1 << 10,
	}
	h := d.Handler([]Route{{
		Pattern: "GET /secrets/{name}", Operation: "SecretGet", Action: map[tenancy.Kind]string{tenancy.KindVault: "read"},
		Handle: func(w http.ResponseWriter, r *http.Request, c *Call) error {
			w.Header().Set("X-Handler", "ran")
			_, err := w.Write([]byte(`{"value":"` + secret + `"}`))
			return err
		},
	}}, nil)
	get := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "https://v1.localhost/secrets/s?api-version=7.6", nil)
		r.Header.Set("Authorization", "Bearer tok")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	if w := get(); w.Code != 200 || !strings.Contains(w.Body.String(), secret) || len(aud.recs) != 1 {
		t.Fatalf("with a working audit log: %d %q, %d records; want 200 with the value and 1 record", w.Code, w.Body, len(aud.recs))
	}
	aud.mu.Lock()
	aud.err = errors.New("audit: write audit.log: fdatasync: input/output error")
	aud.mu.Unlock()
	w := get()
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"code":"ServiceUnavailable"`) {
		t.Errorf("with a failing audit log: %d %s; want 503 ServiceUnavailable", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), secret) || w.Header().Get("X-Handler") != "" {
		t.Errorf("with a failing audit log the handler's response leaked: headers %v body %s", w.Header(), w.Body)
	}
	if strings.Contains(w.Body.String(), "input/output") {
		t.Errorf("503 body names the internal error: %s", w.Body)
	}
	// The record is written after the handler ran: a write refused here may be stored, and
	// the answer must not tell the caller otherwise.
	if body := w.Body.String(); strings.Contains(body, "not completed") || !strings.Contains(body, "may have taken effect") {
		t.Errorf("with a failing audit log: %s; want a message saying a write may have taken effect", body)
	}
}

// auditedPlane is a data plane over vault v1 of tenant t1 that admits every caller and
// records to aud.
func auditedPlane(aud *fakeAuditor) *DataPlane {
	return &DataPlane{
		Stores: fakeStores{tenancy.Vault{Name: "v1", Kind: tenancy.KindVault, TenantID: "t1"}},
		Authn:  fakeAuthn{}, Authz: fakeAuthz{}, Audit: aud,
		Sealed: func() bool { return false }, Authority: "https://localhost", DNSSuffix: "localhost",
		TenantSecret: []byte("0123456789abcdef"), MaxBody: 1 << 10,
	}
}

// TestAuditRecordReadOnly: the record says ReadOnly for a GET and for a route marked
// ReadOnly, never for another write, and among the keys routes only the six key
// operations are marked.
func TestAuditRecordReadOnly(t *testing.T) {
	aud := &fakeAuditor{}
	d := auditedPlane(aud)
	ok := func(w http.ResponseWriter, r *http.Request, c *Call) error { return nil }
	act := map[tenancy.Kind]string{tenancy.KindVault: "a"}
	h := d.Handler([]Route{
		{Pattern: "GET /keys/{name}", Operation: "KeyGet", Action: act, Handle: ok},
		{Pattern: "POST /keys/{name}/sign", Operation: "KeySign", Action: act, ReadOnly: true, Handle: ok},
		{Pattern: "POST /keys/{name}/create", Operation: "KeyCreate", Action: act, Handle: ok},
		{Pattern: "DELETE /keys/{name}", Operation: "KeyDelete", Action: act, Handle: ok},
	}, nil)
	want := map[string]bool{"KeyGet": true, "KeySign": true, "KeyCreate": false, "KeyDelete": false}
	for _, req := range []struct{ method, path string }{{"GET", "/keys/k"}, {"POST", "/keys/k/sign"}, {"POST", "/keys/k/create"}, {"DELETE", "/keys/k"}} {
		r := httptest.NewRequest(req.method, "https://v1.localhost"+req.path+"?api-version=7.6", strings.NewReader("{}"))
		r.Header.Set("Authorization", "Bearer tok")
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	if len(aud.recs) != len(want) {
		t.Fatalf("%d records; want %d", len(aud.recs), len(want))
	}
	for _, rec := range aud.recs {
		if rec.ReadOnly != want[rec.Operation] {
			t.Errorf("%s: ReadOnly = %v; want %v", rec.Operation, rec.ReadOnly, want[rec.Operation])
		}
	}
	readOnlyOps := map[string]bool{"KeySign": true, "KeyVerify": true, "KeyEncrypt": true, "KeyDecrypt": true, "KeyWrapKey": true, "KeyUnwrapKey": true}
	for _, rt := range (&Keys{}).Routes() {
		if rt.ReadOnly != readOnlyOps[rt.Operation] {
			t.Errorf("keys route %s (%s): ReadOnly = %v; want %v", rt.Pattern, rt.Operation, rt.ReadOnly, readOnlyOps[rt.Operation])
		}
	}
}

// TestEncodedSlashRefused: %2F in a data-plane path is a 400 before routing, never a
// separator: k%2Fversions is not k's version list (SECURITY-NOTES I1).
func TestEncodedSlashRefused(t *testing.T) {
	d := &DataPlane{
		Stores: fakeStores{tenancy.Vault{Name: "v1", Kind: tenancy.KindVault, TenantID: "t1"}},
		Authn:  fakeAuthn{}, Authz: fakeAuthz{},
		Sealed: func() bool { return false }, Authority: "https://localhost", DNSSuffix: "localhost",
		TenantSecret: []byte("0123456789abcdef"), MaxBody: 1 << 10,
	}
	ran := ""
	ok := func(w http.ResponseWriter, r *http.Request, c *Call) error {
		ran = r.Pattern
		WriteJSON(w, 200, map[string]string{})
		return nil
	}
	act := map[tenancy.Kind]string{tenancy.KindVault: "read"}
	h := d.Handler([]Route{
		{Pattern: "GET /keys/{name}", Operation: "KeyGet", Action: act, Handle: ok},
		{Pattern: "GET /keys/{name}/versions", Operation: "KeyListVersions", Action: act, Handle: ok},
		{Pattern: "GET /keys/{name}/{version}", Operation: "KeyGet", Action: act, Handle: ok},
	}, nil)
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/keys/k", 200}, {"/keys/k/versions", 200}, {"/keys/k%2Dx", 200},
		{"/keys/k%2Fversions", 400}, {"/keys/k%2fversions", 400}, {"/keys/k/v%2F", 400}, {"/keys/%2Fk", 400},
	} {
		ran = ""
		r := httptest.NewRequest("GET", "https://v1.localhost"+tc.path+"?api-version=7.6", nil)
		r.Header.Set("Authorization", "Bearer tok")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want || (tc.want == 400 && (ran != "" || !strings.Contains(w.Body.String(), "BadParameter"))) {
			t.Errorf("GET %s = %d %s (handler %q); want %d", tc.path, w.Code, w.Body, ran, tc.want)
		}
	}
}

// TestThrottledRecordReadOnly: a write refused with 429 Throttled changed nothing, so its
// record is ReadOnly (synced lazily): a tenant flooding writes above its quota must not make
// every 429 wait for an audit sync that other tenants' requests queue behind.
func TestThrottledRecordReadOnly(t *testing.T) {
	aud := &fakeAuditor{}
	d := auditedPlane(aud)
	d.Limits = NewLimiter(1, 1, 0)
	ok := func(w http.ResponseWriter, r *http.Request, c *Call) error { return nil }
	h := d.Handler([]Route{{Pattern: "POST /keys/{name}/create", Operation: "KeyCreate", Action: map[tenancy.Kind]string{tenancy.KindVault: "a"}, Handle: ok}}, nil)
	var codes []int
	for range 2 {
		r := httptest.NewRequest("POST", "https://v1.localhost/keys/k/create?api-version=7.6", strings.NewReader("{}"))
		r.Header.Set("Authorization", "Bearer tok")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		codes = append(codes, w.Code)
	}
	if len(aud.recs) != 2 || codes[0] == 429 || codes[1] != 429 {
		t.Fatalf("statuses %v, %d records; want the second create throttled, two records", codes, len(aud.recs))
	}
	if aud.recs[0].ReadOnly || !aud.recs[1].ReadOnly {
		t.Errorf("ReadOnly of the admitted create = %v, of the throttled one = %v; want false, true", aud.recs[0].ReadOnly, aud.recs[1].ReadOnly)
	}
}

// TestClientGoneIsNotAServerFailure: a request whose client hung up (its context canceled)
// and whose handler therefore failed with context.Canceled is recorded as 499
// ClientClosedRequest, and logs no server error; the same error on a live request is
// still a logged 500.
func TestClientGoneIsNotAServerFailure(t *testing.T) {
	for _, gone := range []bool{true, false} {
		aud := &fakeAuditor{}
		d := auditedPlane(aud)
		var logged []string
		d.LogError = func(msg string, _ ...any) { logged = append(logged, msg) }
		h := d.Handler([]Route{{Pattern: "POST /keys/{name}/create", Operation: "KeyCreate", Action: map[tenancy.Kind]string{tenancy.KindVault: "a"},
			Handle: func(http.ResponseWriter, *http.Request, *Call) error {
				return fmt.Errorf("read meta: %w", context.Canceled)
			}}}, nil)
		ctx, cancel := context.WithCancel(context.Background())
		if gone {
			cancel()
		}
		r := httptest.NewRequestWithContext(ctx, "POST", "https://v1.localhost/keys/k/create?api-version=7.6", strings.NewReader("{}"))
		r.Header.Set("Authorization", "Bearer tok")
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		cancel()
		want, wantLogs := 499, 0
		if !gone {
			want, wantLogs = 500, 1
		}
		if len(aud.recs) != 1 || aud.recs[0].Status != want || len(logged) != wantLogs {
			t.Errorf("client gone %v: %d records (status %v), %d error logs %v; want status %d, %d logs", gone, len(aud.recs), aud.recs, len(logged), logged, want, wantLogs)
		}
	}
}

// TestRefusedRecordReadOnly: a write refused before its handler ran (no bearer token: 401)
// changed nothing, so its record is ReadOnly (synced lazily), as a throttled one's is; a
// write whose handler failed is not, whatever it left behind.
func TestRefusedRecordReadOnly(t *testing.T) {
	aud := &fakeAuditor{}
	d := auditedPlane(aud)
	fail := func(http.ResponseWriter, *http.Request, *Call) error { return errors.New("store failed") }
	h := d.Handler([]Route{{Pattern: "POST /keys/{name}/create", Operation: "KeyCreate", Action: map[tenancy.Kind]string{tenancy.KindVault: "a"}, Handle: fail}}, nil)
	for _, bearer := range []string{"", "Bearer tok"} {
		r := httptest.NewRequest("POST", "https://v1.localhost/keys/k/create?api-version=7.6", strings.NewReader("{}"))
		if bearer != "" {
			r.Header.Set("Authorization", bearer)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	if len(aud.recs) != 2 || aud.recs[0].Status != 401 || aud.recs[1].Status != 500 {
		t.Fatalf("records %+v; want a 401 and a 500", aud.recs)
	}
	if !aud.recs[0].ReadOnly || aud.recs[1].ReadOnly {
		t.Errorf("ReadOnly of the refused create = %v, of the failed one = %v; want true, false", aud.recs[0].ReadOnly, aud.recs[1].ReadOnly)
	}
}

// countingStores is a StoreResolver that counts its lookups.
type countingStores struct {
	StoreResolver
	n int
}

func (c *countingStores) Vault(ctx context.Context, kind tenancy.Kind, name string) (tenancy.Vault, error) {
	c.n++
	return c.StoreResolver.Vault(ctx, kind, name)
}

// TestSealedResolvesNoStore holds SECURITY-NOTES D7 at the data plane: while sealed, a
// request to a vault, to the dev fallback vault or to a host that names no store is answered
// 503 before the store is looked up (no record, not even the vault's, is read), with a
// record of the 503 that names the store the host named.
func TestSealedResolvesNoStore(t *testing.T) {
	aud := &fakeAuditor{}
	d := auditedPlane(aud)
	stores := &countingStores{StoreResolver: d.Stores}
	d.Stores = stores
	d.Sealed = func() bool { return true }
	ran := false
	ok := func(http.ResponseWriter, *http.Request, *Call) error { ran = true; return nil }
	routes := []Route{{Pattern: "GET /keys/{name}", Operation: "KeyGet", Action: map[tenancy.Kind]string{tenancy.KindVault: "a"}, Handle: ok}}
	fallback := &tenancy.Vault{Name: "dev", Kind: tenancy.KindVault, TenantID: "t1"}
	for _, tc := range []struct {
		name, url, vault string
		fallback         *tenancy.Vault
	}{
		{"vault", "https://v1.localhost/keys/k?api-version=7.6", "v1", nil},
		{"missing-vault", "https://nope.localhost/keys/k?api-version=7.6", "nope", nil},
		{"pool", "https://p1.managedhsm.localhost/keys/k?api-version=7.6", "p1", nil},
		{"fallback", "https://localhost/keys/k?api-version=7.6", "dev", fallback},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stores.n, aud.recs = 0, nil
			r := httptest.NewRequest("GET", tc.url, nil)
			r.Header.Set("Authorization", "Bearer tok")
			w := httptest.NewRecorder()
			d.Handler(routes, tc.fallback).ServeHTTP(w, r)
			if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "coffer is sealed") {
				t.Errorf("GET %s while sealed = %d %s; want 503 sealed", tc.url, w.Code, w.Body)
			}
			if stores.n != 0 || ran {
				t.Errorf("GET %s while sealed looked the store up %d times (handler ran: %v); want none", tc.url, stores.n, ran)
			}
			if len(aud.recs) != 1 || aud.recs[0].Vault != tc.vault || aud.recs[0].Status != 503 {
				t.Errorf("records %+v; want one 503 for vault %q", aud.recs, tc.vault)
			}
		})
	}
}
