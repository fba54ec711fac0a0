package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// softDeleteTarget is one kind of object in one store, addressed with raw HTTPS requests.
type softDeleteTarget struct {
	label         string // "vault/key", …
	base          string // https://<store host>:<port>/
	token         string // the store owner's token (full rights)
	path, deleted string // "keys/", "deletedkeys/"
	notFound      string // the kind's 404 code
	retentionDays int
	create        func(name string) (method, path, body string, status int)
	// reuse lists every other way to put a new object under a name (import, set, create).
	reuse func(name string) [][3]string
}

const sdAPI = "?api-version=7.6"

// kvErrorInner decodes a Key Vault error body: code, innererror.code and message.
func kvErrorInner(t *testing.T, raw []byte) (code, inner, message string) {
	t.Helper()
	var body struct {
		Error struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			InnerError *struct {
				Code string `json:"code"`
			} `json:"innererror"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || body.Error.Code == "" || body.Error.Message == "" {
		t.Fatalf("body %q is not Key Vault's error shape (%v)", raw, err)
	}
	if body.Error.InnerError != nil {
		inner = body.Error.InnerError.Code
	}
	return body.Error.Code, inner, body.Error.Message
}

// deletedState is what GET /deleted<kind>s/{name} says about a soft-deleted object.
type deletedState struct {
	RecoveryID         string `json:"recoveryId"`
	DeletedDate        int64  `json:"deletedDate"`
	ScheduledPurgeDate int64  `json:"scheduledPurgeDate"`
}

// ecJWK is a fresh P-256 private key as a JWK of kty (EC or EC-HSM), for import attempts.
func ecJWK(t *testing.T, kty string) map[string]any {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecdh, err := k.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	pub := ecdh.PublicKey().Bytes() // 0x04 ‖ x ‖ y
	enc := base64.RawURLEncoding.EncodeToString
	return map[string]any{"kty": kty, "crv": "P-256", "x": enc(pub[1:33]), "y": enc(pub[33:]), "d": enc(ecdh.Bytes())}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSoftDeleteAttempts holds SECURITY-NOTES S1–S4 and D8's "restore doesn't bypass soft
// delete" through the HTTPS API, for keys, secrets and certificates in a vault and keys in a
// managed HSM pool, both with purge protection: after each attempt on a soft-deleted object
// it is still deleted, recoverable and keeps its scheduled purge date (which no attempt
// moves earlier), and at the end each object recovers.
func TestSoftDeleteAttempts(t *testing.T) {
	ts := startDev(t, softHSMToken(t)...) // pools' keys live in a token
	ctx := context.Background()
	dev := ts.Dev.Credentials
	hc := loopbackClient(t, ts.caFile)
	res := ts.resources()
	port := res.port
	hsmResource := "https://managedhsm.localhost:" + port
	_, mgmtTok := rawToken(t, ts, hc, dev.TenantID, dev.ClientID, dev.ClientSecret, res.Base())
	T := "/v1/tenants/" + dev.TenantID

	// A vault and a pool with purge protection and 30 days of retention, made through the
	// management API as a tenant would.
	ts.mjson(t, "PUT", T+"/vaults/ppkv", mgmtTok, map[string]any{"softDeleteRetentionInDays": 30, "enablePurgeProtection": true}, 201, nil)
	ts.mjson(t, "PUT", T+"/managedHsms/pphsm", mgmtTok, map[string]any{"softDeleteRetentionInDays": 30, "enablePurgeProtection": true}, 201, nil)
	pool, err := ts.tenants.Vault(ctx, tenancy.KindManagedHSM, "pphsm")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.sd.ActivateDev(ctx, pool); err != nil {
		t.Fatal(err)
	}
	assign := func(principal, role, scope string) {
		t.Helper()
		if _, err := ts.tenants.CreateRoleAssignment(ctx, authz.Assignment{PrincipalID: principal, TenantID: dev.TenantID, RoleDefinitionID: mustRole(role), Scope: scope}); err != nil {
			t.Fatal(err)
		}
	}
	tenantScope := "/tenants/" + dev.TenantID
	poolScope := tenantScope + "/managedHsms/pphsm"
	assign(dev.ObjectID, "Managed HSM Administrator", poolScope)
	assign(dev.ObjectID, "Managed HSM Crypto Officer", poolScope)
	assign(dev.ObjectID, "Managed HSM Crypto User", poolScope)
	_, vaultTok := rawToken(t, ts, hc, dev.TenantID, dev.ClientID, dev.ClientSecret, res.Base())
	_, poolTok := rawToken(t, ts, hc, dev.TenantID, dev.ClientID, dev.ClientSecret, hsmResource)

	// A principal that may do everything to the vault's objects except purge them (a custom
	// role) and to the pool's keys everything but purge and recover (Managed HSM Crypto User).
	noPurgeRole, err := ts.tenants.CreateRoleDefinition(ctx, dev.TenantID, authz.RoleDefinition{
		Name: "Officer without purge", Type: authz.RoleTypeCustom,
		Permissions: []authz.Permission{{
			DataActions: []string{"Microsoft.KeyVault/vaults/keys/*", "Microsoft.KeyVault/vaults/secrets/*", "Microsoft.KeyVault/vaults/certificates/*"},
			NotDataActions: []string{"Microsoft.KeyVault/vaults/keys/purge/action", "Microsoft.KeyVault/vaults/secrets/purge/action",
				"Microsoft.KeyVault/vaults/certificates/purge/action"},
		}},
		AssignableScopes: []string{tenantScope},
	})
	if err != nil {
		t.Fatal(err)
	}
	np, npSecret, err := ts.tenants.CreateServicePrincipal(ctx, dev.TenantID, "no-purge")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.tenants.CreateRoleAssignment(ctx, authz.Assignment{PrincipalID: np.ObjectID, TenantID: dev.TenantID, RoleDefinitionID: noPurgeRole.ID, Scope: tenantScope + "/vaults/ppkv"}); err != nil {
		t.Fatal(err)
	}
	assign(np.ObjectID, "Managed HSM Crypto User", poolScope)
	_, npVaultTok := rawToken(t, ts, hc, dev.TenantID, np.AppID, npSecret, res.Base())
	_, npPoolTok := rawToken(t, ts, hc, dev.TenantID, np.AppID, npSecret, hsmResource)

	// Tenant B, administrator of its own vaults and pools.
	tb, _ := ts.tenants.CreateTenant(ctx, "", "Tenant B")
	pb, secretB, _ := ts.tenants.CreateServicePrincipal(ctx, tb.ID, "b")
	for _, role := range []string{"Key Vault Administrator", "Managed HSM Administrator"} {
		if _, err := ts.tenants.CreateRoleAssignment(ctx, authz.Assignment{PrincipalID: pb.ObjectID, TenantID: tb.ID, RoleDefinitionID: mustRole(role), Scope: "/tenants/" + tb.ID}); err != nil {
			t.Fatal(err)
		}
	}
	_, bVaultTok := rawToken(t, ts, hc, tb.ID, pb.AppID, secretB, res.Base())
	_, bPoolTok := rawToken(t, ts, hc, tb.ID, pb.AppID, secretB, hsmResource)

	vaultURL := "https://ppkv.localhost:" + port + "/"
	poolURL := "https://pphsm.managedhsm.localhost:" + port + "/"
	certPEM, _ := ecPEM(t, elliptic.P256())
	certImport := mustJSON(t, map[string]any{"value": certPEM, "policy": map[string]any{
		"secret_props": map[string]string{"contentType": "application/x-pem-file"}, "key_props": map[string]any{"kty": "EC", "crv": "P-256"}}})
	certPolicy := `{"policy":{"issuer":{"name":"Self"},"x509_props":{"subject":"CN=t"},"key_props":{"kty":"EC","crv":"P-256"}}}`

	targets := []struct {
		softDeleteTarget
		noPurgeTok, otherTenantTok string
	}{
		{softDeleteTarget{
			label: "vault/key", base: vaultURL, token: vaultTok, path: "keys/", deleted: "deletedkeys/", notFound: "KeyNotFound", retentionDays: 30,
			create: func(n string) (string, string, string, int) {
				return "POST", "keys/" + n + "/create", `{"kty":"EC","crv":"P-256"}`, 200
			},
			reuse: func(n string) [][3]string {
				return [][3]string{
					{"POST", "keys/" + n + "/create", `{"kty":"RSA"}`},
					{"PUT", "keys/" + n, mustJSON(t, map[string]any{"key": ecJWK(t, "EC")})},
				}
			},
		}, npVaultTok, bVaultTok},
		{softDeleteTarget{
			label: "vault/secret", base: vaultURL, token: vaultTok, path: "secrets/", deleted: "deletedsecrets/", notFound: "SecretNotFound", retentionDays: 30,
			create: func(n string) (string, string, string, int) { return "PUT", "secrets/" + n, `{"value":"v1"}`, 200 },
			reuse: func(n string) [][3]string {
				return [][3]string{{"PUT", "secrets/" + n, `{"value":"v2"}`}}
			},
		}, npVaultTok, bVaultTok},
		{softDeleteTarget{
			label: "vault/certificate", base: vaultURL, token: vaultTok, path: "certificates/", deleted: "deletedcertificates/", notFound: "CertificateNotFound", retentionDays: 30,
			create: func(n string) (string, string, string, int) {
				return "POST", "certificates/" + n + "/import", certImport, 200
			},
			reuse: func(n string) [][3]string {
				return [][3]string{
					{"POST", "certificates/" + n + "/import", certImport},
					{"POST", "certificates/" + n + "/create", certPolicy},
				}
			},
		}, npVaultTok, bVaultTok},
		{softDeleteTarget{
			label: "pool/key", base: poolURL, token: poolTok, path: "keys/", deleted: "deletedkeys/", notFound: "KeyNotFound", retentionDays: 30,
			create: func(n string) (string, string, string, int) {
				return "POST", "keys/" + n + "/create", `{"kty":"EC-HSM","crv":"P-256"}`, 200
			},
			reuse: func(n string) [][3]string {
				return [][3]string{
					{"POST", "keys/" + n + "/create", `{"kty":"EC-HSM","crv":"P-256"}`},
					{"PUT", "keys/" + n, mustJSON(t, map[string]any{"key": ecJWK(t, "EC-HSM"), "hsm": true})},
				}
			},
		}, npPoolTok, bPoolTok},
	}

	purgeDates := map[string]int64{}
	for _, tg := range targets {
		name := "held-" + nounOf(tg.path) // a certificate's key and secret take its name
		t.Run(tg.label, func(t *testing.T) {
			do := func(tok, method, path, body string) (int, []byte) {
				return kvCall(t, hc, tok, method, tg.base+path+sdAPI, body)
			}
			must := func(method, path, body string, want int) []byte {
				t.Helper()
				st, raw := do(tg.token, method, path, body)
				if st != want {
					t.Fatalf("%s: %s %s = %d %s; want %d", tg.label, method, path, st, raw, want)
				}
				return raw
			}
			// stillDeleted requires the object to be soft-deleted with the purge date want (0: any),
			// and returns its state.
			stillDeleted := func(after string, want int64) deletedState {
				t.Helper()
				if st, raw := do(tg.token, "GET", tg.path+name, ""); st != 404 {
					t.Fatalf("%s: after %s, GET %s%s = %d %s; want 404", tg.label, after, tg.path, name, st, raw)
				}
				var ds deletedState
				raw := must("GET", tg.deleted+name, "", 200)
				if err := json.Unmarshal(raw, &ds); err != nil {
					t.Fatal(err)
				}
				if want != 0 && ds.ScheduledPurgeDate != want {
					t.Fatalf("%s: after %s the scheduled purge date is %d; want %d unchanged", tg.label, after, ds.ScheduledPurgeDate, want)
				}
				return ds
			}
			m, p, b, st := tg.create(name)
			must(m, p, b, st)
			blob := must("POST", tg.path+name+"/backup", "", 200)
			var poolRestores [][2]string // a pool's full and selective restore of a full backup
			if tg.label == "pool/key" {
				sas := map[string]any{"storageResourceUri": "https://account.blob.core.windows.net/backups", "token": "ignored"}
				var job struct{ AzureStorageBlobContainerURI string }
				if err := json.Unmarshal(must("POST", "backup", mustJSON(t, sas), 202), &job); err != nil || !strings.Contains(job.AzureStorageBlobContainerURI, "/") {
					t.Fatalf("full backup: %v %+v", err, job)
				}
				folder := job.AzureStorageBlobContainerURI[strings.LastIndex(job.AzureStorageBlobContainerURI, "/")+1:]
				poolRestores = [][2]string{
					{"restore", mustJSON(t, map[string]any{"sasTokenParameters": sas, "folderToRestore": folder})},
					{tg.path + name + "/restore", mustJSON(t, map[string]any{"sasTokenParameters": sas, "folder": folder})},
				}
			}
			must("DELETE", tg.path+name, "", 200)

			// S1: the object is gone from the live API and listed as deleted, with
			// recoveryId and a purge date at the end of the vault's retention.
			st0, raw := do(tg.token, "GET", tg.path+name, "")
			if code, _, msg := kvErrorInner(t, raw); st0 != 404 || code != tg.notFound || msg != kvNotFound(nounOf(tg.path), name) {
				t.Errorf("S1: GET deleted object = %d %s %q; want 404 %s", st0, code, msg, tg.notFound)
			}
			ds := stillDeleted("delete", 0)
			if ds.RecoveryID != tg.base+tg.deleted+name {
				t.Errorf("S1: recoveryId = %q; want %q", ds.RecoveryID, tg.base+tg.deleted+name)
			}
			if ds.DeletedDate == 0 || ds.ScheduledPurgeDate != ds.DeletedDate+int64(tg.retentionDays)*86400 {
				t.Errorf("S1: deletedDate %d, scheduledPurgeDate %d; want the purge %d days after the delete", ds.DeletedDate, ds.ScheduledPurgeDate, tg.retentionDays)
			}
			listed := must("GET", strings.TrimSuffix(tg.deleted, "/"), "", 200)
			if !strings.Contains(string(listed), `"recoveryId":"`+tg.base+tg.deleted+name+`"`) {
				t.Errorf("S1: the deleted listing %s lacks %s", listed, name)
			}
			purgeAt := ds.ScheduledPurgeDate

			// S2: every way to reuse the name is 409 Conflict / ObjectIsDeletedButRecoverable.
			for _, r := range tg.reuse(name) {
				st, raw := do(tg.token, r[0], r[1], r[2])
				if code, inner, _ := kvErrorInner(t, raw); st != 409 || code != "Conflict" || inner != "ObjectIsDeletedButRecoverable" {
					t.Errorf("S2: %s %s on the deleted name = %d %s/%s; want 409 Conflict/ObjectIsDeletedButRecoverable", r[0], r[1], st, code, inner)
				}
				stillDeleted("S2 "+r[0]+" "+r[1], purgeAt)
			}

			// S3: a purge before the date is refused while purge protection is on.
			st3, raw := do(tg.token, "DELETE", tg.deleted+name, "")
			if code, _, msg := kvErrorInner(t, raw); st3 != 403 || code != "Forbidden" || !strings.Contains(msg, "purge protection is enabled") {
				t.Errorf("S3: purge = %d %s %q; want 403 Forbidden naming purge protection", st3, code, msg)
			}
			stillDeleted("S3 purge", purgeAt)

			// S4 / D8: restoring the backup onto the deleted name is refused.
			var bk struct{ Value string }
			if err := json.Unmarshal(blob, &bk); err != nil || bk.Value == "" {
				t.Fatalf("backup body %s: %v", blob, err)
			}
			st4, raw := do(tg.token, "POST", tg.path+"restore", mustJSON(t, map[string]string{"value": bk.Value}))
			if code, inner, _ := kvErrorInner(t, raw); st4 != 409 || code != "Conflict" || inner != "ObjectIsDeletedButRecoverable" {
				t.Errorf("S4: restore onto the deleted name = %d %s/%s; want 409 Conflict/ObjectIsDeletedButRecoverable", st4, code, inner)
			}
			stillDeleted("S4 restore", purgeAt)
			for _, r := range poolRestores {
				st, raw := do(tg.token, "PUT", r[0], r[1])
				if code, _, _ := kvErrorInner(t, raw); st != 409 || code != "Conflict" {
					t.Errorf("S4: PUT %s of a full backup holding the deleted key = %d %s; want 409 Conflict", r[0], st, code)
				}
				stillDeleted("S4 PUT "+r[0], purgeAt)
			}

			// S4: a principal of the store's tenant with a data role that lacks the purge action
			// gets 403 ForbiddenByRbac.
			if st, raw := do(tg.noPurgeTok, "GET", strings.TrimSuffix(tg.path, "/"), ""); st != 200 {
				t.Fatalf("the no-purge principal cannot list the store's objects (%d %s): the test's role is wrong", st, raw)
			}
			st5, raw := do(tg.noPurgeTok, "DELETE", tg.deleted+name, "")
			if code, inner, _ := kvErrorInner(t, raw); st5 != 403 || code != "Forbidden" || inner != "ForbiddenByRbac" {
				t.Errorf("S4: purge by a role without the purge action = %d %s/%s; want 403 Forbidden/ForbiddenByRbac", st5, code, inner)
			}
			stillDeleted("S4 purge without the purge action", purgeAt)

			// S4: tenant B and the operator token are not callers of this store at all.
			for who, tok := range map[string]string{"tenant B": tg.otherTenantTok, "operator token": ts.Dev.Token} {
				st, raw := do(tok, "DELETE", tg.deleted+name, "")
				if code, _, _ := kvErrorInner(t, raw); st != 401 || code != "Unauthorized" {
					t.Errorf("S4: purge by %s = %d %s; want 401 Unauthorized", who, st, code)
				}
				stillDeleted("S4 purge by "+who, purgeAt)
			}

			// S4: recover and delete again restarts the retention: the date never moves
			// earlier.
			must("POST", tg.deleted+name+"/recover", "", 200)
			must("GET", tg.path+name, "", 200)
			must("DELETE", tg.path+name, "", 200)
			again := stillDeleted("recover and delete", 0)
			if again.ScheduledPurgeDate < purgeAt {
				t.Errorf("S4: recover+delete moved the purge date from %d to %d (earlier)", purgeAt, again.ScheduledPurgeDate)
			}
			st6, _ := do(tg.token, "DELETE", tg.deleted+name, "")
			if st6 != 403 {
				t.Errorf("S3 after recover+delete: purge = %d; want 403", st6)
			}
			purgeDates[tg.label] = again.ScheduledPurgeDate
		})
	}

	// S4: a certificate's key and secret cannot be purged on their own (that would destroy
	// the certificate's key material behind its back).
	for _, p := range []string{"deletedkeys/", "deletedsecrets/"} {
		st, raw := kvCall(t, hc, vaultTok, "DELETE", vaultURL+p+"held-certificate"+sdAPI, "")
		if code, _, _ := kvErrorInner(t, raw); st != 403 || code != "Forbidden" {
			t.Errorf("S4: purge of a certificate's %s = %d %s; want 403 Forbidden", p, st, code)
		}
	}

	// S4: the vault's and the pool's soft-delete settings cannot be weakened, and neither
	// store can be deleted (which would take its objects with it).
	for _, store := range []string{"/vaults/ppkv", "/managedHsms/pphsm"} {
		for _, body := range []map[string]any{
			{"softDeleteRetentionInDays": 30, "enablePurgeProtection": false},
			{"softDeleteRetentionInDays": 7, "enablePurgeProtection": true},
			{},
		} {
			if st, raw := ts.mcall(t, "PUT", T+store, mgmtTok, body); st != 409 {
				t.Errorf("S4: PUT %s %v = %d %s; want 409", store, body, st, raw)
			}
		}
		for _, method := range []string{"DELETE", "PATCH", "POST"} {
			st, raw := ts.mcall(t, method, T+store, mgmtTok, `{"enablePurgeProtection":false,"softDeleteRetentionInDays":7}`)
			if st/100 == 2 || st >= 500 {
				t.Errorf("S4: %s %s = %d %s; want a 4xx refusal", method, store, st, raw)
			} else {
				kvError(t, raw)
			}
			if st, raw := ts.mcall(t, method, T+store, ts.Dev.Token, nil); st/100 == 2 || st >= 500 {
				t.Errorf("S4: %s %s with the operator token = %d %s; want a 4xx refusal", method, store, st, raw)
			}
		}
		var got struct {
			SoftDeleteRetentionInDays int  `json:"softDeleteRetentionInDays"`
			EnablePurgeProtection     bool `json:"enablePurgeProtection"`
		}
		ts.mjson(t, "GET", T+store, mgmtTok, nil, 200, &got)
		if got.SoftDeleteRetentionInDays != 30 || !got.EnablePurgeProtection {
			t.Errorf("S4: after the attempts %s has retention %d, purge protection %v; want 30, true", store, got.SoftDeleteRetentionInDays, got.EnablePurgeProtection)
		}
	}

	// Every object is still soft-deleted with its date, and recovers.
	for _, tg := range targets {
		name := "held-" + nounOf(tg.path)
		var ds deletedState
		st, raw := kvCall(t, hc, tg.token, "GET", tg.base+tg.deleted+name+sdAPI, "")
		if st != 200 || json.Unmarshal(raw, &ds) != nil || ds.ScheduledPurgeDate != purgeDates[tg.label] {
			t.Errorf("%s: at the end GET deleted = %d %s; want 200 with purge date %d", tg.label, st, raw, purgeDates[tg.label])
			continue
		}
		if st, raw := kvCall(t, hc, tg.token, "POST", tg.base+tg.deleted+name+"/recover"+sdAPI, ""); st != 200 {
			t.Errorf("%s: final recover = %d %s; want 200", tg.label, st, raw)
		}
	}
}

// nounOf is the noun Key Vault's messages use for the objects under path ("keys/" → "key").
func nounOf(path string) string {
	return strings.TrimSuffix(strings.TrimSuffix(path, "/"), "s")
}
