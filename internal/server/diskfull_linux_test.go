package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/config"
	"github.com/coffer-kms/coffer/internal/testfs"
)

// TestDiskFull runs a real server whose storage sits on a small tmpfs and writes secrets and
// keys until the disk is full (SECURITY-NOTES §4 "disk full"). Every write answered 2xx must
// be readable with its value; every refused write must be a 503 in Key Vault's error shape
// that left nothing behind; when space returns the next write succeeds, on the same process;
// and after a clean restart everything acknowledged is still there.
//
// Reads must keep working while the disk is full. "store-alone" puts only the database on
// the tmpfs (the audit log has room); "data-dir" puts the whole data directory there, then
// fills the disk to the last byte: the audit log writes into the space it allocated ahead,
// and once that is spent it fails closed, refusing reads and writes alike with a 503 until
// space returns. "thin-data-dir" puts the data directory on thin storage, where writes reach
// the page cache and fdatasync fails (testfs.Thin), and restarts after a remount, which drops
// the page cache as a power cut would.
func TestDiskFull(t *testing.T) {
	t.Run("store-alone", func(t *testing.T) { diskFull(t, "store-alone") })
	t.Run("data-dir", func(t *testing.T) { diskFull(t, "data-dir") })
	t.Run("thin-data-dir", func(t *testing.T) { diskFull(t, "thin") })
}

// fullVault is a client of the dev vault that remembers what it wrote.
type fullVault struct {
	t    *testing.T
	ts   *testServer
	hc   *http.Client
	tok  string
	base string

	secrets map[string]string // acknowledged secret name → value
	keys    map[string]string // acknowledged key name → kid
	sent    map[string]string // every secret name tried → the value sent
	refused map[string]string // name → the message of its 503
	counts  map[string]int    // message → how many 503s carried it
}

// auditRefusal is the data plane's answer when a request's audit record cannot be written
// after its handler ran: a write refused so may have been stored.
const auditRefusal = "the audit log cannot be written"

const kvVersion = "?api-version=7.6"

func newFullVault(t *testing.T, ts *testServer) *fullVault {
	dev := ts.Dev.Credentials
	hc := loopbackClient(t, ts.caFile)
	_, tok := rawToken(t, ts, hc, dev.TenantID, dev.ClientID, dev.ClientSecret, ts.resources().Base())
	return &fullVault{t: t, ts: ts, hc: hc, tok: tok, base: dev.VaultURL,
		secrets: map[string]string{}, keys: map[string]string{}, sent: map[string]string{},
		refused: map[string]string{}, counts: map[string]int{}}
}

func (v *fullVault) call(method, path, body string) (int, []byte) {
	v.t.Helper()
	return kvCall(v.t, v.hc, v.tok, method, v.base+path+kvVersion, body)
}

// refusal checks that a failed request is a 503 in Key Vault's error shape and notes it
// against name.
func (v *fullVault) refusal(what, name string, status int, raw []byte) {
	v.t.Helper()
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(raw, &body); err != nil || body.Error.Code == "" || body.Error.Message == "" {
		v.t.Fatalf("%s = %d %s; want Key Vault's error shape", what, status, raw)
	}
	if status != http.StatusServiceUnavailable || body.Error.Code != "ServiceUnavailable" {
		v.t.Fatalf("%s = %d %s; want 503 ServiceUnavailable; server log:\n%s", what, status, raw, v.ts.logs.String())
	}
	v.refused[name] = body.Error.Message
	v.counts[body.Error.Message]++
}

// mayExist reports whether the refused write of name may have been stored: only if its
// refusal came from the audit log, written after the commit.
func (v *fullVault) mayExist(name string) bool {
	return strings.HasPrefix(v.refused[name], auditRefusal)
}

// write sets secret i or creates key i (every third write) and reports whether it was
// acknowledged.
func (v *fullVault) write(i int) bool {
	v.t.Helper()
	name := writeName(i)
	if i%3 == 2 {
		status, raw := v.call("POST", "keys/"+name+"/create", `{"kty":"EC","crv":"P-256"}`)
		if status/100 == 2 {
			var k struct{ Key struct{ Kid string } }
			if err := json.Unmarshal(raw, &k); err != nil || k.Key.Kid == "" {
				v.t.Fatalf("create %s = %d %s; want a key bundle", name, status, raw)
			}
			v.keys[name] = k.Key.Kid
			return true
		}
		v.refusal("create "+name, name, status, raw)
		return false
	}
	value := strings.Repeat(fmt.Sprintf("%s;", name), 100)
	v.sent[name] = value
	status, raw := v.call("PUT", "secrets/"+name, `{"value":"`+value+`"}`)
	if status/100 == 2 {
		v.secrets[name] = value
		return true
	}
	v.refusal("set "+name, name, status, raw)
	return false
}

