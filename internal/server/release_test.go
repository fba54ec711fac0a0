package server

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/coffer-kms/coffer/internal/attest"
	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/byok"
	"github.com/coffer-kms/coffer/internal/identity/token"
	"github.com/coffer-kms/coffer/internal/mgmt"
	"github.com/coffer-kms/coffer/internal/storage/mem"
)

// skrPolicy is a release policy for sim TEEs of one measurement, attested by authority.
func skrPolicy(authority string, measurement byte) []byte {
	return []byte(`{"version":"1.0.0","anyOf":[{"authority":"` + authority + `","allOf":[` +
		`{"claim":"x-ms-attestation-type","equals":"sim"},` +
		`{"claim":"x-ms-sim-launchmeasurement","equals":"` + strings.Repeat(hexOf([]byte{measurement}), 48) + `"}]}]}`)
}

// attestToken asks provider uri for a token for sim evidence of measurement m binding rt.
func attestToken(t *testing.T, ts *testServer, uri string, key *ecdsa.PrivateKey, m byte, rt []byte) string {
	t.Helper()
	st, raw := ts.post(t, uri+"/attest/sim?api-version=2022-08-01", simBody(t, key, m, rt, rt))
	var resp attest.Response
	if st != 200 || json.Unmarshal(raw, &resp) != nil || resp.Token == "" {
		t.Fatalf("attest = %d %s", st, raw)
	}
	return resp.Token
}

