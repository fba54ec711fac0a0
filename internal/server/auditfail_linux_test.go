package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/testfs"
)

// TestAuditFileSinkFullFailsClosed: with the data directory on a tmpfs filled to the last
// byte, once the audit log has spent the space it allocated ahead, every request must fail
// closed (no token, no secret value, no write acknowledged), be counted in
// coffer_audit_failures_total{sink="file"}, and be served again, without a restart, once
// space returns (SECURITY-NOTES L1, ENOSPC; the stdout sink is
// TestAuditStdoutSinkFailureFailsClosed, the store's own ENOSPC TestDiskFull).
func TestAuditFileSinkFullFailsClosed(t *testing.T) {
	disk := testfs.Tmpfs(t, "16m")
	cfg := loadConfig(t, "--dev", "--listen", "127.0.0.1:0", "--data-dir", disk)
	ts := start(t, cfg, "")
	p := newSinkProbe(t, ts)
	p.servedAll("before")
	rest := filepath.Join(disk, "rest")
	testfs.FillRest(t, rest)
	reads := 0
	for ; reads < 50000; reads++ { // spend the audit log's reserve
		if status, _ := p.kv("GET", "secrets/probe", ""); status != 200 {
			break
		}
	}
	// A failed append gives back the space it took, which a smaller record may then use:
	// take it before each request, so that the disk stays full.
	p.before = func() { testfs.FillRest(t, rest) }
	p.records = func() int { return countRecords(t, filepath.Join(disk, AuditFile)) }
	n, closed := p.refusedAll("disk full")
	p.before, p.records = nil, nil
	if !strings.Contains(ts.logs.String(), "no space left on device") {
		t.Errorf("the server log does not say the disk is full")
	}
	if err := os.Remove(rest); err != nil {
		t.Fatal(err)
	}
	p.servedAll("after space returned")
	if got := p.auditFailures("file"); got < n {
		t.Errorf("coffer_audit_failures_total{sink=\"file\"} = %d; want at least the %d refused requests", got, n)
	}
	t.Logf("file sink on a full disk (after %d reads from its reserve): %d/%d requests failed closed, %d served with their record written into the file's last page",
		reads, closed, n, p.audited)
	if closed+p.audited != n || closed == 0 {
		t.Errorf("%d requests failed closed and %d were audited, of %d", closed, p.audited, n)
	}
}
