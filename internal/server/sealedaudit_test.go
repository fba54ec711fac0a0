package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSealedRefusalsAudited: data-plane requests refused while sealed cannot have audit
// records of their own (the log's keys are sealed), so the next unseal appends one record
// counting them.
func TestSealedRefusalsAudited(t *testing.T) {
	ts := startDev(t)
	share, err := os.ReadFile(filepath.Join(ts.cfg.DataDir, devShareFile))
	if err != nil {
		t.Fatal(err)
	}
	if status, body, _ := ts.do(t, "POST", "/v1/sys/seal", ts.Dev.Token, nil); status != 200 {
		t.Fatalf("seal = %d %v", status, body)
	}
	for _, tc := range []struct{ method, path string }{{"GET", "/keys/k1"}, {"PUT", "/secrets/s1"}, {"GET", "/keys/k2"}} {
		if status, _, _ := ts.do(t, tc.method, tc.path, "some-token", nil); status != 503 {
			t.Fatalf("sealed %s %s = %d; want 503", tc.method, tc.path, status)
		}
	}
	if status, body, _ := ts.do(t, "POST", "/v1/sys/unseal", "", map[string]string{"share": strings.TrimSpace(string(share))}); status != 200 {
		t.Fatalf("unseal = %d %v", status, body)
	}
	if status, _, _ := ts.do(t, "GET", "/readyz", "", nil); status != 200 { // opens the audit log
		t.Fatalf("readyz after unseal = %d", status)
	}
	ts.dropIdentity() // close the log so the file is complete
	log := readAudit(t, ts)
	var found []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, `"op":"SealedRequestsRefused"`) {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		t.Fatalf("audit log holds %d SealedRequestsRefused records; want 1:\n%s", len(found), log)
	}
	if !strings.Contains(found[0], "3 requests refused while sealed") || !strings.Contains(found[0], `"status":503`) {
		t.Errorf("summary record = %s; want 3 requests and status 503", found[0])
	}
	if strings.Contains(found[0], "some-token") {
		t.Error("the summary record contains the bearer token")
	}
}
