package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
)

// noRetryKeys is an azkeys client of url without the SDK's retries, which would wait out a
// 429's Retry-After and try again: each call is one request.
func noRetryKeys(t *testing.T, url string, cred azcore.TokenCredential, hc *http.Client) *azkeys.Client {
	t.Helper()
	c, err := azkeys.NewClient(url, cred, &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: hc, Retry: policy.RetryOptions{MaxRetries: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantCreateThrottled checks that err is Key Vault's 429 Throttled with a Retry-After of 1
// to 10 whole seconds (the creation window), and returns it.
func wantCreateThrottled(t *testing.T, what string, err error) int {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusTooManyRequests || re.ErrorCode != "Throttled" {
		t.Fatalf("%s = %v; want 429 Throttled", what, err)
	}
	secs, aerr := strconv.Atoi(re.RawResponse.Header.Get("Retry-After"))
	if aerr != nil || secs < 1 || secs > 10 {
		t.Errorf("%s: Retry-After %q; want 1 to 10 whole seconds", what, re.RawResponse.Header.Get("Retry-After"))
	}
	return secs
}

// TestKeyCreateLimit (SECURITY-NOTES R2): with --key-create-limit 10, ten RSA-2048 creations
// in a vault succeed and the eleventh — and a rotation and a certificate's new key — get
// 429 Throttled with Retry-After, and nothing is stored for them; an import (no key is
// generated), reads and signatures in that vault go on, and another vault of the tenant and
// another tenant's vault create freely. In a fresh vault two EC keys and one RSA-4096 (weight 8) fill the
// bucket of 10 exactly: the next EC creation is refused.
func TestKeyCreateLimit(t *testing.T) {
	ts := startDev(t, "--key-create-limit", "10")
	ctx := context.Background()
	port := ts.resources().port
	cred, hc := devCredential(t, ts, ts.Dev.Credentials.ClientSecret)
	a := noRetryKeys(t, ts.Dev.Credentials.VaultURL, cred, hc)
	rsa2048 := azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr(int32(2048))}
	ec := azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC)}

	for i := range 10 {
		if _, err := a.CreateKey(ctx, fmt.Sprintf("r%d", i), rsa2048, nil); err != nil {
			t.Fatalf("RSA-2048 creation %d of 10: %v", i+1, err)
		}
	}
	_, err := a.CreateKey(ctx, "r10", rsa2048, nil)
	secs := wantCreateThrottled(t, "11th RSA-2048 creation", err)
	_, err = a.GetKey(ctx, "r10", "", nil)
	wantCode(t, err, http.StatusNotFound, "KeyNotFound") // nothing stored
	_, err = a.RotateKey(ctx, "r0", nil)
	wantCreateThrottled(t, "RotateKey", err)
	versions := a.NewListKeyPropertiesVersionsPager("r0", nil)
	if page, err := versions.NextPage(ctx); err != nil || len(page.Value) != 1 {
		t.Errorf("r0 after the refused rotation: %d versions, %v; want 1", len(page.Value), err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x, y := ecPoint(t, &priv.PublicKey)
	imported := azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeEC), Crv: to.Ptr(azkeys.CurveNameP256),
		X: x, Y: y, D: priv.D.FillBytes(make([]byte, 32))}}
	if _, err = a.ImportKey(ctx, "imp", imported, nil); err != nil {
		t.Errorf("ImportKey in the throttled vault = %v; want success (an import generates no key)", err)
	}
	tok := tokenFor(t, hc, ts.resources().Base(), ts.Dev.Credentials.TenantID, ts.Dev.Credentials.ClientID, ts.Dev.Credentials.ClientSecret)
	certURL := ts.Dev.Credentials.VaultURL + "certificates/c1"
	status, body := kvCall(t, hc, tok, "POST", certURL+"/create"+kvVersion, `{"policy":{"issuer":{"name":"Self"},"x509_props":{"subject":"CN=t"},"key_props":{"kty":"EC","crv":"P-256"}}}`)
	if status != http.StatusTooManyRequests || !strings.Contains(string(body), `"code":"Throttled"`) {
		t.Errorf("CreateCertificate in the throttled vault = %d %s; want 429 Throttled", status, body)
	}
	if status, body := kvCall(t, hc, tok, "GET", certURL+kvVersion, ""); status != http.StatusNotFound {
		t.Errorf("GetCertificate of the refused certificate = %d %s; want 404", status, body)
	}
	// Reads and key operations are not creations.
	if _, err := a.GetKey(ctx, "r1", "", nil); err != nil {
		t.Errorf("GetKey in the throttled vault: %v", err)
	}
	digest := sha256.Sum256([]byte("x"))
	if _, err := a.Sign(ctx, "r1", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmPS256), Value: digest[:]}, nil); err != nil {
		t.Errorf("Sign in the throttled vault: %v", err)
	}
	t.Logf("11th creation: 429 Throttled, Retry-After %ds", secs)

	// Other vaults have their own buckets.
	devVault(t, ts, "kcl2")
	other := noRetryKeys(t, "https://kcl2.localhost:"+port+"/", cred, hc)
	tb := secondTenantVault(t, ts, "bvault")
	b := noRetryKeys(t, tb.url, tb.cred, tb.hc)
	for i := range 3 {
		if _, err := other.CreateKey(ctx, fmt.Sprintf("o%d", i), ec, nil); err != nil {
			t.Errorf("creation in another vault of the tenant: %v", err)
		}
		if _, err := b.CreateKey(ctx, fmt.Sprintf("b%d", i), ec, nil); err != nil {
			t.Errorf("creation in another tenant's vault: %v", err)
		}
	}

	// Weights: 1 + 1 + 8 fills a fresh bucket of 10.
	devVault(t, ts, "kcl3")
	w := noRetryKeys(t, "https://kcl3.localhost:"+port+"/", cred, hc)
	for i := range 2 {
		if _, err := w.CreateKey(ctx, fmt.Sprintf("e%d", i), ec, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.CreateKey(ctx, "big", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr(int32(4096))}, nil); err != nil {
		t.Fatalf("RSA-4096 creation after two EC ones (2 + 8 = 10): %v", err)
	}
	_, err = w.CreateKey(ctx, "e2", ec, nil)
	wantCreateThrottled(t, "EC creation after 1 + 1 + 8", err)

	// A seal and unseal rebuild the keys service, not the bucket: still full.
	share, err := os.ReadFile(filepath.Join(ts.cfg.DataDir, devShareFile))
	if err != nil {
		t.Fatal(err)
	}
	if status, body, _ := ts.do(t, "POST", "/v1/sys/seal", ts.Dev.Token, nil); status != 200 {
		t.Fatalf("seal = %d %v", status, body)
	}
	if status, body, _ := ts.do(t, "POST", "/v1/sys/unseal", "", map[string]string{"share": strings.TrimSpace(string(share))}); status != 200 {
		t.Fatalf("unseal = %d %v", status, body)
	}
	_, err = w.CreateKey(ctx, "e3", ec, nil)
	wantCreateThrottled(t, "EC creation after a seal and unseal", err)
}

