package token

import (
	"context"
	"crypto/elliptic"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// oidcServer is a loopback OpenID provider over real TLS: a discovery document and a JWKS,
// both replaceable, with request counters.
type oidcServer struct {
	srv       *httptest.Server
	discoHits atomic.Int32
	jwksHits  atomic.Int32

	mu    sync.Mutex
	disco string // discovery document; "" means the default
	jwks  []byte
	fail  bool // answer 500 to everything
	extra map[string]http.HandlerFunc
}

func newOIDCServer(t *testing.T, jwks []byte) *oidcServer {
	t.Helper()
	o := &oidcServer{jwks: jwks, extra: map[string]http.HandlerFunc{}}
	o.srv = httptest.NewUnstartedServer(http.HandlerFunc(o.serve))
	o.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted-client case logs handshake errors
	o.srv.StartTLS()
	t.Cleanup(o.srv.Close)
	return o
}

func (o *oidcServer) serve(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	disco, jwks, fail, h := o.disco, o.jwks, o.fail, o.extra[r.URL.Path]
	o.mu.Unlock()
	switch {
	case fail:
		http.Error(w, "down", http.StatusInternalServerError)
	case h != nil:
		h(w, r)
	case r.URL.Path == "/.well-known/openid-configuration":
		o.discoHits.Add(1)
		if disco == "" {
			disco = `{"issuer":"` + o.srv.URL + `","jwks_uri":"` + o.srv.URL + `/keys"}`
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(disco))
	case r.URL.Path == "/keys":
		o.jwksHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	default:
		http.NotFound(w, r)
	}
}

func (o *oidcServer) set(f func(o *oidcServer)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	f(o)
}

func TestRemoteKeySetFetch(t *testing.T) {
	ecKey := ecJWKMap(t, elliptic.P256(), "ec-1")
	goodJWKS := jwksOf(t, ecKey)
	redirectTo := func(path string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, path, http.StatusFound) }
	}
	tests := []struct {
		name    string
		setup   func(o *oidcServer)
		issuer  func(o *oidcServer) string // default: the server's URL
		client  func(o *oidcServer) *http.Client
		wantKID string // "" means the fetch must fail and no key be found
		notKID  string // a kid that must not be found
	}{
		{name: "ok/valid", wantKID: "ec-1"},
		{name: "ok/weak-rsa-1024-dropped",
			setup:   func(o *oidcServer) { o.jwks = jwksOf(t, ecKey, rsaJWK("weak", &rsa1024().PublicKey, "RS256")) },
			wantKID: "ec-1", notKID: "weak"},
		{name: "ok/issuer-trailing-slash-configured",
			setup:   func(o *oidcServer) { o.disco = `{"issuer":"` + o.srv.URL + `/","jwks_uri":"` + o.srv.URL + `/keys"}` },
			issuer:  func(o *oidcServer) string { return o.srv.URL + "/" },
			wantKID: "ec-1"},
		{name: "fail/issuer-mismatch",
			setup: func(o *oidcServer) { o.disco = `{"issuer":"https://evil.test","jwks_uri":"` + o.srv.URL + `/keys"}` }},
		{name: "fail/issuer-trailing-slash-variant",
			setup: func(o *oidcServer) { o.disco = `{"issuer":"` + o.srv.URL + `/","jwks_uri":"` + o.srv.URL + `/keys"}` }},
		{name: "fail/issuer-missing",
			setup: func(o *oidcServer) { o.disco = `{"jwks_uri":"` + o.srv.URL + `/keys"}` }},
		{name: "fail/jwks-uri-other-host",
			setup: func(o *oidcServer) {
				o.disco = `{"issuer":"` + o.srv.URL + `","jwks_uri":"` + strings.Replace(o.srv.URL, "127.0.0.1", "localhost", 1) + `/keys"}`
			}},
		{name: "fail/jwks-uri-other-port",
			setup: func(o *oidcServer) { o.disco = `{"issuer":"` + o.srv.URL + `","jwks_uri":"https://127.0.0.1:1/keys"}` }},
		{name: "fail/jwks-uri-http",
			setup: func(o *oidcServer) {
				o.disco = `{"issuer":"` + o.srv.URL + `","jwks_uri":"` + strings.Replace(o.srv.URL, "https:", "http:", 1) + `/keys"}`
			}},
		{name: "fail/jwks-uri-userinfo",
			setup: func(o *oidcServer) {
				o.disco = `{"issuer":"` + o.srv.URL + `","jwks_uri":"` + strings.Replace(o.srv.URL, "https://", "https://u:p@", 1) + `/keys"}`
			}},
		{name: "fail/jwks-300KB",
			setup: func(o *oidcServer) { o.jwks = []byte(`{"keys":[],"pad":"` + strings.Repeat("p", 300<<10) + `"}`) }},
		{name: "fail/jwks-10000-keys",
			setup: func(o *oidcServer) { o.jwks = []byte(`{"keys":[` + strings.Repeat(`{},`, 9999) + `{}]}`) }},
		{name: "fail/discovery-300KB",
			setup: func(o *oidcServer) { o.disco = `{"pad":"` + strings.Repeat("p", 300<<10) + `"}` }},
		{name: "fail/discovery-redirect",
			setup: func(o *oidcServer) {
				o.extra["/.well-known/openid-configuration"] = redirectTo("/real")
				o.extra["/real"] = func(w http.ResponseWriter, r *http.Request) {
					_, _ = w.Write([]byte(`{"issuer":"` + o.srv.URL + `","jwks_uri":"` + o.srv.URL + `/keys"}`))
				}
			}},
		{name: "fail/jwks-redirect",
			setup: func(o *oidcServer) {
				o.disco = `{"issuer":"` + o.srv.URL + `","jwks_uri":"` + o.srv.URL + `/moved"}`
				o.extra["/moved"] = redirectTo("/keys")
			}},
		{name: "fail/discovery-not-json", setup: func(o *oidcServer) { o.disco = `<html>` }},
		{name: "fail/jwks-not-json", setup: func(o *oidcServer) { o.jwks = []byte(`<html>`) }},
		{name: "fail/server-error", setup: func(o *oidcServer) { o.fail = true }},
		{name: "fail/issuer-http", issuer: func(o *oidcServer) string { return strings.Replace(o.srv.URL, "https:", "http:", 1) }},
		{name: "fail/issuer-not-url", issuer: func(o *oidcServer) string { return "login.example" }},
		{name: "fail/untrusted-certificate", client: func(o *oidcServer) *http.Client { return &http.Client{} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := newOIDCServer(t, goodJWKS)
			if tc.setup != nil {
				o.set(tc.setup)
			}
			issuer, client := o.srv.URL, o.srv.Client()
			if tc.issuer != nil {
				issuer = tc.issuer(o)
			}
			if tc.client != nil {
				client = tc.client(o)
			}
			rks := NewRemoteKeySet(issuer, client, RemoteOptions{Now: newClock().Now})
			err := rks.Refresh(context.Background())
			_, found := rks.Lookup("ec-1")
			if tc.wantKID == "" {
				if err == nil || found {
					t.Errorf("Refresh = %v, Lookup found %v; want an error and nothing found", err, found)
				}
				return
			}
			if err != nil || !found {
				t.Fatalf("Refresh = %v, Lookup(%q) found %v; want nil, true", err, tc.wantKID, found)
			}
			if tc.notKID != "" {
				if _, ok := rks.Lookup(tc.notKID); ok {
					t.Errorf("Lookup(%q) found a key that must be dropped", tc.notKID)
				}
			}
		})
	}
}

