package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// secretsClient is an azsecrets client for url, authenticated through the challenge.
func secretsClient(t *testing.T, ts *testServer, url string) *azsecrets.Client {
	t.Helper()
	cred, hc := devCredential(t, ts, ts.Dev.Credentials.ClientSecret)
	c, err := azsecrets.NewClient(url, cred, &azsecrets.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: hc}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// canaryValue is a random secret value that must never show up outside a response body;
// c9Check searches for it in what the test's servers wrote.
func canaryValue(t *testing.T, what string) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	v := "canary-" + what + "-" + hex.EncodeToString(b)
	c9For(t).canaries.add("canaryValue "+what+" "+v[len(v)-6:], []byte(v)) // searched for when the test's servers stop (c9Check)
	return v
}

func TestSecretsThroughAzureSDK(t *testing.T) {
	ts := startDev(t)
	ctx := context.Background()
	vaultURL := ts.Dev.Credentials.VaultURL
	c := secretsClient(t, ts, vaultURL)
	var canaries []string
	canary := func(what string) string {
		v := canaryValue(t, what)
		canaries = append(canaries, v)
		return v
	}

	// Set and get: the value comes back, ids name the version.
	v1 := canary("v1")
	s1, err := c.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{
		Value: to.Ptr(v1), ContentType: to.Ptr("text/plain"), Tags: map[string]*string{"env": to.Ptr("test")},
	}, nil)
	if err != nil {
		t.Fatalf("SetSecret = %v", err)
	}
	if *s1.Value != v1 || s1.ID.Name() != "db-password" || len(s1.ID.Version()) != 32 || !strings.HasPrefix(string(*s1.ID), vaultURL+"secrets/db-password/") {
		t.Fatalf("SetSecret = id %s; want %ssecrets/db-password/<version> and the value", *s1.ID, vaultURL)
	}
	if *s1.ContentType != "text/plain" || *s1.Tags["env"] != "test" || !*s1.Attributes.Enabled || s1.Attributes.Created == nil || *s1.Attributes.RecoveryLevel == "" {
		t.Errorf("SetSecret attributes = %+v", s1.Attributes)
	}
	v2 := canary("v2")
	s2, err := c.SetSecret(ctx, "DB-Password", azsecrets.SetSecretParameters{Value: to.Ptr(v2)}, nil)
	if err != nil || s2.ID.Version() == s1.ID.Version() || s2.ID.Name() != "db-password" {
		t.Fatalf("SetSecret(second version) = %v, %v", s2.ID, err)
	}
	got, err := c.GetSecret(ctx, "db-password", "", nil)
	if err != nil || *got.Value != v2 || *got.ID != *s2.ID {
		t.Fatalf("GetSecret(latest) = %v; want the second version", err)
	}
	got, err = c.GetSecret(ctx, "db-password", s1.ID.Version(), nil)
	if err != nil || *got.Value != v1 || *got.ContentType != "text/plain" {
		t.Fatalf("GetSecret(first version) = %v; want the first value", err)
	}
	_, err = c.GetSecret(ctx, "db-password", strings.Repeat("0", 32), nil)
	wantCode(t, err, 404, "SecretNotFound")
	_, err = c.GetSecret(ctx, "no-such-secret", "", nil)
	wantCode(t, err, 404, "SecretNotFound")

	// Versions.
	versions := map[string]bool{}
	vp := c.NewListSecretPropertiesVersionsPager("db-password", nil)
	for vp.More() {
		p, err := vp.NextPage(ctx)
		if err != nil {
			t.Fatalf("versions page: %v", err)
		}
		for _, it := range p.Value {
			versions[it.ID.Version()] = true
		}
	}
	if len(versions) != 2 || !versions[s1.ID.Version()] || !versions[s2.ID.Version()] {
		t.Errorf("versions = %v; want both", versions)
	}

	// Update: disabling stops get with Key Vault's 403; enabling again restores it.
	up, err := c.UpdateSecretProperties(ctx, "db-password", s2.ID.Version(), azsecrets.UpdateSecretPropertiesParameters{
		ContentType: to.Ptr("application/json"), SecretAttributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(false)},
		Tags: map[string]*string{"rotated": to.Ptr("yes")},
	}, nil)
	if err != nil || *up.Attributes.Enabled || *up.ContentType != "application/json" || *up.Tags["rotated"] != "yes" || up.Value != nil {
		t.Fatalf("UpdateSecretProperties = %+v, %v", up.Attributes, err)
	}
	_, err = c.GetSecret(ctx, "db-password", "", nil)
	wantCode(t, err, 403, "Forbidden")
	if !strings.Contains(err.Error(), "SecretDisabled") || !strings.Contains(err.Error(), "Operation get is not allowed on a disabled secret.") {
		t.Errorf("GetSecret(disabled) = %v; want innererror SecretDisabled and Key Vault's message", err)
	}
	if _, err := c.UpdateSecretProperties(ctx, "db-password", "", azsecrets.UpdateSecretPropertiesParameters{SecretAttributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(true)}}, nil); err != nil {
		t.Fatalf("UpdateSecretProperties(enable) = %v", err)
	}
	if got, err := c.GetSecret(ctx, "db-password", "", nil); err != nil || *got.Value != v2 {
		t.Fatalf("GetSecret after enabling = %v", err)
	}

	// List across pages (the service's page size is 25); items carry no value.
	for i := 0; i < 30; i++ {
		if _, err := c.SetSecret(ctx, fmt.Sprintf("page-%02d", i), azsecrets.SetSecretParameters{Value: to.Ptr(canary("page"))}, nil); err != nil {
			t.Fatal(err)
		}
	}
	pager := c.NewListSecretPropertiesPager(nil)
	names, pages := map[string]bool{}, 0
	for pager.More() {
		p, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("list page %d: %v", pages, err)
		}
		pages++
		if len(p.Value) > 25 {
			t.Errorf("page %d has %d items; want ≤ 25", pages, len(p.Value))
		}
		for _, it := range p.Value {
			if it.ID.Version() != "" {
				t.Errorf("listed id %s names a version; want none", *it.ID)
			}
			names[it.ID.Name()] = true
		}
	}
	if len(names) != 31 || pages < 2 {
		t.Errorf("listed %d secrets in %d pages; want 31 in ≥ 2", len(names), pages)
	}

	// Sizes: 25 KiB is accepted, also when the Go encoder escapes every byte to six; 26 KiB
	// is a 400.
	max := strings.Repeat("x", 25<<10-len(canaries[0])) + canaries[0]
	if s, err := c.SetSecret(ctx, "big", azsecrets.SetSecretParameters{Value: to.Ptr(max)}, nil); err != nil || len(*s.Value) != 25<<10 {
		t.Errorf("SetSecret(25 KiB) = %v", err)
	}
	escaped := strings.Repeat("<", 25<<10)
	if _, err := c.SetSecret(ctx, "big-escaped", azsecrets.SetSecretParameters{Value: to.Ptr(escaped)}, nil); err != nil {
		t.Errorf("SetSecret(25 KiB of '<', 150 KiB on the wire) = %v", err)
	}
	if got, err := c.GetSecret(ctx, "big-escaped", "", nil); err != nil || *got.Value != escaped {
		t.Errorf("GetSecret(big-escaped) = %v", err)
	}
	_, err = c.SetSecret(ctx, "too-big", azsecrets.SetSecretParameters{Value: to.Ptr(strings.Repeat("y", 26<<10))}, nil)
	wantCode(t, err, 400, "BadParameter")

	// Bad names are 400s.
	for _, name := range []string{"bad_name", "a.b", strings.Repeat("n", 128), "café"} {
		_, err := c.SetSecret(ctx, name, azsecrets.SetSecretParameters{Value: to.Ptr(canary("badname"))}, nil)
		var re *azcore.ResponseError
		if !errors.As(err, &re) || re.StatusCode != 400 {
			t.Errorf("SetSecret(%q) = %v; want 400", name, err)
		}
	}

	// Backup before deleting.
	bk, err := c.BackupSecret(ctx, "db-password", nil)
	if err != nil || len(bk.Value) == 0 {
		t.Fatalf("BackupSecret = %v", err)
	}
	if bytes.Contains(bk.Value, []byte(v1)) || bytes.Contains(bk.Value, []byte(v2)) {
		t.Fatal("the backup blob holds a value in clear")
	}

	// Soft delete: gone from live views, reserved, listed as deleted, recoverable.
	del, err := c.DeleteSecret(ctx, "db-password", nil)
	if err != nil || del.RecoveryID == nil || del.ScheduledPurgeDate == nil || del.DeletedDate == nil || del.Value != nil {
		t.Fatalf("DeleteSecret = %+v, %v; want recovery id and dates, no value", del, err)
	}
	if *del.RecoveryID != vaultURL+"deletedsecrets/db-password" {
		t.Errorf("recoveryId = %s; want %sdeletedsecrets/db-password", *del.RecoveryID, vaultURL)
	}
	_, err = c.GetSecret(ctx, "db-password", "", nil)
	wantCode(t, err, 404, "SecretNotFound")
	_, err = c.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{Value: to.Ptr(canary("reserved"))}, nil)
	wantCode(t, err, 409, "Conflict")
	gd, err := c.GetDeletedSecret(ctx, "db-password", nil)
	if err != nil || gd.Value != nil || *gd.ID != *s2.ID {
		t.Fatalf("GetDeletedSecret = %v; want the latest version without its value", err)
	}
	found := false
	dp := c.NewListDeletedSecretPropertiesPager(nil)
	for dp.More() {
		p, err := dp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range p.Value {
			found = found || it.ID.Name() == "db-password"
		}
	}
	if !found {
		t.Error("the deleted secret is not in the deleted listing")
	}
	if _, err := c.RecoverDeletedSecret(ctx, "db-password", nil); err != nil {
		t.Fatalf("RecoverDeletedSecret = %v", err)
	}
	if got, err := c.GetSecret(ctx, "db-password", s1.ID.Version(), nil); err != nil || *got.Value != v1 {
		t.Fatalf("GetSecret(first version) after recover = %v", err)
	}

	// Purge, then restore the backup: every version comes back.
	if _, err := c.DeleteSecret(ctx, "db-password", nil); err != nil {
		t.Fatal(err)
	}
	_, err = c.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: bk.Value}, nil)
	wantCode(t, err, 409, "Conflict")
	if _, err := c.PurgeDeletedSecret(ctx, "db-password", nil); err != nil {
		t.Fatalf("PurgeDeletedSecret = %v", err)
	}
	_, err = c.GetDeletedSecret(ctx, "db-password", nil)
	wantCode(t, err, 404, "SecretNotFound")
	res, err := c.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: bk.Value}, nil)
	if err != nil || *res.ID != *s2.ID {
		t.Fatalf("RestoreSecret = %v", err)
	}
	if got, err := c.GetSecret(ctx, "db-password", s1.ID.Version(), nil); err != nil || *got.Value != v1 {
		t.Fatalf("GetSecret(first version) after restore = %v", err)
	}
	_, err = c.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: bk.Value}, nil)
	wantCode(t, err, 409, "Conflict")
	bad := append([]byte(nil), bk.Value...)
	bad[len(bad)/2] ^= 1
	if _, err := c.DeleteSecret(ctx, "db-password", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PurgeDeletedSecret(ctx, "db-password", nil); err != nil {
		t.Fatal(err)
	}
	_, err = c.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: bad}, nil)
	wantCode(t, err, 400, "BadParameter")

	// Managed HSM pools hold no secrets.
	hsm := secretsClient(t, ts, ts.Dev.Credentials.ManagedHSMURL)
	_, err = hsm.SetSecret(ctx, "x", azsecrets.SetSecretParameters{Value: to.Ptr(canary("hsm"))}, nil)
	wantCode(t, err, 404, "NotFound")

	// Canary: no value is in the audit log or the server log.
	audit, logs := readAudit(t, ts), ts.logs.String()
	if !strings.Contains(audit, "SecretSet") || !strings.Contains(audit, "SecretGet") {
		t.Fatalf("the audit log has no secrets operations; the canary check would be vacuous")
	}
	for _, v := range append(canaries, v1, v2) {
		if strings.Contains(audit, v) {
			t.Errorf("the audit log contains a secret value (%s…)", v[:14])
		}
		if strings.Contains(logs, v) {
			t.Errorf("the server log contains a secret value (%s…)", v[:14])
		}
	}
}

