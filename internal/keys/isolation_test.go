package keys

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

func TestTenantIsolation(t *testing.T) {
	f := newFixture(t)
	a := vault(tenantA, "shared", 90, false)
	a2 := vault(tenantA, "second", 90, false)
	b := vault(tenantB, "shared", 90, false) // same vault name, other tenant
	hsm := tenancy.Vault{TenantID: tenantA, Name: "shared", Kind: tenancy.KindManagedHSM}
	ka := f.mustCreate(a, "same", ecKey)
	ka2 := f.mustCreate(a2, "same", ecKey)
	kb := f.mustCreate(b, "same", ecKey)
	kh := f.mustCreate(hsm, "same", ecKey)
	if string(ka.Key.X) == string(kb.Key.X) || string(ka.Key.X) == string(ka2.Key.X) || string(ka.Key.X) == string(kh.Key.X) {
		t.Fatal("keys of the same name in different vaults share material")
	}
	// A version of one vault is not found in another.
	for _, v := range []tenancy.Vault{a2, b, hsm} {
		_, err := f.svc.Get(f.ctx, v, f.base, "same", versionOf(ka.Key.KID))
		wantErr(t, "Get(other vault's version)", err, ErrKeyNotFound)
	}
	// Deleting in one vault leaves the others alone.
	if _, err := f.svc.Delete(f.ctx, a, f.base, "same"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		v   tenancy.Vault
		kid string
	}{{a2, ka2.Key.KID}, {b, kb.Key.KID}, {hsm, kh.Key.KID}} {
		got, err := f.svc.Get(f.ctx, tt.v, f.base, "same", "")
		if err != nil || got.Key.KID != tt.kid {
			t.Errorf("Get(%s/%s) after deleting in %s = %v, %v", tt.v.TenantID, tt.v.Name, a.Name, got.Key, err)
		}
		if list, _ := f.svc.ListDeleted(f.ctx, tt.v, f.base, ListOptions{}); len(list.Value) != 0 {
			t.Errorf("ListDeleted(%s/%s) = %d items; want 0", tt.v.TenantID, tt.v.Name, len(list.Value))
		}
		if list, _ := f.svc.List(f.ctx, tt.v, f.base, ListOptions{}); len(list.Value) != 1 {
			t.Errorf("List(%s/%s) = %d items; want 1", tt.v.TenantID, tt.v.Name, len(list.Value))
		}
	}
	// The other tenant can create, recover or purge nothing of tenant A.
	_, err := f.svc.Recover(f.ctx, b, f.base, "other")
	wantErr(t, "Recover(other tenant)", err, ErrKeyNotFound)
	if _, err := f.svc.Delete(f.ctx, b, f.base, "same"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Purge(f.ctx, b, f.base, "same"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.GetDeleted(f.ctx, a, f.base, "same"); err != nil {
		t.Errorf("tenant B's purge touched tenant A's deleted key: %v", err)
	}
	// Every record of a vault is under its own prefix.
	page, err := f.store.List(f.ctx, "", storageAll)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range page.Keys {
		if !strings.HasPrefix(k, "tenants/"+tenantA+"/vaults/shared/") && !strings.HasPrefix(k, "tenants/"+tenantA+"/vaults/second/") &&
			!strings.HasPrefix(k, "tenants/"+tenantA+"/managedhsms/shared/") && !strings.HasPrefix(k, schedulePrefix) {
			t.Errorf("record %s is outside every vault namespace", k)
		}
	}
	// An invalid vault is refused, not mapped to some path.
	for _, v := range []tenancy.Vault{{TenantID: "../x", Name: "v"}, {TenantID: tenantA, Name: ""}, {TenantID: tenantA, Name: "v", Kind: "other"}} {
		if _, err := f.svc.Get(f.ctx, v, f.base, "same", ""); err == nil || errors.Is(err, ErrKeyNotFound) {
			t.Errorf("Get(vault %+v) = %v; want an invalid-vault error", v, err)
		}
	}
}

// TestNoPrivateMaterial marshals every value the Service returns, and every error, and
// checks that no private JWK member, private key byte or provider handle is in any of them.
func TestNoPrivateMaterial(t *testing.T) {
	f := newFixture(t)
	var out []any
	keep := func(v any, err error) {
		t.Helper()
		if err != nil {
			out = append(out, err.Error())
			return
		}
		out = append(out, v)
	}
	priv := mustECKey(t)
	jwk := ecJWK(priv)
	keep(f.svc.Import(f.ctx, f.v, f.base, "imp", ImportParams{Key: jwk}))
	keep(f.svc.Create(f.ctx, f.v, f.base, "rsa", rsaKey))
	keep(f.svc.Create(f.ctx, f.v, f.base, "ec", CreateParams{Kty: provider.EC, Curve: provider.P256K}))
	for _, name := range []string{"imp", "rsa", "ec"} {
		keep(f.svc.Get(f.ctx, f.v, f.base, name, ""))
		keep(f.svc.Update(f.ctx, f.v, f.base, name, "", UpdateParams{Tags: map[string]string{"x": "y"}}))
		keep(f.svc.Rotate(f.ctx, f.v, f.base, name))
		keep(f.svc.ListVersions(f.ctx, f.v, f.base, name, ListOptions{}))
		keep(f.svc.GetRotationPolicy(f.ctx, f.v, f.base, name))
	}
	keep(f.svc.Sign(f.ctx, f.v, f.base, "imp", "", SignParams{Algorithm: provider.AlgES256, Value: digest("m")}))
	keep(f.svc.Sign(f.ctx, f.v, f.base, "imp", "", SignParams{Algorithm: provider.AlgES256, Value: []byte("short")}))
	keep(f.svc.Encrypt(f.ctx, f.v, f.base, "rsa", "", OperationParams{Algorithm: provider.AlgRSAOAEP256, Value: []byte("p")}))
	keep(f.svc.Decrypt(f.ctx, f.v, f.base, "rsa", "", OperationParams{Algorithm: provider.AlgRSAOAEP256, Value: make([]byte, 256)}))
	keep(f.svc.Import(f.ctx, f.v, f.base, "bad", ImportParams{Key: &provider.JWK{Kty: provider.EC, Crv: provider.P256, X: jwk.Y, Y: jwk.X, D: jwk.D}}))
	keep(f.svc.List(f.ctx, f.v, f.base, ListOptions{}))
	blob, err := f.svc.Backup(f.ctx, f.v, "imp")
	keep(nil, err)
	keep(f.svc.Delete(f.ctx, f.v, f.base, "imp"))
	keep(f.svc.GetDeleted(f.ctx, f.v, f.base, "imp"))
	keep(f.svc.ListDeleted(f.ctx, f.v, f.base, ListOptions{}))
	keep(f.svc.Recover(f.ctx, f.v, f.base, "imp"))
	keep(f.svc.Restore(f.ctx, vault(tenantA, "v2", 90, false), f.base, blob.Value))
	keep(f.svc.Restore(f.ctx, f.v, f.base, blob.Value))

	var secrets [][]byte
	secrets = append(secrets, jwk.D)
	for _, h := range f.prov.handles {
		secrets = append(secrets, h)
		// The members of a soft handle (the PKCS #8 DER or scalar, base64url) on their own.
		var doc map[string]any
		if err := json.Unmarshal(h, &doc); err != nil {
			t.Fatalf("a soft handle is not JSON: %v", err)
		}
		for _, v := range doc {
			if s, ok := v.(string); ok && len(s) > 20 {
				secrets = append(secrets, []byte(s))
				if raw, err := base64.RawURLEncoding.DecodeString(s); err == nil {
					secrets = append(secrets, raw)
				}
			}
		}
	}
	// The scan must be able to see a leak.
	if leaked := mustJSON(t, jwk); !strings.Contains(leaked, `"d":`) || !strings.Contains(leaked, base64.RawURLEncoding.EncodeToString(jwk.D)) {
		t.Fatalf("the leak scan cannot see a private JWK: %s", leaked)
	}
	var all bytes.Buffer
	for _, v := range out {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%T) = %v", v, err)
		}
		all.Write(b)
		all.WriteByte('\n')
	}
	text := all.String()
	for _, member := range []string{`"d":`, `"p":`, `"q":`, `"dp":`, `"dq":`, `"qi":`, `"k":`, `"handle"`, `"pkcs8"`} {
		if strings.Contains(text, member) {
			t.Errorf("a returned value contains the member %s", member)
		}
	}
	for i, s := range secrets {
		for _, enc := range []string{string(s), base64.StdEncoding.EncodeToString(s), base64.RawURLEncoding.EncodeToString(s), base64.RawStdEncoding.EncodeToString(s)} {
			if len(enc) >= 16 && strings.Contains(text, enc) {
				t.Errorf("secret %d (private key or handle) appears in a returned value", i)
			}
		}
	}
	if len(out) < 30 {
		t.Errorf("only %d values checked", len(out))
	}
}