// writeName is the name of the object write i makes.
func writeName(i int) string {
	if i%3 == 2 {
		return fmt.Sprintf("key-%05d", i)
	}
	return fmt.Sprintf("secret-%05d", i)
}

// readAll reads back every acknowledged secret and key, and checks that the listings hold
// exactly the objects that exist, each with the value sent for it: nothing half-written.
func (v *fullVault) readAll() {
	v.t.Helper()
	for name, want := range v.secrets {
		status, raw := v.call("GET", "secrets/"+name, "")
		var s struct{ Value string }
		if status != 200 || json.Unmarshal(raw, &s) != nil || s.Value != want {
			v.t.Fatalf("GET acknowledged secret %s = %d %.200s; want 200 with its value", name, status, raw)
		}
	}
	for name, kid := range v.keys {
		status, raw := v.call("GET", "keys/"+name, "")
		var k struct{ Key struct{ Kid string } }
		if status != 200 || json.Unmarshal(raw, &k) != nil || kidPath(k.Key.Kid) != kidPath(kid) {
			v.t.Fatalf("GET acknowledged key %s = %d %.200s; want 200 with kid %s", name, status, raw, kid)
		}
	}
	listed := v.list("secrets")
	for name := range v.secrets {
		if !listed[name] {
			v.t.Errorf("acknowledged secret %s is missing from the listing", name)
		}
	}
	for name := range listed {
		want, ok := v.sent[name]
		if !ok {
			v.t.Fatalf("listing holds secret %s, which was never written", name)
		}
		status, raw := v.call("GET", "secrets/"+name, "")
		var s struct{ Value string }
		if status != 200 || json.Unmarshal(raw, &s) != nil || s.Value != want {
			v.t.Errorf("listed secret %s = %d %.200s; want 200 with the value sent", name, status, raw)
		}
		if _, acked := v.secrets[name]; !acked && !v.mayExist(name) {
			v.t.Errorf("secret %s was refused (%s) but is stored", name, v.refused[name])
		}
	}
	keys := v.list("keys")
	for name := range v.keys {
		if !keys[name] {
			v.t.Errorf("acknowledged key %s is missing from the listing", name)
		}
	}
	for name := range keys {
		if status, raw := v.call("GET", "keys/"+name, ""); status != 200 {
			v.t.Errorf("listed key %s = %d %.200s; want 200", name, status, raw)
		}
		if _, acked := v.keys[name]; !acked && !v.mayExist(name) {
			v.t.Errorf("key %s was refused (%s) but is stored", name, v.refused[name])
		}
	}
	// A write refused for want of space left nothing, not even an object the listing missed.
	for name := range v.refused {
		kind := "secrets/"
		if strings.HasPrefix(name, "key-") {
			kind = "keys/"
		}
		if status, raw := v.call("GET", kind+name, ""); status != 404 && !v.mayExist(name) {
			v.t.Errorf("GET %s, refused with %q = %d %.200s; want 404", name, v.refused[name], status, raw)
		}
	}
}

// kidPath is a key id without its scheme and host (a restarted dev server has a new port).
func kidPath(kid string) string {
	_, path, _ := strings.Cut(strings.TrimPrefix(kid, "https://"), "/")
	return path
}

// list returns the names in every page of the secrets or keys listing.
func (v *fullVault) list(kind string) map[string]bool {
	v.t.Helper()
	names := map[string]bool{}
	next := v.base + kind + kvVersion + "&maxresults=25"
	for next != "" {
		status, raw := kvCall(v.t, v.hc, v.tok, "GET", next, "")
		var page struct {
			Value    []struct{ ID, Kid string }
			NextLink string
		}
		if status != 200 || json.Unmarshal(raw, &page) != nil {
			v.t.Fatalf("list %s = %d %.200s", kind, status, raw)
		}
		for _, item := range page.Value {
			id := item.ID
			if id == "" {
				id = item.Kid
			}
			names[id[strings.LastIndex(id, "/")+1:]] = true
		}
		next = page.NextLink
	}
	return names
}