// TestSecretsBodyLimit sends raw requests: a body over the set cap is a 413, and a value
// over 25 KiB inside the cap is a 400.
func TestSecretsBodyLimit(t *testing.T) {
	ts := startDev(t)
	ctx := context.Background()
	cred, hc := devCredential(t, ts, ts.Dev.Credentials.ClientSecret)
	tok, err := cred.GetToken(ctx, policyFor(ts.resources().Base()))
	if err != nil {
		t.Fatal(err)
	}
	put := func(body []byte) (int, string) {
		req, err := http.NewRequest(http.MethodPut, ts.Dev.Credentials.VaultURL+"secrets/raw?api-version=2026-04-01", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := put([]byte(`{"value":"` + strings.Repeat("a", 300<<10) + `"}`)); code != 413 {
		t.Errorf("PUT with a 300 KiB body = %d %s; want 413", code, body)
	}
	if code, body := put([]byte(`{"value":"` + strings.Repeat("a", 26<<10) + `"}`)); code != 400 || !strings.Contains(body, "BadParameter") || strings.Contains(body, "aaaa") {
		t.Errorf("PUT with a 26 KiB value = %d %.200s; want 400 BadParameter without the value", code, body)
	}
	if code, body := put([]byte(`{"value":"ok","unknown":1}`)); code != 400 {
		t.Errorf("PUT with an unknown field = %d %s; want 400", code, body)
	}
	if code, body := put([]byte(`{"contentType":"text/plain"}`)); code != 400 {
		t.Errorf("PUT without a value = %d %s; want 400", code, body)
	}
	if code, body := put([]byte(`{"value":"ok"}`)); code != 200 || !strings.Contains(body, `"value":"ok"`) {
		t.Errorf("PUT = %d %s; want 200 with the value", code, body)
	}
}