// releasedKey verifies a release result with the provider's published keys and opens the
// wrapped key with the TEE's runtime key.
func releasedKey(t *testing.T, ts *testServer, certsURL, jws string, tee *rsa.PrivateKey, h crypto.Hash) (crypto.PrivateKey, map[string]any) {
	t.Helper()
	jwks, err := token.ParseJWKS(ts.get(t, certsURL))
	if err != nil {
		t.Fatal(err)
	}
	claims, err := token.VerifyClaims(jws, jwks)
	if err != nil {
		t.Fatalf("the release result does not verify with %s: %v", certsURL, err)
	}
	jwk := claims["response"].(map[string]any)["key"].(map[string]any)["key"].(map[string]any)
	for _, m := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
		if _, ok := jwk[m]; ok {
			t.Fatalf("the released JWK has the private member %q in clear", m)
		}
	}
	rawBlob, err := base64.RawURLEncoding.DecodeString(jwk["key_hsm"].(string))
	if err != nil {
		t.Fatal(err)
	}
	var blob byok.Blob
	if err := json.Unmarshal(rawBlob, &blob); err != nil {
		t.Fatal(err)
	}
	ct, _ := base64.RawURLEncoding.DecodeString(blob.Ciphertext)
	der, err := byok.Open(tee, h, ct)
	if err != nil {
		t.Fatalf("the TEE cannot open the released key: %v", err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	return priv, claims
}

func TestSecureKeyRelease(t *testing.T) {
	ts := startDev(t)
	ts.client = loopbackClient(t, ts.caFile)
	ctx := context.Background()
	tc, tok := newTenant(t, ts, "Contoso")
	var prov mgmt.AttestationProviderDTO
	ts.mjson(t, "PUT", "/v1/tenants/"+tc.Tenant.ID+"/attestationProviders/teeprov", tok,
		map[string]any{"policy": map[string]any{"types": []string{"sim"}}}, 201, &prov) // any measurement gets a token
	simKey := devSimKey(t, ts)
	tee, rt := teeRuntime(t)
	kc := keysClient(t, ts)

	create := func(name string, exportable bool, policy []byte) azkeys.JSONWebKey {
		t.Helper()
		p := azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC), Curve: to.Ptr(azkeys.CurveNameP256),
			KeyAttributes: &azkeys.KeyAttributes{Exportable: to.Ptr(exportable)}}
		if policy != nil {
			p.ReleasePolicy = &azkeys.KeyReleasePolicy{EncodedPolicy: policy}
		}
		resp, err := kc.CreateKey(ctx, name, p, nil)
		if err != nil {
			t.Fatalf("CreateKey(%s) = %v", name, err)
		}
		return *resp.Key
	}
	pub := create("skr", true, skrPolicy(prov.URI, 0x0a))
	create("plain", false, skrPolicy(prov.URI, 0x0a))
	create("elsewhere", true, skrPolicy("https://maa.untrusted.example", 0x0a))

	// A policy that does not parse is refused at create time.
	_, err := kc.CreateKey(ctx, "badpolicy", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC),
		KeyAttributes: &azkeys.KeyAttributes{Exportable: to.Ptr(true)}, ReleasePolicy: &azkeys.KeyReleasePolicy{EncodedPolicy: []byte(`{"version":"1.0.0","anyOf":[]}`)}}, nil)
	wantCode(t, err, 400, "BadParameter")

	// Allowed measurement: released, opened by the TEE, and it is the vault key.
	good := attestToken(t, ts, prov.URI, simKey, 0x0a, rt)
	resp, err := kc.Release(ctx, "skr", "", azkeys.ReleaseParameters{TargetAttestationToken: to.Ptr(good)}, nil)
	if err != nil {
		t.Fatalf("Release = %v", err)
	}
	priv, claims := releasedKey(t, ts, prov.URI+"/certs", *resp.Value, tee, crypto.SHA1)
	if !strings.HasPrefix(claims["iss"].(string), ts.Dev.Credentials.VaultURL[:len(ts.Dev.Credentials.VaultURL)-1]) {
		t.Errorf("release result iss = %v", claims["iss"])
	}
	digest := sha256.Sum256([]byte("released inside the TEE"))
	sig, err := ecdsa.SignASN1(rand.Reader, priv.(*ecdsa.PrivateKey), digest[:])
	if err != nil {
		t.Fatal(err)
	}
	vk := &ecdsa.PublicKey{Curve: priv.(*ecdsa.PrivateKey).Curve, X: new(big.Int).SetBytes(pub.X), Y: new(big.Int).SetBytes(pub.Y)}
	if !ecdsa.VerifyASN1(vk, digest[:], sig) {
		t.Error("a signature by the released key does not verify with the vault key's public JWK")
	}
	// The other wrapping algorithms, with a matching nonce, on an explicit version.
	version := pub.KID.Version()
	resp, err = kc.Release(ctx, "skr", version, azkeys.ReleaseParameters{TargetAttestationToken: to.Ptr(good), Algorithm: to.Ptr(azkeys.KeyEncryptionAlgorithmRSAAESKEYWRAP384)}, nil)
	if err != nil {
		t.Fatalf("Release(RSA_AES_KEY_WRAP_384) = %v", err)
	}
	releasedKey(t, ts, prov.URI+"/certs", *resp.Value, tee, crypto.SHA384)

	// Refusals: 4xx in Key Vault's shape, nothing released.
	tampered := attestToken(t, ts, prov.URI, simKey, 0x0b, rt)
	expired := expiredToken(t, ts, good)
	parts := strings.Split(good, ".")
	var payload map[string]any
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(raw, &payload)
	_, otherRT := teeRuntime(t)
	var otherRuntime map[string]any
	_ = json.Unmarshal(otherRT, &otherRuntime)
	payload["x-ms-runtime"] = otherRuntime
	swapped, _ := json.Marshal(payload)
	swappedKey := parts[0] + "." + base64.RawURLEncoding.EncodeToString(swapped) + "." + parts[2]
	foreign := foreignToken(t, payload)

	noRelease := noReleaseClient(t, ts)
	for _, tc := range []struct {
		name, key, target, nonce string
		client                   *azkeys.Client
		status                   int
		code                     string
	}{
		{"tampered-measurement", "skr", tampered, "", kc, 403, "Forbidden"},
		{"expired-token", "skr", expired, "", kc, 403, "Forbidden"},
		{"untrusted-authority-in-policy", "elsewhere", good, "", kc, 403, "Forbidden"},
		{"token-signed-by-another-authority", "skr", foreign, "", kc, 403, "Forbidden"},
		{"token-carrying-another-runtime-key", "skr", swappedKey, "", kc, 403, "Forbidden"},
		{"nonce-mismatch", "skr", good, "not-the-token-nonce", kc, 403, "Forbidden"},
		{"non-exportable-key", "plain", good, "", kc, 403, "Forbidden"},
		{"caller-without-release-role", "skr", good, "", noRelease, 403, "Forbidden"},
		{"no-such-key", "nokey", good, "", kc, 404, "KeyNotFound"},
		{"garbage-token", "skr", "a.b.c", "", kc, 403, "Forbidden"},
	} {
		t.Run("fail/"+tc.name, func(t *testing.T) {
			p := azkeys.ReleaseParameters{TargetAttestationToken: to.Ptr(tc.target)}
			if tc.nonce != "" {
				p.Nonce = to.Ptr(tc.nonce)
			}
			resp, err := tc.client.Release(ctx, tc.key, "", p, nil)
			if resp.Value != nil {
				t.Fatalf("Release released a value")
			}
			wantCode(t, err, tc.status, tc.code)
		})
	}
	// Malformed bodies: 400, never 5xx.
	hc := loopbackClient(t, ts.caFile)
	bearer := tokenFor(t, hc, ts.resources().Base(), ts.Dev.Credentials.TenantID, ts.Dev.Credentials.ClientID, ts.Dev.Credentials.ClientSecret)
	for _, body := range []string{``, `{}`, `{"target":""}`, `{"target":5}`, `{"target":"x","enc":"RSA-OAEP"}`, `{"target":"x","extra":1}`,
		`{"target":"` + strings.Repeat("a", 40<<10) + `"}`, `{"target":"x","nonce":"` + strings.Repeat("n", 300) + `"}`, `[`, `{"target":"x"}{}`} {
		st, out := rawRelease(t, hc, ts.Dev.Credentials.VaultURL+"keys/skr/release?api-version=7.6", bearer, body)
		if st < 400 || st >= 500 {
			t.Errorf("release body %.40q = %d %s; want 4xx", body, st, out)
		}
	}

	log := readAudit(t, ts)
	for _, want := range []string{`"op":"KeyRelease"`, `granted: conditions of authority`, `denied: release policy not satisfied`, `x-ms-sim-launchmeasurement`, `not exportable`, `expired`} {
		if !strings.Contains(log, want) {
			t.Errorf("the audit log lacks %q", want)
		}
	}
	if strings.Contains(log, strings.Repeat("0a", 48)) || strings.Contains(log, good[:40]) {
		t.Error("the audit log holds claim values or the token")
	}
}

