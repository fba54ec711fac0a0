package idp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/coffer-kms/coffer/internal/identity/token"
	"github.com/coffer-kms/coffer/internal/storage/mem"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// fuzzResources is the one audience of the fuzzed identity provider.
type fuzzResources struct{}

func (fuzzResources) Issuer(tenantID string) string { return fuzzBase + "/" + tenantID + "/v2.0" }
func (fuzzResources) Base() string                  { return fuzzBase }
func (fuzzResources) Audience(r string) bool        { return r == fuzzBase }

const fuzzBase = "https://coffer.test:8443"

// FuzzTokenRequest posts arbitrary form bodies to the token endpoint of a tenant with one
// service principal (a client secret and a client certificate). Every answer is 200, 400, 401
// or 429 with a JSON body: an OAuth2 error, or a token for that principal, which is issued
// only to a request that names its client id and carries its secret or an assertion.
func FuzzTokenRequest(f *testing.F) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	store := mem.New()
	tenants := tenancy.New(store, clock)
	tid := "00000000-0000-4000-8000-0000000000f1"
	if _, err := tenants.CreateTenant(ctx, tid, "fuzz"); err != nil {
		f.Fatal(err)
	}
	p, secret, err := tenants.CreateServicePrincipal(ctx, tid, "app")
	if err != nil {
		f.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "app"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := tenants.AddCertificate(ctx, tid, p.ObjectID, der); err != nil {
		f.Fatal(err)
	}
	signer, err := token.NewSigner(store, "idp/signing-keys", clock, 0)
	if err != nil {
		f.Fatal(err)
	}
	endpoint := fuzzBase + "/" + tid + "/oauth2/v2.0/token"
	sum := sha256.Sum256(der)
	assertion := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.RegisteredClaims{
		Issuer: p.AppID, Subject: p.AppID, Audience: jwt.ClaimStrings{endpoint}, ID: "jti-1",
		ExpiresAt: jwt.NewNumericDate(now.Add(10 * time.Minute)),
	})
	assertion.Header["x5t#S256"] = base64.RawURLEncoding.EncodeToString(sum[:])
	signed, err := assertion.SignedString(key)
	if err != nil {
		f.Fatal(err)
	}
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	scope := fuzzBase + "/.default"
	f.Add(tid, form("grant_type", "client_credentials", "client_id", p.AppID, "client_secret", secret, "scope", scope))
	f.Add(tid, form("grant_type", "client_credentials", "client_id", p.AppID, "scope", scope+" openid profile",
		"client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion", signed))
	f.Add(tid, form("grant_type", "client_credentials", "client_id", p.AppID, "client_secret", "wrong", "scope", scope))
	f.Add(tid, "grant_type=client_credentials&grant_type=client_credentials")
	f.Add("common", "%zz=1")

	f.Fuzz(func(t *testing.T, tenant, body string) {
		// A fresh service per input: the failure throttle and the assertion replay cache
		// would otherwise answer every later input alike.
		svc := New(tenants, signer, fuzzResources{}, time.Hour, clock)
		req := httptest.NewRequest("POST", "/x", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetPathValue("tenant", tenant)
		w := httptest.NewRecorder()
		svc.token(w, req)
		var out struct {
			Error       string `json:"error"`
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("status %d with a body that is not JSON: %q", w.Code, w.Body.Bytes())
		}
		switch w.Code {
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusTooManyRequests:
			if out.Error == "" || out.AccessToken != "" {
				t.Fatalf("status %d body %s; want an OAuth2 error", w.Code, w.Body.Bytes())
			}
		case http.StatusOK:
			q, _ := url.ParseQuery(body)
			if tenant != tid || q.Get("client_id") != p.AppID || q.Get("client_secret") != secret && q.Get("client_assertion") == "" {
				t.Fatalf("a token was issued for tenant %q, form %q", tenant, body)
			}
			claims, err := token.Validator{}.Validate(out.AccessToken, token.Expect{Issuers: []string{fuzzResources{}.Issuer(tid)},
				Audiences: []string{fuzzBase}, TenantID: tid, Now: now, Keys: signer.KeySet()})
			if err != nil || claims.ObjectID != p.ObjectID {
				t.Fatalf("the issued token does not validate for the principal: %v", err)
			}
		default:
			t.Fatalf("status %d (%s); want 200, 400, 401 or 429", w.Code, w.Body.Bytes())
		}
	})
}
