package cli

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/sdblob"
	"github.com/coffer-kms/coffer/internal/secdomain"
	"github.com/coffer-kms/coffer/internal/storage/mem"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// TestHSMSecurityDomainCommands: `coffer hsm sd download` turns a PEM certificate, a PEM
// public key and a JWK into a download request the pool accepts; `coffer hsm sd upload` with
// two of the three private keys makes an upload that activates a new pool with the same
// domain; with one key it refuses.
func TestHSMSecurityDomainCommands(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var privs []string
	var keys []*rsa.PrivateKey
	for i := range 3 {
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		keys = append(keys, k)
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		privs = append(privs, write(string(rune('a'+i))+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "custodian a"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	certDER, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &keys[0].PublicKey, keys[0])
	spki, _ := x509.MarshalPKIXPublicKey(&keys[1].PublicKey)
	jwk, _ := json.Marshal(sdblob.PublicJWK(&keys[2].PublicKey))
	certs := []string{
		write("a.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})),
		write("b.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})),
		write("c.json", jwk),
	}

	code, stdout, stderr := run(t, "", "hsm", "sd", "download", "--cert", certs[0], "--cert", certs[1], "--cert", certs[2], "--quorum", "2")
	if code != 0 {
		t.Fatalf("hsm sd download = %d: %s", code, stderr)
	}
	var req struct {
		Certificates []sdblob.JWK `json:"certificates"`
		Required     int          `json:"required"`
	}
	if err := json.Unmarshal([]byte(stdout), &req); err != nil || req.Required != 2 || len(req.Certificates) != 3 || len(req.Certificates[0].X5c) != 1 {
		t.Fatalf("download request = %s (%v)", stdout, err)
	}

	// The pool's side, in process.
	ctx := context.Background()
	svc := secdomain.New(mem.New(), nil)
	svc.TransferKeyBits = 2048
	poolA := tenancy.Vault{Kind: tenancy.KindManagedHSM, TenantID: "t", Name: "a"}
	poolB := tenancy.Vault{Kind: tenancy.KindManagedHSM, TenantID: "t", Name: "b"}
	blob, err := svc.Download(ctx, poolA, req.Certificates, req.Required)
	if err != nil {
		t.Fatalf("Download = %v", err)
	}
	sdResp, _ := json.Marshal(map[string]string{"value": blob})
	tk, err := svc.TransferKey(ctx, poolB)
	if err != nil {
		t.Fatal(err)
	}
	tkResp, _ := json.Marshal(map[string]any{"key_format": "jwk", "transfer_key": tk})
	sdFile, tkFile := write("sd.json", sdResp), write("tk.json", tkResp)

	if code, stdout, _ := run(t, "", "hsm", "sd", "upload", "--security-domain", sdFile, "--transfer-key", tkFile, "--key", privs[1]); code == 0 || stdout != "" {
		t.Errorf("hsm sd upload with one key = %d, %q; want a refusal", code, stdout)
	}
	code, stdout, stderr = run(t, "", "hsm", "sd", "upload", "--security-domain", sdFile, "--transfer-key", tkFile, "--key", privs[2], "--key", privs[0])
	if code != 0 {
		t.Fatalf("hsm sd upload = %d: %s", code, stderr)
	}
	var up struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal([]byte(stdout), &up); err != nil {
		t.Fatal(err)
	}
	if err := svc.Upload(ctx, poolB, up.Value); err != nil {
		t.Fatalf("Upload(the command's body) = %v", err)
	}
	ka, _ := svc.BackupKey(ctx, poolA)
	kb, err := svc.BackupKey(ctx, poolB)
	if err != nil || string(ka) != string(kb) {
		t.Errorf("pool b's domain differs from pool a's (%v)", err)
	}

	// Bad input: too few certificates, a quorum above them, a file that is no key.
	for _, args := range [][]string{
		{"--cert", certs[0], "--cert", certs[1]},
		{"--cert", certs[0], "--cert", certs[1], "--cert", certs[2], "--quorum", "4"},
		{"--cert", certs[0], "--cert", certs[1], "--cert", sdFile},
	} {
		if code, stdout, _ := run(t, "", append([]string{"hsm", "sd", "download"}, args...)...); code == 0 || stdout != "" {
			t.Errorf("hsm sd download %v = %d, %q; want a refusal", args, code, stdout)
		}
	}
}
