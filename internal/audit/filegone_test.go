package audit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAppendFileGone renames the live file away and deletes it under an open Log: Append and
// AppendLazy must fail and be counted instead of the records going into a file no one will
// read; once the file is renamed back, appends resume
// on the same Log and the file verifies with every record whose Append succeeded.
func TestAppendFileGone(t *testing.T) {
	for _, how := range []string{"renamed", "deleted"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			path, aside := filepath.Join(dir, "audit.log"), filepath.Join(dir, "aside.log")
			key := newSigner(t)
			l, err := Open(path, testOptions(key, "log-a", 5))
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			for i := 1; i <= 3; i++ {
				if err := l.Append(testEvent(i)); err != nil {
					t.Fatalf("Append(%d) = %v", i, err)
				}
			}
			if err := os.Rename(path, aside); err != nil {
				t.Fatal(err)
			}
			if how == "deleted" {
				if err := os.Remove(aside); err != nil {
					t.Fatal(err)
				}
			}
			failures := l.Failures()
			want := "is no longer the audit log file this server opened"
			if err := l.Append(testEvent(4)); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Append with the file %s = %v; want an error that says %q", how, err, want)
			}
			if err := l.AppendLazy(testEvent(5)); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("AppendLazy with the file %s = %v; want an error that says %q", how, err, want)
			}
			if got := l.Failures() - failures; got != 2 {
				t.Errorf("Failures grew by %d; want 2", got)
			}
			if how == "deleted" {
				return
			}
			if err := os.Rename(aside, path); err != nil {
				t.Fatal(err)
			}
			if err := l.Append(testEvent(6)); err != nil {
				t.Fatalf("Append with the file back = %v", err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			rep, err := verifyFile(t, path, key.Public(), VerifyOptions{})
			if err != nil || rep.Records < 4 {
				t.Errorf("Verify = %+v, %v; want a valid log of at least the 4 records appended", rep, err)
			}
			lines := readLines(t, path)
			if n := strings.Count(strings.Join(lines, "\n"), `"req-0004"`) + strings.Count(strings.Join(lines, "\n"), `"req-0005"`); n != 0 {
				t.Errorf("the file holds %d of the refused records; want none", n)
			}
			if !strings.Contains(strings.Join(lines, "\n"), `"req-0006"`) {
				t.Errorf("the file lacks the record appended after the file came back:\n%s", strings.Join(lines, "\n"))
			}
		})
	}
}
