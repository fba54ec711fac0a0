package server

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/coffer-kms/coffer/internal/audit"
	"github.com/coffer-kms/coffer/internal/mgmt"
)

// TestAuditLogRotates runs a server with --audit-max-size 64KiB past that size: the log
// rotates into audit.log.000001, …, the management API's audit query still finds a record
// of the first file, the files verify as one log after shutdown, and an edit in a rotated
// file is found and named.
func TestAuditLogRotates(t *testing.T) {
	ts := startDev(t, "--audit-max-size", "64KiB")
	ctx := context.Background()
	c := keysClient(t, ts)
	if _, err := c.CreateKey(ctx, "first", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC)}, nil); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(ts.cfg.DataDir, AuditFile)
	for i := 0; ; i++ {
		_, err := c.GetKey(ctx, "nosuchkey", "", nil) // a 404, audited like any request
		wantCode(t, err, 404, "KeyNotFound")
		if rotated, _ := audit.RotatedFiles(logPath); len(rotated) >= 2 {
			break
		}
		if i == 2000 {
			t.Fatal("2000 requests and the audit log has not rotated twice at 64KiB")
		}
	}
	first, err := os.ReadFile(audit.RotatedName(logPath, 1))
	if err != nil || !bytes.Contains(first, []byte(`"op":"KeyCreate"`)) {
		t.Fatalf("the first rotated file (%v) lacks the KeyCreate record", err)
	}

	dev := ts.Dev.Credentials
	status, mtok := rawToken(t, ts, ts.client, dev.TenantID, dev.ClientID, dev.ClientSecret, ts.resources().Base())
	if status != 200 {
		t.Fatalf("management token = %d", status)
	}
	var recs mgmt.List[audit.Record]
	ts.mjson(t, "GET", "/v1/tenants/"+dev.TenantID+"/audit?operation=KeyCreate", mtok, nil, 200, &recs)
	if len(recs.Value) != 1 || !bytes.Contains(first, []byte(recs.Value[0].Hash)) {
		t.Errorf("audit query for KeyCreate = %+v; want the one record, from the first rotated file", recs.Value)
	}

	pub, err := ts.AuditPublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := ts.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	rotated, err := audit.RotatedFiles(logPath)
	if err != nil {
		t.Fatal(err)
	}
	files, err := audit.OrderFiles(append([]string{logPath}, rotated...))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyFiles(files, pub, audit.VerifyOptions{})
	if err != nil || rep.UnsignedTail != 0 || rep.Records != int(rep.LastSeq) {
		t.Fatalf("VerifyFiles(%d files) = %+v, %v; want every record from seq 1, all signed", len(files), rep, err)
	}
	if logs := ts.logs.String(); strings.Count(logs, "audit log rotated") != len(rotated) || strings.Contains(logs, "rotation failed") {
		t.Errorf("server log: want one 'audit log rotated' line per rotated file (%d), no failure:\n%s", len(rotated), logs)
	}

	edited := bytes.Replace(first, []byte(`"op":"KeyCreate"`), []byte(`"op":"KeyDelete"`), 1)
	if err := os.WriteFile(rotated[0], edited, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = audit.VerifyFiles(files, pub, audit.VerifyOptions{})
	if verr := (*audit.VerifyError)(nil); !errors.As(err, &verr) || verr.Kind != audit.BadHash || verr.File != rotated[0] {
		t.Errorf("VerifyFiles with a record edited in %s = %v; want %s there", rotated[0], err, audit.BadHash)
	}
}
