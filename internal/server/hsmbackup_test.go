package server

import (
	"context"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
)

// TestHSMFullBackupAndRestore: a pool's full backup restores into a pool holding the same
// security domain (all keys, then one key selectively), not into a pool with another domain;
// bad parameters and inactive pools are refused.
func TestHSMFullBackupAndRestore(t *testing.T) {
	ts := startDev(t)
	ctx := context.Background()
	c := sdPools(t, ts, "fa", "fb", "fc", "fd")
	port := ts.resources().port
	pool := func(n string) *azkeys.Client {
		return azkeysClient(t, ts, "https://"+n+".managedhsm.localhost:"+port+"/")
	}
	holders := custodianKeys(t, 3)
	blob := c.download(t, "fa", 2, holders...)
	if status, out := c.upload(t, "fb", blob, holders[0], holders[1]); status != 202 {
		t.Fatalf("upload = %d %v", status, out)
	}
	c.download(t, "fc", 2, holders...)

	for _, n := range []string{"k1", "k2"} {
		if _, err := pool("fa").CreateKey(ctx, n, azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	sas := map[string]any{"storageResourceUri": "https://account.blob.core.windows.net/backups", "token": "ignored"}
	status, out, h := c.call(t, "POST", "fa", "/backup", sas)
	uri, _ := out["azureStorageBlobContainerUri"].(string)
	job, _ := out["jobId"].(string)
	if status != 202 || out["status"] != "Succeeded" || !strings.HasPrefix(uri, "https://account.blob.core.windows.net/backups/mhsm-fa-") || h.Get("Azure-AsyncOperation") == "" {
		t.Fatalf("POST /backup = %d %v", status, out)
	}
	if status, st, _ := c.call(t, "GET", "fa", "/backup/"+job+"/pending", nil); status != 200 || st["status"] != "Succeeded" {
		t.Errorf("backup pending = %d %v", status, st)
	}
	folder := uri[strings.LastIndex(uri, "/")+1:]
	restore := map[string]any{"sasTokenParameters": sas, "folderToRestore": folder}

	// Another domain: refused, nothing restored.
	if status, out, _ := c.call(t, "PUT", "fc", "/restore", restore); status != 400 || errCode(out) != "BadParameter" {
		t.Errorf("restore into another domain = %d %v; want 400", status, out)
	}
	if _, err := pool("fc").GetKey(ctx, "k1", "", nil); err == nil {
		t.Error("k1 exists in fc after a refused restore")
	}
	// Inactive pool: refused.
	if status, out, _ := c.call(t, "PUT", "fd", "/restore", restore); status != 403 {
		t.Errorf("restore into an inactive pool = %d %v; want 403", status, out)
	}
	// The same domain: every key restores and works.
	if status, out, _ := c.call(t, "PUT", "fb", "/restore", restore); status != 202 || out["status"] != "Succeeded" {
		t.Fatalf("PUT /restore = %d %v", status, out)
	}
	digest := sha256.Sum256([]byte("restored"))
	for _, n := range []string{"k1", "k2"} {
		if _, err := pool("fb").Sign(ctx, n, "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest[:]}, nil); err != nil {
			t.Errorf("Sign(%s) in the restored pool = %v", n, err)
		}
	}
	// Restoring again conflicts (names taken) and changes nothing.
	if status, _, _ := c.call(t, "PUT", "fb", "/restore", restore); status != 409 {
		t.Errorf("second full restore = %d; want 409", status)
	}
	// Selective restore of one purged key.
	if _, err := pool("fb").DeleteKey(ctx, "k2", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := pool("fb").PurgeDeletedKey(ctx, "k2", nil); err != nil {
		t.Fatal(err)
	}
	sel := map[string]any{"sasTokenParameters": sas, "folder": folder}
	if status, out, _ := c.call(t, "PUT", "fb", "/keys/k2/restore", sel); status != 202 {
		t.Fatalf("selective restore = %d %v", status, out)
	}
	if _, err := pool("fb").GetKey(ctx, "k2", "", nil); err != nil {
		t.Errorf("GetKey(k2) after selective restore = %v", err)
	}

	for _, tc := range []struct {
		name, method, path string
		body               any
	}{
		{"fail/http-uri", "POST", "/backup", map[string]any{"storageResourceUri": "http://account/backups"}},
		{"fail/no-container", "POST", "/backup", map[string]any{"storageResourceUri": "https://account/"}},
		{"fail/traversal-container", "POST", "/backup", map[string]any{"storageResourceUri": "https://account/../etc"}},
		{"fail/traversal-folder", "PUT", "/restore", map[string]any{"sasTokenParameters": sas, "folderToRestore": "../x"}},
		{"fail/unknown-folder", "PUT", "/restore", map[string]any{"sasTokenParameters": sas, "folderToRestore": "mhsm-fa-none"}},
		{"fail/no-sas", "PUT", "/restore", map[string]any{"folderToRestore": folder}},
		{"fail/selective-unknown-key", "PUT", "/keys/nokey/restore", sel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, out, _ := c.call(t, tc.method, "fb", tc.path, tc.body); status != 400 || errCode(out) != "BadParameter" {
				t.Errorf("%s %s = %d %v; want 400 BadParameter", tc.method, tc.path, status, out)
			}
		})
	}
	if status, _, _ := c.call(t, "GET", "fa", "/backup/"+strings.Repeat("0", 32)+"/pending", nil); status != 404 {
		t.Errorf("unknown job = %d; want 404", status)
	}
}