// freeBytes is the space left on the file system holding dir.
func freeBytes(t *testing.T, dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

func diskFull(t *testing.T, mode string) {
	var disk, dataDir string // where the filler goes, where the server keeps its data
	var thin *testfs.Thin
	switch mode {
	case "store-alone":
		disk, dataDir = testfs.Tmpfs(t, "16m"), t.TempDir()
		if err := os.Symlink(filepath.Join(disk, DBFile), filepath.Join(dataDir, DBFile)); err != nil {
			t.Fatal(err)
		}
	case "data-dir":
		disk = testfs.Tmpfs(t, "16m")
		dataDir = disk
	case "thin":
		thin = testfs.NewThin(t, "24m", "64m")
		disk, dataDir = thin.Backing, thin.Dir
	}
	cfg := loadConfig(t, "--dev", "--listen", "127.0.0.1:0", "--data-dir", dataDir)
	ts := start(t, cfg, "")
	v := newFullVault(t, ts)
	for i := range 10 { // some data before the disk fills
		if !v.write(i) {
			t.Fatalf("write %d refused with %v before the disk was filled", i, v.refused)
		}
	}
	// Leave 256 KiB: a few dozen writes.
	filler := filepath.Join(disk, "filler")
	testfs.Fill(t, filler, int(freeBytes(t, disk)-256<<10))

	before := len(v.secrets) + len(v.keys)
	next, inARow := 10, 0
	for ; inARow < 20 && next < 5000; next++ {
		if v.write(next) {
			inARow = 0
		} else {
			inARow++
		}
	}
	if inARow < 20 {
		t.Fatalf("%d writes after filling the disk, and it still takes them", next)
	}
	t.Logf("%d writes acknowledged after the disk was filled, then 20 refused in a row: %v",
		len(v.secrets)+len(v.keys)-before, v.counts)
	if !strings.Contains(ts.logs.String(), "no space left on device") {
		t.Errorf("the server log does not say the disk is full:\n%s", ts.logs.String())
	}

	v.readAll() // reads work while the disk is full
	var rest string
	if mode == "data-dir" {
		// The audit log shares the disk. It writes into space it allocated ahead
		// (audit.PreallocBytes), so reads go on even when the disk is full to the last byte;
		// once that is spent it fails closed and refuses every request until space returns.
		rest = filepath.Join(disk, "rest")
		testfs.FillRest(t, rest)
		v.readAll()
		served := 0
		for ; served < 50000; served++ {
			status, raw := v.call("GET", "secrets/secret-00000", "")
			if status != 200 {
				v.refusal("read on a disk full to the last byte", "read", status, raw)
				break
			}
		}
		if !v.mayExist("read") {
			t.Fatalf("read on a disk full to the last byte refused with %q after %d reads; want the audit log's refusal", v.refused["read"], served)
		}
		delete(v.refused, "read")
		if v.write(next) {
			t.Fatalf("write %d acknowledged with the audit log failing", next)
		}
		next++
		t.Logf("on the disk full to the last byte the audit log's reserve served %d reads, then: %v", served, v.counts)
	}

	for _, f := range []string{filler, rest} {
		if f == "" {
			continue
		}
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	freed := time.Now()
	if !v.write(next) {
		t.Fatalf("the first write after space returned was refused: %v", v.refused)
	}
	t.Logf("writes resumed %v after space returned, without a restart", time.Since(freed).Round(time.Millisecond))
	for i := next + 1; i < next+10; i++ {
		if !v.write(i) {
			t.Fatalf("write %d after space returned refused: %v", i, v.refused[fmt.Sprint(i)])
		}
	}
	v.readAll()

	remount := func() {}
	if thin != nil {
		remount = thin.Remount // what reached the device, as after a power cut
	}
	v.restart(cfg, remount)
	v.readAll()
	t.Logf("after a clean restart: %d secrets and %d keys acknowledged, all read back", len(v.secrets), len(v.keys))
}

// restart shuts the server down, runs between (a remount, say), starts it again with cfg and
// points v at the new server.
func (v *fullVault) restart(cfg *config.Config, between func()) {
	v.t.Helper()
	if err := v.ts.Shutdown(v.t.Context()); err != nil {
		v.t.Fatalf("Shutdown = %v", err)
	}
	between()
	v.ts = start(v.t, cfg, "")
	dev := v.ts.Dev.Credentials
	v.hc = loopbackClient(v.t, v.ts.caFile)
	v.base = dev.VaultURL
	_, v.tok = rawToken(v.t, v.ts, v.hc, dev.TenantID, dev.ClientID, dev.ClientSecret, v.ts.resources().Base())
}
