package cli

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
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

// TestHSMSecurityDomainCommands: `coffer hsm sd download` turns PEM certificates and a JWK
// with x5c into a download request the pool accepts (a bare public key is refused: the
// Azure CLI needs certificates); `coffer hsm sd upload` with two of the three private keys
// makes a restore blob that activates a new pool with the same domain, whether the exchange
// key is the pool's transfer-key answer or the PEM of `coffer hsm sd exchange-key`; with one
// key it refuses.
func TestHSMSecurityDomainCommands(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var privs, certs []string
	var keys []*rsa.PrivateKey
	var ders [][]byte
	for i := range 3 {
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		keys = append(keys, k)
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		privs = append(privs, write(string(rune('a'+i))+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), Subject: pkix.Name{CommonName: "custodian"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		certDER, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		ders = append(ders, certDER)
	}
	jwk := sdblob.PublicJWK(&keys[2].PublicKey)
	jwk.X5c = []string{base64.StdEncoding.EncodeToString(ders[2])}
	jwkText, _ := json.Marshal(jwk)
	certs = []string{
		write("a.cer", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ders[0]})),
		write("b.cer", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ders[1]})),
		write("c.json", jwkText),
	}
	spki, _ := x509.MarshalPKIXPublicKey(&keys[1].PublicKey)
	pubOnly := write("b.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))
	jwkNoCert, _ := json.Marshal(sdblob.PublicJWK(&keys[2].PublicKey))
	noCert := write("nocert.json", jwkNoCert)

	code, stdout, stderr := run(t, "", "hsm", "sd", "download", "--cert", certs[0], "--cert", certs[1], "--cert", certs[2], "--quorum", "2")
	if code != 0 {
		t.Fatalf("hsm sd download = %d: %s", code, stderr)
	}
	var req struct {
		Certificates []sdblob.JWK `json:"certificates"`
		Required     int          `json:"required"`
	}
	if err := json.Unmarshal([]byte(stdout), &req); err != nil || req.Required != 2 || len(req.Certificates) != 3 || len(req.Certificates[0].X5c) != 1 || req.Certificates[0].X5tS256 == "" {
		t.Fatalf("download request = %s (%v)", stdout, err)
	}

	// The pool's side, in process.
	ctx := context.Background()
	svc := secdomain.New(mem.New(), nil)
	svc.TransferKeyBits = 2048
	poolA := tenancy.Vault{Kind: tenancy.KindManagedHSM, TenantID: "t", Name: "a"}
	blob, err := svc.Download(ctx, poolA, req.Certificates, req.Required)
	if err != nil {
		t.Fatalf("Download = %v", err)
	}
	sdFile := write("sd.json", mustJSON(t, map[string]string{"value": blob}))
	// transferKey writes pool's GET /securitydomain/upload answer (the JWK as JSON text).
	transferKey := func(pool tenancy.Vault) string {
		tk, err := svc.TransferKey(ctx, pool)
		if err != nil {
			t.Fatal(err)
		}
		return write(pool.Name+"-tk.json", mustJSON(t, map[string]any{"key_format": "jwk", "transfer_key": string(mustJSON(t, tk))}))
	}
	upload := func(pool tenancy.Vault, args ...string) {
		t.Helper()
		code, stdout, stderr := run(t, "", append([]string{"hsm", "sd", "upload"}, args...)...)
		if code != 0 {
			t.Fatalf("hsm sd upload %v = %d: %s", args, code, stderr)
		}
		var up struct {
			Value string `json:"value"`
		}
		if err := json.Unmarshal([]byte(stdout), &up); err != nil {
			t.Fatal(err)
		}
		if err := svc.Upload(ctx, pool, up.Value); err != nil {
			t.Fatalf("Upload(the command's body) = %v", err)
		}
		ka, _ := svc.BackupKey(ctx, poolA)
		kb, err := svc.BackupKey(ctx, pool)
		if err != nil || string(ka) != string(kb) {
			t.Errorf("pool %s's domain differs from pool a's (%v)", pool.Name, err)
		}
	}

	poolB := tenancy.Vault{Kind: tenancy.KindManagedHSM, TenantID: "t", Name: "b"}
	tkB := transferKey(poolB)
	if code, stdout, _ := run(t, "", "hsm", "sd", "upload", "--security-domain", sdFile, "--transfer-key", tkB, "--key", privs[1]); code == 0 || stdout != "" {
		t.Errorf("hsm sd upload with one key = %d, %q; want a refusal", code, stdout)
	}
	upload(poolB, "--security-domain", sdFile, "--transfer-key", tkB, "--key", privs[2], "--key", privs[0])

	// The exchange key as az init-recovery writes it, and the bare security-domain file.
	poolC := tenancy.Vault{Kind: tenancy.KindManagedHSM, TenantID: "t", Name: "c"}
	tkC := transferKey(poolC)
	code, stdout, stderr = run(t, "", "hsm", "sd", "exchange-key", "--transfer-key", tkC)
	if blk, _ := pem.Decode([]byte(stdout)); code != 0 || blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("hsm sd exchange-key = %d %q: %s", code, stdout, stderr)
	}
	exPEM := write("c-exchange.pem", []byte(stdout))
	upload(poolC, "--security-domain", write("sd-bare.json", []byte(blob)), "--transfer-key", exPEM, "--key", privs[0], "--key", privs[1])

	// A security domain downloaded before the Azure format still restores.
	poolD := tenancy.Vault{Kind: tenancy.KindManagedHSM, TenantID: "t", Name: "d"}
	v1 := "../secdomain/testdata/v1/"
	code, stdout, stderr = run(t, "", "hsm", "sd", "upload", "--security-domain", v1+"security-domain.json", "--transfer-key", transferKey(poolD), "--key", v1+"custodian1.key", "--key", v1+"custodian2.key")
	if code != 0 {
		t.Fatalf("hsm sd upload (coffer-sd/1) = %d: %s", code, stderr)
	}
	var up struct{ Value string }
	json.Unmarshal([]byte(stdout), &up)
	if err := svc.Upload(ctx, poolD, up.Value); err != nil {
		t.Errorf("Upload(coffer-sd/1 upload) = %v", err)
	}

	// Bad input: too few certificates, a quorum above them, a file that is no key, a bare
	// public key, a JWK without x5c.
	for _, args := range [][]string{
		{"--cert", certs[0], "--cert", certs[1]},
		{"--cert", certs[0], "--cert", certs[1], "--cert", certs[2], "--quorum", "4"},
		{"--cert", certs[0], "--cert", certs[1], "--cert", sdFile},
		{"--cert", certs[0], "--cert", pubOnly, "--cert", certs[2]},
		{"--cert", certs[0], "--cert", certs[1], "--cert", noCert},
	} {
		if code, stdout, _ := run(t, "", append([]string{"hsm", "sd", "download"}, args...)...); code == 0 || stdout != "" {
			t.Errorf("hsm sd download %v = %d, %q; want a refusal", args, code, stdout)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
