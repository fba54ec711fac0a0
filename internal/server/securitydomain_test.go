package server

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/azsd"
	"github.com/coffer-kms/coffer/internal/sdblob"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// sdPools creates managed HSM pools in the dev tenant on which the dev principal is
// administrator, crypto user and crypto officer, and returns a data-plane caller for them.
func sdPools(t *testing.T, ts *testServer, names ...string) *sdCaller {
	t.Helper()
	ctx := context.Background()
	c := ts.Dev.Credentials
	for _, n := range names {
		if _, err := ts.tenants.CreateVault(ctx, c.TenantID, tenancy.KindManagedHSM, n, tenancy.VaultOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, role := range []string{"Managed HSM Administrator", "Managed HSM Crypto User", "Managed HSM Crypto Officer"} {
			a := authz.Assignment{PrincipalID: c.ObjectID, TenantID: c.TenantID, RoleDefinitionID: mustRole(role), Scope: "/tenants/" + c.TenantID + "/managedHsms/" + n}
			if _, err := ts.tenants.CreateRoleAssignment(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
	}
	hc := loopbackClient(t, ts.caFile)
	status, tok := rawToken(t, ts, hc, c.TenantID, c.ClientID, c.ClientSecret, "https://managedhsm.localhost:"+ts.resources().port)
	if status != 200 {
		t.Fatalf("token = %d", status)
	}
	return &sdCaller{hc: hc, tok: tok, port: ts.resources().port}
}

type sdCaller struct {
	hc        *http.Client
	tok, port string
}

// call sends body (JSON-encoded unless []byte) to a pool and decodes the JSON answer.
func (c *sdCaller) call(t *testing.T, method, pool, path string, body any) (int, map[string]any, http.Header) {
	t.Helper()
	var r io.Reader
	if b, ok := body.([]byte); ok {
		r = bytes.NewReader(b)
	} else if body != nil {
		j, _ := json.Marshal(body)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, "https://"+pool+".managedhsm.localhost:"+c.port+path+"?api-version=7.5", r)
	req.Header.Set("Authorization", "Bearer "+c.tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	json.Unmarshal(raw, &out)
	return resp.StatusCode, out, resp.Header
}

func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// custodianJWK is k as `az keyvault security-domain download` names it: n/e and its
// self-signed certificate (custodianCert).
func custodianJWK(t *testing.T, k *rsa.PrivateKey) sdblob.JWK {
	t.Helper()
	j := sdblob.PublicJWK(&k.PublicKey)
	j.X5c = []string{base64.StdEncoding.EncodeToString(custodianCert(t, k))}
	return j
}

var custodianCerts sync.Map // *rsa.PrivateKey → DER

// custodianCert is a self-signed certificate of k, made once per key.
func custodianCert(t *testing.T, k *rsa.PrivateKey) []byte {
	t.Helper()
	if der, ok := custodianCerts.Load(k); ok {
		return der.([]byte)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "custodian"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	custodianCerts.Store(k, der)
	return der
}

// download downloads pool's security domain for custodians with quorum required.
func (c *sdCaller) download(t *testing.T, pool string, required int, custodians ...*rsa.PrivateKey) string {
	t.Helper()
	var certs []sdblob.JWK
	for _, k := range custodians {
		certs = append(certs, custodianJWK(t, k))
	}
	status, out, h := c.call(t, "POST", pool, "/securitydomain/download", map[string]any{"certificates": certs, "required": required})
	blob, _ := out["value"].(string)
	if status != 202 || blob == "" || !strings.Contains(h.Get("Azure-AsyncOperation"), "/securitydomain/download/pending") {
		t.Fatalf("download(%s) = %d %v %v; want 202 with the blob", pool, status, out, h)
	}
	if status, st, _ := c.call(t, "GET", pool, "/securitydomain/download/pending", nil); status != 200 || st["status"] != "Success" {
		t.Errorf("download/pending = %d %v; want Success", status, st)
	}
	return blob
}

// exchangeCert fetches pool's transfer key (GET /securitydomain/upload) and returns its
// certificate, the exchange key of `az keyvault security-domain restore-blob`.
func (c *sdCaller) exchangeCert(t *testing.T, pool string) *x509.Certificate {
	t.Helper()
	status, out, _ := c.call(t, "GET", pool, "/securitydomain/upload", nil)
	text, _ := out["transfer_key"].(string)
	if status != 200 || out["key_format"] != "jwk" || text == "" {
		t.Fatalf("transfer key = %d %v; want 200 with the JWK as JSON text", status, out)
	}
	var tk sdblob.JWK
	if err := json.Unmarshal([]byte(text), &tk); err != nil {
		t.Fatalf("transfer_key: %v", err)
	}
	cert, err := tk.Certificate()
	if err != nil {
		t.Fatalf("transfer key: %v", err)
	}
	return cert
}

// restoreBlob is what a quorum of holders makes of file for pool (the Azure CLI's
// restore-blob, azsd.Restore); err is its refusal.
func (c *sdCaller) restoreBlob(t *testing.T, pool, file string, holders ...*rsa.PrivateKey) (string, error) {
	t.Helper()
	f, err := azsd.ParseFile([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	var hs []azsd.Holder
	for _, h := range holders {
		hs = append(hs, azsd.Holder{Key: h, X5tS256: azsd.CertThumbprint(custodianCert(t, h))})
	}
	return azsd.Restore(f, hs, c.exchangeCert(t, pool))
}

// upload restores file into pool with the keys of holders, as `az keyvault security-domain
// upload` does: restore-blob, then POST /securitydomain/upload. When the restore itself
// refuses (too few holders) it answers 0.
func (c *sdCaller) upload(t *testing.T, pool, file string, holders ...*rsa.PrivateKey) (int, map[string]any) {
	t.Helper()
	rb, err := c.restoreBlob(t, pool, file, holders...)
	if err != nil {
		return 0, map[string]any{"restore-blob": err.Error()}
	}
	status, out, _ := c.call(t, "POST", pool, "/securitydomain/upload", map[string]string{"value": rb})
	return status, out
}

// signsAs checks that the key name of client signs (PS256) under the public key want: a
// key restored into another pool is the original key.
func signsAs(t *testing.T, client *azkeys.Client, name string, want *azkeys.JSONWebKey) {
	t.Helper()
	digest := sha256.Sum256([]byte("restored"))
	sig, err := client.Sign(context.Background(), name, "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmPS256), Value: digest[:]}, nil)
	if err != nil {
		t.Fatalf("Sign in the restored pool = %v", err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(want.N), E: int(new(big.Int).SetBytes(want.E).Int64())}
	if err := rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig.Result, nil); err != nil {
		t.Errorf("the restored key's signature does not verify with the original public key: %v", err)
	}
}

func custodianKeys(t *testing.T, n int) []*rsa.PrivateKey {
	t.Helper()
	var out []*rsa.PrivateKey
	for range n {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	return out
}

// TestSecurityDomainRestoreIntoNewPool: a new pool refuses key operations until its
// security domain is downloaded (3 keys, quorum 2); a key backup of it restores only into a
// pool given the same domain by an upload of 2 shares (1 share is refused and changes
// nothing), and the restored key signs there; a pool with another domain refuses the backup.
func TestSecurityDomainRestoreIntoNewPool(t *testing.T) {
	t.Run("software", func(t *testing.T) { testSecurityDomainRestore(t, startDev(t), azkeys.KeyTypeRSA) })
	t.Run("softhsm", func(t *testing.T) {
		// With an SO PIN the backup carries the key wrapped by the domain (a handle-only
		// backup does not restore into another pool: TestHandleOnlyRestoreIntoAnotherPool).
		flags := softHSMTokenSO(t)
		testSecurityDomainRestore(t, startDev(t, flags...), azkeys.KeyTypeRSAHSM)
	})
}

func testSecurityDomainRestore(t *testing.T, ts *testServer, kty azkeys.KeyType) {
	ctx := context.Background()
	c := sdPools(t, ts, "sda", "sdb", "sdc")
	port := ts.resources().port
	poolA := azkeysClient(t, ts, "https://sda.managedhsm.localhost:"+port+"/")
	poolB := azkeysClient(t, ts, "https://sdb.managedhsm.localhost:"+port+"/")
	poolC := azkeysClient(t, ts, "https://sdc.managedhsm.localhost:"+port+"/")

	// Not activated: key operations are refused.
	_, err := poolA.CreateKey(ctx, "k", azkeys.CreateKeyParameters{Kty: to.Ptr(kty)}, nil)
	wantCode(t, err, 403, "Forbidden")
	if status, out, _ := c.call(t, "GET", "sda", "/securitydomain/download/pending", nil); status != 200 || out["status"] != "Failed" {
		t.Errorf("download/pending before a download = %d %v", status, out)
	}

	holders := custodianKeys(t, 3)
	blob := c.download(t, "sda", 2, holders...)
	k, err := poolA.CreateKey(ctx, "k", azkeys.CreateKeyParameters{Kty: to.Ptr(kty), KeySize: to.Ptr(int32(2048))}, nil)
	if err != nil {
		t.Fatalf("CreateKey after activation = %v", err)
	}
	backup, err := poolA.BackupKey(ctx, "k", nil)
	if err != nil {
		t.Fatalf("BackupKey = %v", err)
	}

	// Pool B: one share is not a quorum (restore-blob refuses it).
	if status, out := c.upload(t, "sdb", blob, holders[1]); status != 0 {
		t.Fatalf("upload with 1 share = %d %v; want a refusal of the restore", status, out)
	}
	_, err = poolB.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: backup.Value}, nil)
	wantCode(t, err, 403, "Forbidden")
	// Two shares restore the domain; the backup then restores and the key signs.
	if status, out := c.upload(t, "sdb", blob, holders[2], holders[0]); status != 202 || out["status"] != "Success" {
		t.Fatalf("upload with 2 shares = %d %v; want 202 Success", status, out)
	}
	if status, out, _ := c.call(t, "GET", "sdb", "/securitydomain/upload/pending", nil); status != 200 || out["status"] != "Success" {
		t.Errorf("upload/pending = %d %v", status, out)
	}
	if status, out, _ := c.call(t, "GET", "sdb", "/securitydomain/upload", nil); status != 409 || errCode(out) != "Conflict" {
		t.Errorf("transfer key of an active pool = %d %v; want 409 Conflict", status, out)
	}
	if _, err := poolB.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: backup.Value}, nil); err != nil {
		t.Fatalf("RestoreKey into the pool with the same domain = %v", err)
	}
	signsAs(t, poolB, "k", k.Key)

	// Pool C has a domain of its own: the backup is refused there.
	c.download(t, "sdc", 2, holders...)
	_, err = poolC.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: backup.Value}, nil)
	wantCode(t, err, 400, "BadParameter")
}

// TestSecurityDomainRefusesBadInput: every malformed download or upload is a 4xx in Key
// Vault's shape and leaves the pool inactive.
func TestSecurityDomainRefusesBadInput(t *testing.T) {
	ts := startDev(t)
	c := sdPools(t, ts, "sdbad", "sdsrc", "sdother")
	ks := custodianKeys(t, 4)
	jwk := func(k *rsa.PrivateKey) sdblob.JWK { return custodianJWK(t, k) }
	badN := jwk(ks[2])
	badN.N = "not base64!"
	noCert := jwk(ks[2])
	noCert.X5c = nil
	blob := c.download(t, "sdsrc", 2, ks[0], ks[1], ks[2])
	good, err := c.restoreBlob(t, "sdbad", blob, ks[0], ks[1])
	if err != nil {
		t.Fatal(err)
	}
	var rb azsd.RestoreBlob
	json.Unmarshal([]byte(good), &rb)
	rb.EncData.Data[0].CompactJWE = rb.EncData.Data[0].CompactJWE[:len(rb.EncData.Data[0].CompactJWE)-2] + "AA"
	tampered, _ := json.Marshal(rb)
	wrongPool, err := c.restoreBlob(t, "sdother", blob, ks[0], ks[1])
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		path   string
		body   any
		status int
	}{
		{"fail/two-keys", "/securitydomain/download", map[string]any{"certificates": []sdblob.JWK{jwk(ks[0]), jwk(ks[1])}, "required": 2}, 400},
		{"fail/quorum-above-keys", "/securitydomain/download", map[string]any{"certificates": []sdblob.JWK{jwk(ks[0]), jwk(ks[1]), jwk(ks[2])}, "required": 4}, 400},
		{"fail/malformed-jwk", "/securitydomain/download", map[string]any{"certificates": []sdblob.JWK{jwk(ks[0]), jwk(ks[1]), badN}, "required": 2}, 400},
		{"fail/no-certificate", "/securitydomain/download", map[string]any{"certificates": []sdblob.JWK{jwk(ks[0]), jwk(ks[1]), noCert}, "required": 2}, 400},
		{"fail/unknown-field", "/securitydomain/download", map[string]any{"certificates": []sdblob.JWK{jwk(ks[0]), jwk(ks[1]), jwk(ks[2])}, "quorum": 2}, 400},
		{"fail/not-json", "/securitydomain/download", []byte("{"), 400},
		{"fail/oversized", "/securitydomain/download", []byte(`{"certificates":[{"kty":"RSA","kid":"` + strings.Repeat("a", 200<<10) + `"}]}`), 413},
		{"fail/upload-no-value", "/securitydomain/upload", map[string]any{}, 400},
		{"fail/upload-garbage", "/securitydomain/upload", map[string]any{"value": "garbage"}, 400},
		{"fail/upload-tampered", "/securitydomain/upload", map[string]any{"value": string(tampered)}, 400},
		{"fail/upload-other-exchange-key", "/securitydomain/upload", map[string]any{"value": wrongPool}, 400},
		{"fail/upload-the-download", "/securitydomain/upload", map[string]any{"value": blob}, 400},
		{"fail/upload-oversized", "/securitydomain/upload", []byte(`{"value":"` + strings.Repeat("a", 300<<10) + `"}`), 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out, _ := c.call(t, "POST", "sdbad", tc.path, tc.body)
			if status != tc.status || errCode(out) == "" {
				t.Errorf("POST %s = %d %v; want %d with an error code", tc.path, status, out, tc.status)
			}
		})
	}
	// Nothing changed: the pool is still inactive, and the good restore blob still works.
	_, err = azkeysClient(t, ts, "https://sdbad.managedhsm.localhost:"+ts.resources().port+"/").CreateKey(context.Background(), "k", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA)}, nil)
	wantCode(t, err, 403, "Forbidden")
	if ok, _ := ts.sd.Active(context.Background(), tenancy.Vault{Kind: tenancy.KindManagedHSM, TenantID: ts.Dev.Credentials.TenantID, Name: "sdbad"}); ok {
		t.Error("sdbad is active")
	}
	if status, out, _ := c.call(t, "POST", "sdbad", "/securitydomain/upload", map[string]any{"value": good}); status != 202 {
		t.Errorf("upload of the good restore blob after the refusals = %d %v; want 202", status, out)
	}
}