func TestRemoteKeySetRefreshRateLimit(t *testing.T) {
	o := newOIDCServer(t, jwksOf(t, ecJWKMap(t, elliptic.P256(), "k1")))
	clk := newClock()
	rks := NewRemoteKeySet(o.srv.URL, o.srv.Client(), RemoteOptions{Now: clk.Now})

	if _, ok := rks.Lookup("k1"); !ok {
		t.Fatal("Lookup(k1) = false; want the first Lookup to fetch")
	}
	// A flood of unknown kids within MinRefresh fetches nothing more.
	for i := range 100 {
		if _, ok := rks.Lookup("unknown-" + string(rune('a'+i%26))); ok {
			t.Fatal("Lookup(unknown) = true")
		}
		clk.Advance(500 * time.Millisecond) // 50 s in all
	}
	if n := o.jwksHits.Load(); n != 1 {
		t.Errorf("JWKS fetches after 100 unknown kids in 50 s = %d; want 1", n)
	}
	clk.Advance(9 * time.Second) // 59 s after the fetch
	rks.Lookup("unknown")
	if n := o.jwksHits.Load(); n != 1 {
		t.Errorf("JWKS fetches 59 s after the first = %d; want 1", n)
	}
	// The issuer rotates; one minute after the last fetch an unknown kid fetches again.
	o.set(func(o *oidcServer) {
		o.jwks = jwksOf(t, ecJWKMap(t, elliptic.P256(), "k1"), ecJWKMap(t, elliptic.P256(), "k2"))
	})
	clk.Advance(time.Second)
	if _, ok := rks.Lookup("k2"); !ok {
		t.Errorf("Lookup(k2) after MinRefresh = false; want the new key")
	}
	if n := o.jwksHits.Load(); n != 2 {
		t.Errorf("JWKS fetches = %d; want 2", n)
	}
	// Known kids never fetch while the set is younger than MaxAge.
	for range 100 {
		rks.Lookup("k1")
	}
	if n := o.jwksHits.Load(); n != 2 || o.discoHits.Load() != 2 {
		t.Errorf("fetches after known-kid lookups = %d JWKS, %d discovery; want 2, 2", n, o.discoHits.Load())
	}
}

