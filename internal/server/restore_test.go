package server

import (
	"context"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// TestRestoreBlobRules holds SECURITY-NOTES D8 (and T4) through the HTTPS API for keys,
// secrets and certificates in a vault and keys in a managed HSM pool: a restore onto a live
// name is 409 Conflict; a damaged blob (flipped, truncated, extended, random, empty, not
// base64url), another kind's blob, another store kind's blob and tenant A's blob in tenant
// B's vault are 400 BadParameter, and none of them creates anything; the untouched blob
// then restores the purged object. (Restore onto a soft-deleted name is
// TestSoftDeleteAttempts.)
func TestRestoreBlobRules(t *testing.T) {
	ts := startDev(t, softHSMTokenSO(t)...) // pool keys' backups carry their material, wrapped by the pool's domain
	ctx := context.Background()
	dev := ts.Dev.Credentials
	hc := loopbackClient(t, ts.caFile)
	res := ts.resources()
	_, vaultTok := rawToken(t, ts, hc, dev.TenantID, dev.ClientID, dev.ClientSecret, res.Base())
	_, poolTok := rawToken(t, ts, hc, dev.TenantID, dev.ClientID, dev.ClientSecret, "https://managedhsm.localhost:"+res.port)

	// Tenant B administers a vault of its own.
	tb, _ := ts.tenants.CreateTenant(ctx, "", "Tenant B")
	if _, err := ts.tenants.CreateVault(ctx, tb.ID, tenancy.KindVault, "bkv", tenancy.VaultOptions{}); err != nil {
		t.Fatal(err)
	}
	pb, secretB, _ := ts.tenants.CreateServicePrincipal(ctx, tb.ID, "b")
	if _, err := ts.tenants.CreateRoleAssignment(ctx, authz.Assignment{PrincipalID: pb.ObjectID, TenantID: tb.ID, RoleDefinitionID: mustRole("Key Vault Administrator"), Scope: "/tenants/" + tb.ID}); err != nil {
		t.Fatal(err)
	}
	_, bTok := rawToken(t, ts, hc, tb.ID, pb.AppID, secretB, res.Base())
	bVault := "https://bkv.localhost:" + res.port + "/"

	certPEM, _ := ecPEM(t, elliptic.P256())
	kinds := []struct {
		label, base, tok, path, create, body string
	}{
		{"vault/key", dev.VaultURL, vaultTok, "keys/", "keys/r-key/create", `{"kty":"EC","crv":"P-256"}`},
		{"vault/secret", dev.VaultURL, vaultTok, "secrets/", "secrets/r-secret", `{"value":"v"}`},
		{"vault/certificate", dev.VaultURL, vaultTok, "certificates/", "certificates/r-certificate/import", mustJSON(t, map[string]any{"value": certPEM, "policy": map[string]any{
			"secret_props": map[string]string{"contentType": "application/x-pem-file"}, "key_props": map[string]any{"kty": "EC", "crv": "P-256"}}})},
		{"pool/key", dev.ManagedHSMURL, poolTok, "keys/", "keys/r-key/create", `{"kty":"EC-HSM","crv":"P-256"}`},
	}
	blobs := map[string][]byte{}
	for _, k := range kinds {
		method := "POST"
		if k.label == "vault/secret" {
			method = "PUT"
		}
		if st, raw := kvCall(t, hc, k.tok, method, k.base+k.create+sdAPI, k.body); st != 200 {
			t.Fatalf("%s: create = %d %s", k.label, st, raw)
		}
		name := "r-" + nounOf(k.path)
		st, raw := kvCall(t, hc, k.tok, "POST", k.base+k.path+name+"/backup"+sdAPI, "")
		var b struct{ Value string }
		if st != 200 || json.Unmarshal(raw, &b) != nil {
			t.Fatalf("%s: backup = %d %s", k.label, st, raw)
		}
		blob, err := base64.RawURLEncoding.DecodeString(b.Value)
		if err != nil {
			t.Fatalf("%s: backup value is not base64url: %v", k.label, err)
		}
		blobs[k.label] = blob
	}
	restore := func(base, tok, path, value string) (int, string, string) {
		t.Helper()
		st, raw := kvCall(t, hc, tok, "POST", base+path+"restore"+sdAPI, mustJSON(t, map[string]string{"value": value}))
		if st/100 == 2 {
			return st, "", ""
		}
		code, inner, _ := kvErrorInner(t, raw)
		return st, code, inner
	}
	enc := base64.RawURLEncoding.EncodeToString
	for _, k := range kinds {
		t.Run(k.label, func(t *testing.T) {
			good := blobs[k.label]
			name := "r-" + nounOf(k.path)
			if st, code, inner := restore(k.base, k.tok, k.path, enc(good)); st != 409 || code != "Conflict" || inner != "" {
				t.Errorf("restore onto the live name = %d %s/%s; want 409 Conflict", st, code, inner)
			}
			flip := func(i int) string {
				b := append([]byte(nil), good...)
				b[i] ^= 0x01
				return enc(b)
			}
			random := make([]byte, len(good))
			rand.Read(random)
			random[0] = 1
			bad := map[string]string{
				"flip-first": flip(0), "flip-nonce": flip(5), "flip-middle": flip(len(good) / 2), "flip-last": flip(len(good) - 1),
				"truncated-half": enc(good[:len(good)/2]), "truncated-1": enc(good[:len(good)-1]), "extended": enc(append(append([]byte(nil), good...), 0)),
				"random": enc(random), "empty": "", "not-base64url": "!!!" + enc(good), "padded": base64.URLEncoding.EncodeToString(good) + "==",
			}
			for other, blob := range blobs { // another kind's or another store kind's blob
				if other != k.label {
					bad["blob-of-"+other] = enc(blob)
				}
			}
			for what, value := range bad {
				if st, code, _ := restore(k.base, k.tok, k.path, value); st != 400 || code != "BadParameter" {
					t.Errorf("restore of a %s blob = %d %s; want 400 BadParameter", what, st, code)
				}
			}
			if k.label != "pool/key" { // tenant B has no pool here; the pool's blob is sealed to its domain
				if st, code, _ := restore(bVault, bTok, k.path, enc(good)); st != 400 || code != "BadParameter" {
					t.Errorf("tenant B restoring tenant A's blob = %d %s; want 400 BadParameter", st, code)
				}
				if st, _ := kvCall(t, hc, bTok, "GET", bVault+k.path+name+sdAPI, ""); st != 404 {
					t.Errorf("after the refused restore tenant B's vault has %s (GET %d)", name, st)
				}
			}
			// The object is as it was; delete and purge it, and the good blob brings it back.
			if st, raw := kvCall(t, hc, k.tok, "GET", k.base+k.path+name+sdAPI, ""); st != 200 {
				t.Fatalf("after the refused restores GET %s = %d %s", name, st, raw)
			}
			for _, c := range [][2]string{{"DELETE", k.path + name}, {"DELETE", "deleted" + k.path + name}} {
				if st, raw := kvCall(t, hc, k.tok, c[0], k.base+c[1]+sdAPI, ""); st/100 != 2 {
					t.Fatalf("%s %s = %d %s", c[0], c[1], st, raw)
				}
			}
			if st, code, _ := restore(k.base, k.tok, k.path, flip(len(good)/2)); st != 400 {
				t.Errorf("restore of a flipped blob onto the free name = %d %s; want 400", st, code)
			}
			if st, _ := kvCall(t, hc, k.tok, "GET", k.base+k.path+name+sdAPI, ""); st != 404 {
				t.Errorf("a refused restore created %s (GET %d)", name, st)
			}
			if st, code, _ := restore(k.base, k.tok, k.path, enc(good)); st != 200 {
				t.Errorf("restore of the untouched blob after the purge = %d %s; want 200", st, code)
			}
			if st, raw := kvCall(t, hc, k.tok, "GET", k.base+k.path+name+sdAPI, ""); st != 200 || !strings.Contains(string(raw), name) {
				t.Errorf("after the restore GET %s = %d %s", name, st, raw)
			}
		})
	}
}
