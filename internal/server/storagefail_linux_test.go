package server

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/config"
	"github.com/coffer-kms/coffer/internal/testfs"
)

// TestStorageFailure runs a real server whose database fails under it (SECURITY-NOTES D4):
// every write is refused with a 503 in Key Vault's error shape that names neither the path
// nor the errno, reads go on, /readyz answers 503, and nothing acknowledged is lost.
//
// "read-only" puts the database on an ext4 file system that turns read-only under the open
// file (errors=remount-ro, testfs.Thin.ForceReadOnly: a plain `mount -o remount,ro` is
// refused while a file is open for writing). Linux keeps it read-only until it is unmounted,
// so the server is restarted after a remount, and then everything acknowledged is there.
// "eio" puts it on a device whose writes fail with EIO until it heals (testfs.Flaky): once it
// does, /readyz turns 200 and writes resume without a restart. "file-gone" renames the
// database file away (writes refused) and back (writes resume), then deletes it: a restart
// refuses to start on a missing or empty database, and starts once the file is restored
// from a backup. "audit-log-gone" renames the audit log away: every request is refused,
// /readyz (audited like every request) too, and all is well again once it is back.
// "data-dir-gone" moves the whole data directory away, which the server cannot tell from
// its deletion: writes are refused by storage, reads by the audit log, /readyz answers 503;
// once it is back, requests are served again. "read-fault" truncates the database file under
// the running server, so that reads through bbolt's memory map would raise SIGBUS: reads of
// what storage holds answer 503 too (not 500, not 404, not a crash), and once the file's
// bytes are back everything is served again without a restart.
func TestStorageFailure(t *testing.T) {
	t.Run("read-only", func(t *testing.T) {
		th := testfs.NewFragile(t, "24m", "64m")
		v, cfg := storeOn(t, th.Dir)
		next := v.acked(0, 10)
		th.ForceReadOnly()
		next = v.unavailable(next, "read-only file system")
		v.restart(cfg, th.Remount)
		v.readAll()
		v.acked(next, 10)
		v.ready(http.StatusOK)
	})
	t.Run("eio", func(t *testing.T) {
		fl := testfs.NewFlaky(t, "64m")
		v, cfg := storeOn(t, fl.Dir)
		next := v.acked(0, 10)
		fl.Fail()
		next = v.unavailable(next, "input/output error")
		fl.Heal()
		v.ready(http.StatusOK) // its probe commit succeeds, without a client's write
		next = v.acked(next, 10)
		v.readAll()
		v.restart(cfg, fl.Remount)
		v.readAll()
		v.acked(next, 5)
	})
	t.Run("file-gone", func(t *testing.T) {
		dataDir := t.TempDir()
		cfg := loadConfig(t, "--dev", "--listen", "127.0.0.1:0", "--data-dir", dataDir)
		v := newFullVault(t, start(t, cfg, ""))
		db, moved, backup := filepath.Join(dataDir, DBFile), filepath.Join(dataDir, "moved.db"), filepath.Join(t.TempDir(), "backup.db")
		next := v.acked(0, 10)
		rename(t, db, moved)
		next = v.unavailable(next, "no longer the database file this server opened")
		rename(t, moved, db)
		v.ready(http.StatusOK)
		next = v.acked(next, 10)
		copyFile(t, db, backup) // every write is committed and synced, none in flight

		if err := os.Remove(db); err != nil {
			t.Fatal(err)
		}
		v.unavailable(next, "no longer the database file this server opened")
		if err := v.ts.Shutdown(t.Context()); err != nil {
			t.Fatalf("Shutdown = %v", err)
		}
		err := New(cfg, io.Discard, io.Discard).Start(context.Background())
		if err == nil || !strings.Contains(err.Error(), db+" is missing") || !strings.Contains(err.Error(), "restore it from a backup") {
			t.Fatalf("Start with %s deleted = %v; want a refusal that names the file and says to restore it", db, err)
		}
		if _, serr := os.Stat(db); !os.IsNotExist(serr) {
			t.Errorf("the refused Start left %s behind (%v); want it not created", db, serr)
		}
		t.Logf("restart with the database deleted: %v", err)
		// An empty file in its place (bbolt makes a new database of it) is no better.
		if err := os.WriteFile(db, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		err = New(cfg, io.Discard, io.Discard).Start(context.Background())
		if err == nil || !strings.Contains(err.Error(), db+" holds no initialized store") {
			t.Fatalf("Start with %s emptied = %v; want a refusal that names the file", db, err)
		}
		v.restart(cfg, func() { copyFile(t, backup, db) })
		v.readAll()
		v.acked(next+10, 5)
	})
	t.Run("read-fault", func(t *testing.T) {
		dataDir := t.TempDir()
		cfg := loadConfig(t, "--dev", "--listen", "127.0.0.1:0", "--data-dir", dataDir)
		v := newFullVault(t, start(t, cfg, ""))
		db := filepath.Join(dataDir, DBFile)
		next := v.acked(0, 30) // none read yet: the barrier's read cache holds none of them
		orig, err := os.ReadFile(db)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(db, 4096); err != nil {
			t.Fatal(err)
		}
		reads := []string{"secrets/" + writeName(0), "keys/" + writeName(2), "secrets/" + writeName(next), "secrets", "keys"}
		for _, path := range reads {
			status, raw := v.call("GET", path, "")
			v.refusal("GET "+path+" with "+DBFile+" truncated", "read", status, raw)
			if got := v.refused["read"]; got != api.ErrStorageUnavailable.Message {
				t.Errorf("GET %s with %s truncated refused with %q; want %q", path, DBFile, got, api.ErrStorageUnavailable.Message)
			}
			if strings.Contains(string(raw), DBFile) || strings.Contains(string(raw), dataDir) || strings.Contains(string(raw), "write") {
				t.Errorf("GET %s with %s truncated = %s; want nothing about the file, nor about a write", path, DBFile, raw)
			}
		}
		delete(v.refused, "read")
		for range 3 { // unavailable would read back what is acknowledged, which now fails
			if v.write(next) || v.refused[writeName(next)] != api.ErrStorageUnavailable.Message {
				t.Fatalf("write %d with %s truncated: refused %q; want %q", next, DBFile, v.refused[writeName(next)], api.ErrStorageUnavailable.Message)
			}
			next++
		}
		v.ready(http.StatusServiceUnavailable)
		if !strings.Contains(v.ts.logs.String(), "is shorter than the database") {
			t.Errorf("the server log does not say the database file is short:\n%s", v.ts.logs.String())
		}
		if err := os.WriteFile(db, orig, 0o600); err != nil { // the same file, its bytes back
			t.Fatal(err)
		}
		v.ready(http.StatusOK)
		v.readAll()
		next = v.acked(next, 10)
		v.restart(cfg, func() {})
		v.readAll()
		v.acked(next, 5)
	})
	t.Run("audit-log-gone", func(t *testing.T) {
		dataDir := t.TempDir()
		v := newFullVault(t, start(t, loadConfig(t, "--dev", "--listen", "127.0.0.1:0", "--data-dir", dataDir), ""))
		next := v.acked(0, 5)
		log, moved := filepath.Join(dataDir, AuditFile), filepath.Join(dataDir, "moved.log")
		rename(t, log, moved)
		status, raw := v.call("GET", "secrets/"+writeName(0), "")
		if v.refusal("read with the audit log renamed away", "read", status, raw); !v.mayExist("read") {
			t.Errorf("read with the audit log renamed away refused with %q; want the audit log's refusal", v.refused["read"])
		}
		v.ready(http.StatusServiceUnavailable) // /readyz is audited: it fails closed too
		rename(t, moved, log)
		v.ready(http.StatusOK)
		delete(v.refused, "read")
		v.acked(next, 5)
		v.readAll()
	})
	t.Run("data-dir-gone", func(t *testing.T) {
		dataDir := t.TempDir()
		v := newFullVault(t, start(t, loadConfig(t, "--dev", "--listen", "127.0.0.1:0", "--data-dir", dataDir), ""))
		next := v.acked(0, 10)
		rename(t, dataDir, dataDir+".moved") // for the server, the same as deleted
		// The write fails in storage, and its record then fails in the audit log.
		if v.write(next) || v.refused[writeName(next)] != api.ErrStorageUnavailable.Message {
			t.Fatalf("write with the data directory gone: refused %q; want %q", v.refused[writeName(next)], api.ErrStorageUnavailable.Message)
		}
		status, raw := v.call("GET", "secrets/"+writeName(0), "")
		if v.refusal("read with the data directory gone", "read", status, raw); !v.mayExist("read") {
			t.Errorf("read with the data directory gone refused with %q; want the audit log's refusal", v.refused["read"])
		}
		v.ready(http.StatusServiceUnavailable)
		for _, want := range []string{"no longer the database file this server opened", "no longer the audit log file this server opened"} {
			if !strings.Contains(v.ts.logs.String(), want) {
				t.Errorf("the server log does not say %q:\n%s", want, v.ts.logs.String())
			}
		}
		rename(t, dataDir+".moved", dataDir)
		v.ready(http.StatusOK)
		delete(v.refused, "read")
		v.acked(next+1, 5)
		v.readAll()
	})
}

// storeOn starts a dev server whose database file lives in dir, the rest of the data
// directory (the audit log among it) elsewhere, so that reads go on while the database fails.
func storeOn(t *testing.T, dir string) (*fullVault, *config.Config) {
	dataDir := t.TempDir()
	if err := os.Symlink(filepath.Join(dir, DBFile), filepath.Join(dataDir, DBFile)); err != nil {
		t.Fatal(err)
	}
	cfg := loadConfig(t, "--dev", "--listen", "127.0.0.1:0", "--data-dir", dataDir)
	return newFullVault(t, start(t, cfg, "")), cfg
}

// acked makes n writes from the i-th, all of which must be acknowledged, and returns the
// index after them.
func (v *fullVault) acked(i, n int) int {
	v.t.Helper()
	for ; n > 0; i, n = i+1, n-1 {
		if !v.write(i) {
			v.t.Fatalf("write %d refused: %v; server log:\n%s", i, v.refused, v.ts.logs.String())
		}
	}
	return i
}

// unavailable makes writes from the i-th until ten have been refused in a row, each with
// api.ErrStorageUnavailable; it checks that reads go on, that /readyz answers 503 and that
// the server log names cause. It returns the index after the writes.
func (v *fullVault) unavailable(i int, cause string) int {
	v.t.Helper()
	from := i
	for inARow := 0; inARow < 10; i++ {
		if v.write(i) {
			// Writes that raced the failure into the page cache were acknowledged once
			// their sync succeeded; the failure shows at the next commit.
			if inARow > 0 {
				v.t.Fatalf("write %d acknowledged after %d refused in a row", i, inARow)
			}
			continue
		}
		if got := v.refused[writeName(i)]; got != api.ErrStorageUnavailable.Message {
			v.t.Fatalf("write %d refused with %q; want %q", i, got, api.ErrStorageUnavailable.Message)
		}
		inARow++
	}
	v.t.Logf("after the failure: %d writes acknowledged, then 10 refused in a row", i-from-10)
	v.readAll()
	v.ready(http.StatusServiceUnavailable)
	if logs := v.ts.logs.String(); !strings.Contains(logs, cause) {
		v.t.Errorf("the server log does not say %q:\n%s", cause, logs)
	}
	return i
}

// ready checks the status /readyz answers.
func (v *fullVault) ready(want int) {
	v.t.Helper()
	if status, body, _ := v.ts.do(v.t, "GET", "/readyz", "", nil); status != want {
		v.t.Fatalf("GET /readyz = %d %v; want %d; server log:\n%s", status, body, want, v.ts.logs.String())
	}
}

func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
