package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPKCS11StoreRollbackRefused (SECURITY-NOTES D6): with --seal pkcs11 the store
// generation is also kept in a data object of the token. A data directory restored from an
// older copy is consistent with itself, yet the server stays sealed, its seal status giving
// both generations and the override; started once with --accept-store-rollback it serves the
// old store, and from then on starts normally again.
func TestPKCS11StoreRollbackRefused(t *testing.T) {
	_, args, files, data, stop := pkcs11SealSetup(t, "rollback-test")
	ctx := context.Background()
	dbFile := filepath.Join(data, DBFile)
	copyTo := func(from, to string) {
		b, err := os.ReadFile(from)
		if err == nil {
			err = os.WriteFile(to, b, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	ts := start(t, loadConfig(t, args...), files.CACert)
	if status, body, _ := ts.do(t, "POST", "/v1/sys/init", "", map[string]int{}); status != 200 {
		t.Fatalf("init = %d %v", status, body)
	}
	if err := ts.barrier.Put(ctx, "tenants/t1/vaults/v1/secrets/s/meta", []byte("old")); err != nil {
		t.Fatal(err)
	}
	old := ts.barrier.Generation()
	stop(ts)
	copyTo(dbFile, dbFile+".old")

	ts = start(t, loadConfig(t, args...), files.CACert)
	for i := range 3 {
		if err := ts.barrier.Put(ctx, "tenants/t1/vaults/v1/secrets/s/meta", []byte(fmt.Sprint("new ", i))); err != nil {
			t.Fatal(err)
		}
	}
	newer := ts.barrier.Generation()
	stop(ts) // records the generation in the token
	if newer <= old {
		t.Fatalf("generation went from %d to %d; want it to advance with the writes", old, newer)
	}

	copyTo(dbFile+".old", dbFile)
	ts = start(t, loadConfig(t, args...), files.CACert)
	checkSealedBy(t, ts, `"accept-store-rollback"`)
	_, body, _ := ts.do(t, "GET", "/v1/sys/seal-status", "", nil)
	msg, _ := body["error"].(string)
	for _, want := range []string{fmt.Sprintf("at generation %d", old), fmt.Sprintf("recorded generation %d", newer), `data object "rollback-test-generation"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("seal-status error %q does not say %q", msg, want)
		}
	}
	stop(ts)

	ts = start(t, loadConfig(t, append(args, "--accept-store-rollback")...), files.CACert)
	if status, body, _ := ts.do(t, "GET", "/readyz", "", nil); status != 200 {
		t.Fatalf("readyz with --accept-store-rollback = %d %v; want 200", status, body)
	}
	if v, err := ts.barrier.Get(ctx, "tenants/t1/vaults/v1/secrets/s/meta"); err != nil || string(v) != "old" {
		t.Errorf("accepted store serves %q, %v; want the old record", v, err)
	}
	if g := ts.barrier.Generation(); g <= newer {
		t.Errorf("accepted store at generation %d; want above %d", g, newer)
	}
	stop(ts)
	ts = start(t, loadConfig(t, args...), files.CACert)
	if status, body, _ := ts.do(t, "GET", "/readyz", "", nil); status != 200 {
		t.Errorf("readyz after the accepted rollback, without the setting = %d %v; want 200", status, body)
	}
}