func TestRemoteKeySetConcurrentLookupsShareOneFetch(t *testing.T) {
	o := newOIDCServer(t, jwksOf(t, ecJWKMap(t, elliptic.P256(), "k1")))
	release := make(chan struct{})
	o.set(func(o *oidcServer) {
		o.extra["/.well-known/openid-configuration"] = func(w http.ResponseWriter, r *http.Request) {
			o.discoHits.Add(1)
			<-release
			_, _ = w.Write([]byte(`{"issuer":"` + o.srv.URL + `","jwks_uri":"` + o.srv.URL + `/keys"}`))
		}
	})
	rks := NewRemoteKeySet(o.srv.URL, o.srv.Client(), RemoteOptions{Now: newClock().Now})
	var wg sync.WaitGroup
	var found atomic.Int32
	for range 20 {
		wg.Go(func() {
			if _, ok := rks.Lookup("k1"); ok {
				found.Add(1)
			}
		})
	}
	close(release)
	wg.Wait()
	if found.Load() != 20 || o.discoHits.Load() != 1 || o.jwksHits.Load() != 1 {
		t.Errorf("20 concurrent Lookups: %d found, %d discovery and %d JWKS fetches; want 20, 1, 1",
			found.Load(), o.discoHits.Load(), o.jwksHits.Load())
	}
}

func TestRemoteKeySetKeepsLastGoodSet(t *testing.T) {
	o := newOIDCServer(t, jwksOf(t, ecJWKMap(t, elliptic.P256(), "k1")))
	clk := newClock()
	rks := NewRemoteKeySet(o.srv.URL, o.srv.Client(), RemoteOptions{Now: clk.Now})
	if _, ok := rks.Lookup("k1"); !ok {
		t.Fatal("Lookup(k1) = false")
	}
	o.set(func(o *oidcServer) { o.fail = true })

	// Past MaxAge a refresh is tried; it fails and the last good set is still used.
	clk.Advance(2 * time.Hour)
	if _, ok := rks.Lookup("k1"); !ok {
		t.Errorf("Lookup(k1) after a failed refresh = false; want the last good set")
	}
	if err := rks.Refresh(context.Background()); err == nil {
		t.Errorf("Refresh against a failing issuer = nil; want an error")
	}
	// A broken JWKS does not replace the good set either.
	o.set(func(o *oidcServer) { o.fail, o.jwks = false, []byte(`{"keys":`) })
	if err := rks.Refresh(context.Background()); err == nil {
		t.Errorf("Refresh with a truncated JWKS = nil; want an error")
	}
	if _, ok := rks.Lookup("k1"); !ok {
		t.Errorf("Lookup(k1) after a bad JWKS = false; want the last good set")
	}
	// Staleness is bounded: past MaxStale the old set is no longer trusted.
	clk.Advance(23 * time.Hour)
	if _, ok := rks.Lookup("k1"); ok {
		t.Errorf("Lookup(k1) 25 h after the last good fetch = true; want false")
	}
	// The issuer recovers: the next allowed refresh restores it.
	o.set(func(o *oidcServer) { o.jwks = jwksOf(t, ecJWKMap(t, elliptic.P256(), "k1")) })
	clk.Advance(time.Minute)
	if _, ok := rks.Lookup("k1"); !ok {
		t.Errorf("Lookup(k1) after the issuer recovered = false")
	}
}

func TestValidateWithRemoteKeySet(t *testing.T) {
	f := newFixture(t)
	o := newOIDCServer(t, jwksOf(t, rsaJWK("ext-1", &f.rsaPriv.PublicKey, "RS256")))
	rks := NewRemoteKeySet(o.srv.URL, o.srv.Client(), RemoteOptions{Now: f.clk.Now})
	raw := compact(`{"alg":"RS256","kid":"ext-1","typ":"JWT"}`, f.claims(map[string]any{"iss": o.srv.URL}), rs256(f.rsaPriv))
	exp := Expect{Issuers: []string{o.srv.URL}, Audiences: []string{testAudience}, Now: f.clk.Now(), Keys: rks}
	if _, err := (Validator{}).Validate(raw, exp); err != nil {
		t.Errorf("Validate(token of an external issuer) = %v", err)
	}
	// The key was published for RS256 only: PS256 with the same key is refused.
	raw = compact(`{"alg":"PS256","kid":"ext-1"}`, f.claims(map[string]any{"iss": o.srv.URL}), ps256(f.rsaPriv))
	if _, err := (Validator{}).Validate(raw, exp); err == nil {
		t.Errorf("Validate(PS256 with an RS256-only key) = nil; want an error")
	}
}