// expiredToken re-signs good's claims with the attestation signer's key but a clock two hours
// back, so its exp has passed.
func expiredToken(t *testing.T, ts *testServer, good string) string {
	t.Helper()
	past := func() time.Time { return time.Now().Add(-2 * time.Hour) }
	sig, err := token.NewSigner(ts.barrier, attestSigningKeyPath, past, attestTokenLifetime)
	if err != nil {
		t.Fatal(err)
	}
	return resign(t, sig, good)
}

// resign signs good's claims again with sig (which sets iat, nbf, exp and jti itself).
func resign(t *testing.T, sig *token.Signer, good string) string {
	t.Helper()
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(good, ".")[1])
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"iat", "nbf", "exp", "jti"} {
		delete(c, k)
	}
	out, err := sig.SignClaims(c)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// foreignToken is a well-formed token with the provider's iss and claims, signed by a key the
// provider never published.
func foreignToken(t *testing.T, claims map[string]any) string {
	t.Helper()
	sig, err := token.NewSigner(mem.New(), "k", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	return resign(t, sig, "x."+base64.RawURLEncoding.EncodeToString(b)+".x")
}

// noReleaseClient is an azkeys client of a principal with Key Vault Crypto User (every key
// operation but release) on the dev vault.
func noReleaseClient(t *testing.T, ts *testServer) *azkeys.Client {
	t.Helper()
	ctx := context.Background()
	c := ts.Dev.Credentials
	sp, secret, err := ts.tenants.CreateServicePrincipal(ctx, c.TenantID, "no-release")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.tenants.CreateRoleAssignment(ctx, authz.Assignment{PrincipalID: sp.ObjectID, TenantID: c.TenantID,
		RoleDefinitionID: mustRole("Key Vault Crypto User"), Scope: "/tenants/" + c.TenantID + "/vaults/" + ts.devVault.Name}); err != nil {
		t.Fatal(err)
	}
	cred, hc := principalCredential(t, ts, sp.AppID, secret)
	kc, err := azkeys.NewClient(c.VaultURL, cred, &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: hc}})
	if err != nil {
		t.Fatal(err)
	}
	// The principal can use the key otherwise, so the 403 is about release.
	if _, err := kc.GetKey(ctx, "skr", "", nil); err != nil {
		var re *azcore.ResponseError
		if !errors.As(err, &re) || re.StatusCode != 404 {
			t.Fatalf("GetKey as Crypto User = %v", err)
		}
	}
	return kc
}

