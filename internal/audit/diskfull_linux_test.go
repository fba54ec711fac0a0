package audit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/coffer-kms/coffer/internal/testfs"
)

// TestAppendDiskFull fills a real 64 KiB tmpfs with audit records: the Append that hits
// ENOSPC must fail (so its request fails: no unaudited operation), be counted, leave no
// partial record in the file, and appends must resume, on the same Log, once space returns.
func TestAppendDiskFull(t *testing.T) {
	// Without root or mount the injectable-writer test (TestWriterSinkFailure) covers the
	// failure path.
	dir := testfs.Tmpfs(t, "64k")
	filler := filepath.Join(dir, "filler") // space to give back later
	testfs.Fill(t, filler, 16<<10)
	key := newSigner(t)
	path := filepath.Join(dir, "audit.log")
	l, err := Open(path, testOptions(key, "log-a", 20))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if l != nil {
			l.Close()
		}
	}()

	written := 0
	var appendErr error
	for i := 1; i <= 10000; i++ {
		ev := testEvent(i)
		ev.Reason = strings.Repeat("r", MaxReasonLen)
		if appendErr = l.Append(ev); appendErr != nil {
			break
		}
		written++
	}
	if !errors.Is(appendErr, syscall.ENOSPC) {
		t.Fatalf("Append on a full disk = %v; want an error wrapping ENOSPC", appendErr)
	}
	// The same record again: a smaller one may still fit in what the filesystem's last
	// page has left, so whether it fails would hang on the records' exact sizes.
	again := testEvent(0)
	again.Reason = strings.Repeat("r", MaxReasonLen)
	if err := l.Append(again); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("second Append on a full disk = %v; want ENOSPC", err)
	}
	if got := l.Failures(); got < 2 {
		t.Errorf("Failures = %d; want at least 2", got)
	}
	t.Logf("%d records fit before ENOSPC", written)

	rep, err := verifyFile(t, path, key.Public(), VerifyOptions{})
	if err != nil {
		t.Fatalf("Verify of the full disk's log = %v; want a valid chain", err)
	}
	if rep.TornBytes != 0 {
		t.Errorf("log holds a torn tail of %d bytes after ENOSPC; want the failed write truncated away", rep.TornBytes)
	}
	if events := rep.Records - rep.Checkpoints; events != written || rep.LastSeq != l.Head().Seq {
		t.Errorf("log holds %d events up to seq %d; want the %d acknowledged ones up to Head seq %d",
			events, rep.LastSeq, written, l.Head().Seq)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(testEvent(written + 1)); err != nil {
		t.Fatalf("Append after space returned = %v; want success without reopening", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	l = nil
	rep, err = verifyFile(t, path, key.Public(), VerifyOptions{})
	if err != nil {
		t.Fatalf("Verify after recovery = %v", err)
	}
	if events := rep.Records - rep.Checkpoints; events != written+1 || rep.UnsignedTail != 0 {
		t.Errorf("Verify = %+v; want %d events and a final checkpoint", rep, written+1)
	}
}
