package server

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
	"io"
	"math/big"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingListener accepts TCP connections on 127.0.0.1 and counts them, closing each at
// once: whatever a server fetched from it, the connection is counted.
func countingListener(t *testing.T) (url string, conns *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	conns = new(atomic.Int32)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	return "https://" + l.Addr().String(), conns
}

// attackerToken is a compact ES256 JWS over header and claims, signed by key: valid under
// the key the header embeds or points at, and under no key of this server.
func attackerToken(t *testing.T, key *ecdsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	hb, _ := json.Marshal(header)
	cb, _ := json.Marshal(claims)
	input := b64u(hb) + "." + b64u(cb)
	d := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, d[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64u(sig)
}

// TestTokenVariantsOverHTTPS is the server half of the §4 "JWT" figure (the validator half is
// TestValidateAttacks and TestWycheproofJWS in internal/identity/token): SECURITY-NOTES
// A1–A13 token and header variants, plus tokens signed by an attacker's key whose jku, x5u,
// jwk, x5c, kid, iss and aud point at a loopback listener, each sent to a vault, a managed
// HSM pool and the management API. Every one must be refused with 401 and the challenge, and
// the listener must see no connection: no token content makes Coffer fetch anything.
func TestTokenVariantsOverHTTPS(t *testing.T) {
	ts := startDev(t, "--auth-failure-limit", "0") // its 180 refused tokens come from one address (TestAuthFailureLimit covers the limit)
	hc := loopbackClient(t, ts.caFile)
	port := ts.resources().port
	dev := ts.Dev.Credentials
	evil, conns := countingListener(t)
	vaultRes, hsmRes := ts.resources().Base(), "https://managedhsm.localhost:"+port
	_, tokKV := rawToken(t, ts, hc, dev.TenantID, dev.ClientID, dev.ClientSecret, vaultRes)
	_, tokHSM := rawToken(t, ts, hc, dev.TenantID, dev.ClientID, dev.ClientSecret, hsmRes)

	resp, err := hc.Get(vaultRes + "/" + dev.TenantID + "/discovery/v2.0/keys")
	if err != nil {
		t.Fatal(err)
	}
	var jwks struct {
		Keys []struct {
			Kid string `json:"kid"`
			X   string `json:"x"`
		} `json:"keys"`
	}
	json.NewDecoder(resp.Body).Decode(&jwks)
	resp.Body.Close()
	if len(jwks.Keys) == 0 {
		t.Fatal("the JWKS has no keys")
	}
	kid := jwks.Keys[0].Kid

	// Tokens signed by the attacker, every key-choosing header and URL-valued claim pointing
	// at the listener.
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	x, y := attacker.X.FillBytes(make([]byte, 32)), attacker.Y.FillBytes(make([]byte, 32))
	jwk := map[string]any{"kty": "EC", "crv": "P-256", "x": b64u(x), "y": b64u(y), "kid": "attacker"}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "attacker"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &attacker.PublicKey, attacker)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	claims := func(iss, aud string) map[string]any {
		return map[string]any{"iss": iss, "aud": aud, "tid": dev.TenantID, "oid": dev.ObjectID, "appid": dev.ClientID,
			"sub": dev.ObjectID, "iat": now, "nbf": now, "exp": now + 600, "ver": "2.0"}
	}
	ours := ts.resources().Issuer(dev.TenantID)
	evilIss := evil + "/" + dev.TenantID + "/v2.0"
	signed := map[string]func(aud string) string{
		"jku": func(aud string) string {
			return attackerToken(t, attacker, map[string]any{"alg": "ES256", "kid": "attacker", "jku": evil + "/jwks"}, claims(ours, aud))
		},
		"x5u": func(aud string) string {
			return attackerToken(t, attacker, map[string]any{"alg": "ES256", "kid": "attacker", "x5u": evil + "/cert.pem"}, claims(ours, aud))
		},
		"jwk": func(aud string) string {
			return attackerToken(t, attacker, map[string]any{"alg": "ES256", "kid": "attacker", "jwk": jwk}, claims(ours, aud))
		},
		"x5c": func(aud string) string {
			return attackerToken(t, attacker, map[string]any{"alg": "ES256", "kid": "attacker", "x5c": []string{base64.StdEncoding.EncodeToString(certDER)}}, claims(ours, aud))
		},
		"kid-is-url": func(aud string) string {
			return attackerToken(t, attacker, map[string]any{"alg": "ES256", "kid": evil + "/jwks#k1"}, claims(ours, aud))
		},
		"our-kid": func(aud string) string {
			return attackerToken(t, attacker, map[string]any{"alg": "ES256", "kid": kid}, claims(ours, aud))
		},
		"iss-untrusted": func(aud string) string {
			return attackerToken(t, attacker, map[string]any{"alg": "ES256", "kid": "attacker"}, claims(evilIss, aud))
		},
		"iss-bare-url": func(aud string) string {
			return attackerToken(t, attacker, map[string]any{"alg": "ES256", "kid": "attacker"}, claims(evil, aud))
		},
		"iss-and-jku": func(aud string) string {
			return attackerToken(t, attacker, map[string]any{"alg": "ES256", "kid": "attacker", "jku": evil + "/jwks"}, claims(evilIss, aud))
		},
		"iss-and-jwk": func(aud string) string {
			return attackerToken(t, attacker, map[string]any{"alg": "ES256", "kid": "attacker", "jwk": jwk}, claims(evilIss, aud))
		},
		"iss-unknown-kid": func(aud string) string {
			return attackerToken(t, attacker, map[string]any{"alg": "ES256", "kid": "k-" + b64u(randBytes(8))}, claims(evilIss, aud))
		},
		"aud-is-listener": func(string) string {
			return attackerToken(t, attacker, map[string]any{"alg": "ES256", "kid": "attacker", "jku": evil}, claims(ours, evil))
		},
		"iss-with-x5u": func(aud string) string {
			return attackerToken(t, attacker, map[string]any{"alg": "ES256", "kid": "attacker", "x5u": evil}, claims(evilIss, aud))
		},
		"iss-other-tenant": func(aud string) string {
			return attackerToken(t, attacker, map[string]any{"alg": "ES256", "kid": "attacker", "jku": evil}, claims(evil+"/11111111-2222-4333-8444-555555555555/v2.0", aud))
		},
	}

	type target struct {
		name, url, tok, aud string
	}
	targets := []target{
		{"vault", "https://dev.localhost:" + port + "/keys?api-version=7.6", tokKV, vaultRes},
		{"pool", "https://devhsm.managedhsm.localhost:" + port + "/keys?api-version=7.6", tokHSM, hsmRes},
		{"management", vaultRes + "/v1/tenants/" + dev.TenantID, tokKV, vaultRes},
	}
	var sent, refused int
	variants := map[string]bool{}
	for _, tg := range targets {
		headers := map[string][]string{}
		// A1: how the bearer is carried.
		headers["a1/no-header"] = nil
		headers["a1/empty-bearer"] = []string{"Bearer "}
		headers["a1/bare-scheme"] = []string{"Bearer"}
		headers["a1/basic"] = []string{"Basic dXNlcjpwYXNz"}
		headers["a1/two-headers"] = []string{"Bearer " + tg.tok, "Bearer " + tg.tok}
		headers["a1/pop"] = []string{"PoP " + tg.tok}
		headers["a1/lower-case-scheme-garbage"] = []string{"bearer x.y.z"}
		// A2–A13: variants of the valid token (forgedTokens, shared with the barrage).
		for name, raw := range forgedTokens(tg.tok, []byte(jwks.Keys[0].X)) {
			headers["forged/"+name] = []string{"Bearer " + raw}
		}
		// A5: a token of this server for another audience.
		other := tokHSM
		if tg.tok == tokHSM {
			other = tokKV
		}
		headers["a5/other-audience"] = []string{"Bearer " + other}
		// A9, A15: signed by the attacker, URLs pointing at the listener.
		for name, mk := range signed {
			headers["a9/"+name] = []string{"Bearer " + mk(tg.aud)}
		}
		names := make([]string, 0, len(headers))
		for n := range headers {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, name := range names {
			req, _ := http.NewRequest("GET", tg.url, nil)
			for _, v := range headers[name] {
				req.Header.Add("Authorization", v)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", tg.name, name, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			sent++
			variants[name] = true
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("%s with %s = %d (challenge %q) %.200s; want 401 with a Bearer challenge", tg.name, name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), b)
				continue
			}
			refused++
		}
		// The control: the valid token is accepted by the same request.
		req, _ := http.NewRequest("GET", tg.url, nil)
		req.Header.Set("Authorization", "Bearer "+tg.tok)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s with the valid token = %d; the refusals above prove nothing", tg.name, resp.StatusCode)
		}
	}
	// A8, A15: an external issuer the tenant trusts is fetched from its configured URL only,
	// and tokens naming unknown kids make at most one refresh a minute, whatever jku says.
	configured, configuredConns := countingListener(t)
	issuer := configured + "/" + dev.TenantID + "/v2.0"
	if _, err := ts.tenants.CreateIssuer(context.Background(), dev.TenantID, issuer, "api://coffer-test"); err != nil {
		t.Fatal(err)
	}
	const unknownKids = 20
	for i := 0; i < unknownKids; i++ {
		h := map[string]any{"alg": "ES256", "kid": "unknown-" + b64u(randBytes(8))}
		if i%2 == 0 {
			h["jku"] = evil + "/jwks" // refused before any key lookup
		}
		raw := attackerToken(t, attacker, h, claims(issuer, "api://coffer-test"))
		req, _ := http.NewRequest("GET", targets[0].url, nil)
		req.Header.Set("Authorization", "Bearer "+raw)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		sent++
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("token of the configured issuer with an unknown kid = %d; want 401", resp.StatusCode)
			continue
		}
		refused++
	}
	// Fetches would be asynchronous at worst: give them a moment to arrive.
	time.Sleep(200 * time.Millisecond)
	if n := conns.Load(); n != 0 {
		t.Errorf("the listener the tokens point at saw %d connections; want 0", n)
	}
	if n := configuredConns.Load(); n > 1 {
		t.Errorf("%d tokens with unknown kids made %d connections to the configured issuer; want at most 1 (one refresh a minute)", unknownKids, n)
	}
	t.Logf("JWT over HTTPS: %d token variants × %d targets + %d unknown kids of a configured issuer = %d requests, %d refused with 401; %d connections to the URLs in the tokens, %d to the configured issuer",
		len(variants), len(targets), unknownKids, sent, refused, conns.Load(), configuredConns.Load())
}