// rawRelease posts body to a release URL with a bearer token.
func rawRelease(t *testing.T, hc *http.Client, url, bearer, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestSecureKeyReleaseExternalAuthority: a token of an authority listed in
// --skr-trusted-authorities verifies with the keys its OpenID metadata names; the same
// authority unlisted verifies nothing.
func TestSecureKeyReleaseExternalAuthority(t *testing.T) {
	maa, err := token.NewSigner(mem.New(), "maa", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var issuer string
	ext := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "jwks_uri": issuer + "/certs"})
		case "/certs":
			b, _ := maa.JWKS()
			w.Write(b)
		default:
			http.NotFound(w, r)
		}
	}))
	defer ext.Close()
	issuer = ext.URL
	ts := startDev(t, "--skr-trusted-authorities", issuer)
	ts.ExternalHTTPClient = ext.Client()
	ctx := context.Background()
	tee, rt := teeRuntime(t)
	var runtime map[string]any
	_ = json.Unmarshal(rt, &runtime)
	tok, err := maa.SignClaims(map[string]any{"iss": issuer, "x-ms-attestation-type": "sevsnpvm", "x-ms-compliance-status": "azure-compliant-cvm", "x-ms-runtime": runtime})
	if err != nil {
		t.Fatal(err)
	}
	policy := func(authority string) []byte {
		return []byte(`{"version":"1.0.2","anyOf":[{"authority":"` + authority + `","allOf":[{"claim":"x-ms-compliance-status","equals":"azure-compliant-cvm"}]}]}`)
	}
	kc := keysClient(t, ts)
	for name, authority := range map[string]string{"trusted": issuer, "unlisted": strings.Replace(issuer, "127.0.0.1", "localhost", 1)} {
		if _, err := kc.CreateKey(ctx, name, azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC), KeyAttributes: &azkeys.KeyAttributes{Exportable: to.Ptr(true)},
			ReleasePolicy: &azkeys.KeyReleasePolicy{EncodedPolicy: policy(authority)}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := kc.Release(ctx, "trusted", "", azkeys.ReleaseParameters{TargetAttestationToken: to.Ptr(tok)}, nil)
	if err != nil {
		t.Fatalf("Release with a trusted external authority = %v", err)
	}
	ts.client = loopbackClient(t, ts.caFile)
	var prov mgmt.AttestationProviderDTO
	tc, mtok := newTenant(t, ts, "Contoso")
	ts.mjson(t, "PUT", "/v1/tenants/"+tc.Tenant.ID+"/attestationProviders/certsonly", mtok, nil, 201, &prov)
	releasedKey(t, ts, prov.URI+"/certs", *resp.Value, tee, crypto.SHA1)
	_, err = kc.Release(ctx, "unlisted", "", azkeys.ReleaseParameters{TargetAttestationToken: to.Ptr(tok)}, nil)
	wantCode(t, err, 403, "Forbidden")
}