// TestKeyCreateLimitHSM: --key-create-limit-hsm bounds -HSM key creations (made in the
// PKCS#11 token) per vault or pool in a bucket of their own: with a limit of 3 the fourth
// EC-HSM creation in the vault is refused and makes nothing, while a software key of the same
// vault and an HSM key of the managed HSM pool are still created.
func TestKeyCreateLimitHSM(t *testing.T) {
	ts := startDev(t, append(softHSMToken(t), "--key-create-limit-hsm", "3")...)
	ctx := context.Background()
	cred, hc := devCredential(t, ts, ts.Dev.Credentials.ClientSecret)
	v := noRetryKeys(t, ts.Dev.Credentials.VaultURL, cred, hc)
	echsm := azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeECHSM)}
	for i := range 3 {
		if _, err := v.CreateKey(ctx, fmt.Sprintf("h%d", i), echsm, nil); err != nil {
			t.Fatalf("EC-HSM creation %d of 3: %v", i+1, err)
		}
	}
	_, err := v.CreateKey(ctx, "h3", echsm, nil)
	wantCreateThrottled(t, "4th EC-HSM creation", err)
	_, err = v.GetKey(ctx, "h3", "", nil)
	wantCode(t, err, http.StatusNotFound, "KeyNotFound")
	if _, err := v.CreateKey(ctx, "soft", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC)}, nil); err != nil {
		t.Errorf("software key creation in the vault whose HSM bucket is full: %v", err)
	}
	pool := noRetryKeys(t, ts.Dev.Credentials.ManagedHSMURL, cred, hc)
	if _, err := pool.CreateKey(ctx, "p0", echsm, nil); err != nil {
		t.Errorf("EC-HSM creation in the managed HSM pool: %v", err)
	}
}
