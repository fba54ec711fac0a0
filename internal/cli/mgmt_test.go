package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// mustRun runs the command line and fails the test unless it exits 0; it returns stdout.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := run(t, "", args...)
	if code != 0 {
		t.Fatalf("coffer %s = %d\nstdout: %s\nstderr: %s", strings.Join(args[:min(3, len(args))], " "), code, out, errOut)
	}
	return out
}

func clearCofferEnv(t *testing.T) {
	for _, k := range []string{"COFFER_ADDR", "COFFER_CACERT", "COFFER_TOKEN", "COFFER_TENANT_ID", "COFFER_CLIENT_ID", "COFFER_CLIENT_SECRET"} {
		t.Setenv(k, "")
	}
}

func writeClientCert(t *testing.T, path string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cli test client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestManagementThroughCLI(t *testing.T) {
	clearCofferEnv(t)
	s := startServer(t, "--dev")
	dataDir := filepath.Dir(filepath.Dir(s.Dev.CAFile)) // <data-dir>/tls/ca.pem
	dir := t.TempDir()
	conn := []string{"--addr", s.URL(), "--ca-cert", s.Dev.CAFile}
	with := func(args []string, extra ...string) []string { return append(append(args, conn...), extra...) }
	op := func(args ...string) []string { return with(args, "--token", s.Dev.Token) }

	var created struct {
		Tenant        struct{ ID string }
		Administrator struct{ ObjectID, ClientID, ClientSecret string }
	}
	if err := json.Unmarshal([]byte(mustRun(t, op("tenant", "create", "Contoso")...)), &created); err != nil || created.Administrator.ClientSecret == "" {
		t.Fatalf("tenant create output: %v %+v", err, created)
	}
	tid := created.Tenant.ID
	admin := func(args ...string) []string {
		return with(args, "--tenant", tid, "--client-id", created.Administrator.ClientID, "--client-secret", created.Administrator.ClientSecret)
	}
	if out := mustRun(t, op("tenant", "list")...); !strings.Contains(out, tid) {
		t.Errorf("tenant list lacks %s:\n%s", tid, out)
	}
	mustRun(t, op("tenant", "show", tid)...)
	mustRun(t, admin("tenant", "show", tid)...)

	mustRun(t, admin("vault", "create", "kv1", "--retention-days", "30", "--purge-protection")...)
	if out := mustRun(t, admin("vault", "list")...); !strings.Contains(out, `"kv1"`) || !strings.Contains(out, `"softDeleteRetentionInDays": 30`) {
		t.Errorf("vault list:\n%s", out)
	}
	// The tenant CA and attestation providers.
	if out := mustRun(t, admin("tenant", "ca", "rotate", tid, "--subject", "CN=Contoso CA")...); !strings.Contains(out, "BEGIN CERTIFICATE") || !strings.Contains(out, "CN=Contoso CA") {
		t.Errorf("tenant ca rotate:\n%s", out)
	}
	if out := mustRun(t, admin("tenant", "ca", "show", tid)...); !strings.Contains(out, "CN=Contoso CA") {
		t.Errorf("tenant ca show:\n%s", out)
	}
	mustRun(t, admin("attest", "put", "tee1", "--types", "sevsnpvm", "--measurements", strings.Repeat("ab", 48))...)
	if out := mustRun(t, admin("attest", "show", "tee1")...); !strings.Contains(out, strings.Repeat("ab", 48)) || !strings.Contains(out, "tee1.attest.") {
		t.Errorf("attest show:\n%s", out)
	}
	if code, _, errOut := run(t, "", admin("attest", "put", "tee2")...); code == 0 || !strings.Contains(errOut, "no policy") {
		t.Errorf("attest put without a policy = %d %s; want a usage error", code, errOut)
	}
	mustRun(t, admin("hsm", "create", "hsm1")...)
	if out := mustRun(t, admin("hsm", "list")...); !strings.Contains(out, `"managedHsm"`) {
		t.Errorf("hsm list:\n%s", out)
	}

	var app struct{ ObjectID, ClientID, ClientSecret string }
	if err := json.Unmarshal([]byte(mustRun(t, admin("principal", "create", "payments-app")...)), &app); err != nil || app.ClientSecret == "" {
		t.Fatalf("principal create: %v %+v", err, app)
	}
	var added struct{ ClientSecret string }
	json.Unmarshal([]byte(mustRun(t, admin("principal", "add-secret", app.ObjectID)...)), &added)
	certFile := filepath.Join(dir, "client.pem")
	writeClientCert(t, certFile)
	if out := mustRun(t, admin("principal", "add-cert", app.ObjectID, certFile)...); !strings.Contains(out, "thumbprint") {
		t.Errorf("add-cert:\n%s", out)
	}
	if out := mustRun(t, admin("principal", "list")...); strings.Contains(out, "salt") || strings.Contains(out, app.ClientSecret) {
		t.Errorf("principal list shows credentials:\n%s", out)
	}

	var asg struct{ ID, RoleName, Scope string }
	json.Unmarshal([]byte(mustRun(t, admin("role", "assign", "--principal", app.ObjectID, "--role", "key vault secrets user", "--scope", "vaults/kv1")...)), &asg)
	if asg.RoleName != "Key Vault Secrets User" || asg.Scope != "/tenants/"+tid+"/vaults/kv1" {
		t.Errorf("role assign = %+v", asg)
	}
	appArgs := func(args ...string) []string {
		return with(args, "--tenant", tid, "--client-id", app.ClientID, "--client-secret", added.ClientSecret)
	}
	code, _, errOut := run(t, "", appArgs("role", "assign", "--principal", app.ObjectID, "--role", "Coffer Tenant Administrator")...)
	if code == 0 || !strings.Contains(errOut, "Coffer/roleAssignments/write") || !strings.Contains(errOut, "403") {
		t.Errorf("the app assigning a role = %d %q; want 403 naming Coffer/roleAssignments/write", code, errOut)
	}
	if code, _, errOut := run(t, "", admin("role", "assign", "--principal", app.ObjectID, "--role", "No Such Role")...); code == 0 || !strings.Contains(errOut, "No Such Role") {
		t.Errorf("assign an unknown role = %d %q", code, errOut)
	}
	if out := mustRun(t, admin("role", "list")...); !strings.Contains(out, asg.ID) {
		t.Errorf("role list lacks %s:\n%s", asg.ID, out)
	}
	mustRun(t, admin("role", "delete", asg.ID)...)

	out := mustRun(t, admin("audit", "query", "--operation", "VaultCreate", "--since", "1h")...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"op":"VaultCreate"`) || !strings.Contains(lines[0], tid) {
		t.Errorf("audit query --operation VaultCreate:\n%s", out)
	}
	if code, _, errOut := run(t, "", append([]string{"vault", "list"}, conn...)...); code == 0 || !strings.Contains(errOut, "--tenant") {
		t.Errorf("vault list without a tenant = %d %q", code, errOut)
	}
	if code, _, errOut := run(t, "", with([]string{"tenant", "list"})...); code == 0 || !strings.Contains(errOut, "operator token") {
		t.Errorf("tenant list without a token = %d %q", code, errOut)
	}

	keyPEM := mustRun(t, op("audit", "public-key")...)
	keyFile := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyFile, []byte(keyPEM), 0o600); err != nil {
		t.Fatal(err)
	}

	// Stop the server: closing the log signs a final checkpoint over every record.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dataDir, "audit.log")
	log, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	for name, secret := range map[string]string{"the administrator's secret": created.Administrator.ClientSecret, "the app's secret": app.ClientSecret, "the added secret": added.ClientSecret} {
		if bytes.Contains(log, []byte(secret)) {
			t.Errorf("the audit log contains %s", name)
		}
	}

	out = mustRun(t, "audit", "verify", logFile, "--public-key-file", keyFile)
	if !strings.Contains(out, "OK") {
		t.Errorf("audit verify:\n%s", out)
	}

	// An edited record is named.
	recs := bytes.SplitAfter(log, []byte("\n"))
	edited, seq := -1, uint64(0)
	for i, l := range recs {
		if bytes.Contains(l, []byte(`"op":"VaultCreate"`)) {
			var r struct{ Seq uint64 }
			json.Unmarshal(l, &r)
			recs[i], edited, seq = bytes.Replace(l, []byte(`"op":"VaultCreate"`), []byte(`"op":"VaultRename"`), 1), i, r.Seq
			break
		}
	}
	if edited < 0 {
		t.Fatal("no VaultCreate record in the log")
	}
	editedFile := filepath.Join(dir, "edited.log")
	os.WriteFile(editedFile, bytes.Join(recs, nil), 0o600)
	code, _, errOut = run(t, "", "audit", "verify", editedFile, "--public-key-file", keyFile)
	if code == 0 || !strings.Contains(errOut, "seq "+strconv.FormatUint(seq, 10)) || !strings.Contains(errOut, "line "+strconv.Itoa(edited+1)) {
		t.Errorf("verify of a log with record %d edited = %d %q; want a failure naming seq %d", seq, code, errOut, seq)
	}

	// Another key does not verify the checkpoints; a head beyond the end is truncation.
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(other)
	otherFile := filepath.Join(dir, "other.pem")
	os.WriteFile(otherFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
	if code, _, errOut := run(t, "", "audit", "verify", logFile, "--public-key-file", otherFile); code == 0 || !strings.Contains(errOut, "checkpoint-signature") {
		t.Errorf("verify with another key = %d %q; want a checkpoint signature failure", code, errOut)
	}
	if code, _, errOut := run(t, "", "audit", "verify", logFile, "--public-key-file", keyFile, "--expect-head", "100000:"+strings.Repeat("0", 64)); code == 0 || !strings.Contains(errOut, "truncated") {
		t.Errorf("verify with a head past the end = %d %q; want truncated", code, errOut)
	}
	if code, _, errOut := run(t, "", "audit", "verify", logFile); code == 0 || !strings.Contains(errOut, "--public-key-file") {
		t.Errorf("verify without a key = %d %q", code, errOut)
	}
}
