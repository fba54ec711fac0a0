package server

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
)

// TestAzureCLIRestoreBlob runs the customer's Azure procedure against Coffer with the real
// Azure CLI: the security domain a pool downloads is saved as `az keyvault security-domain
// download` saves it, the new pool's exchange key as `az keyvault security-domain
// init-recovery` writes it, `az keyvault security-domain restore-blob` makes the restore
// blob offline from two of the three custodians' keys, and its output uploads into the new
// pool, where the first pool's key backup then restores and signs. With one key the CLI
// refuses. Skipped when az is not installed (apt-get install azure-cli).
func TestAzureCLIRestoreBlob(t *testing.T) {
	az, err := exec.LookPath("az")
	if err != nil {
		t.Skip("az is not installed (apt-get install azure-cli): the interop test with the real `az keyvault security-domain restore-blob` did not run")
	}
	ctx := context.Background()
	ts := startDev(t)
	c := sdPools(t, ts, "azsrc", "azdst")
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	holders := custodianKeys(t, 3)
	var keyFiles []string
	for i, k := range holders {
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		keyFiles = append(keyFiles, write(fmt.Sprintf("cert_%d.key", i), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
		// az finds a key's share by the certificate beside it: <name>.cer.
		write(fmt.Sprintf("cert_%d.cer", i), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: custodianCert(t, k)}))
	}

	// Download: az writes the answer's value to the file as it is.
	sdFile := write("security-domain.json", []byte(c.download(t, "azsrc", 2, holders...)))
	src := azkeysClient(t, ts, "https://azsrc.managedhsm.localhost:"+ts.resources().port+"/")
	k, err := src.CreateKey(ctx, "k", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr(int32(2048))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	backup, err := src.BackupKey(ctx, "k", nil)
	if err != nil {
		t.Fatal(err)
	}

	// init-recovery: json.loads(json.loads(body)["transfer_key"])["x5c"][0] in 65-character lines.
	status, out, _ := c.call(t, "GET", "azdst", "/securitydomain/upload", nil)
	text, _ := out["transfer_key"].(string)
	var tk struct{ X5c []string }
	if status != 200 || json.Unmarshal([]byte(text), &tk) != nil || len(tk.X5c) == 0 {
		t.Fatalf("transfer key = %d %v; want transfer_key as JWK text with x5c", status, out)
	}
	lines := []string{"-----BEGIN CERTIFICATE-----"}
	for b64 := tk.X5c[0]; b64 != ""; {
		n := min(65, len(b64))
		lines, b64 = append(lines, b64[:n]), b64[n:]
	}
	exchange := write("exchange-key.pem", []byte(strings.Join(append(lines, "-----END CERTIFICATE-----"), "\n")))

	restoreBlob := func(out string, keys ...string) ([]byte, error) {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		args := append([]string{"keyvault", "security-domain", "restore-blob", "--sd-file", sdFile, "--sd-exchange-key", exchange, "--sd-wrapping-keys"}, keys...)
		cmd := exec.CommandContext(cctx, az, append(args, "--sd-file-restore-blob", filepath.Join(dir, out))...)
		cmd.Env = append(os.Environ(), "AZURE_CONFIG_DIR="+filepath.Join(dir, "azure"), "AZURE_CORE_COLLECT_TELEMETRY=false", "AZURE_CORE_NO_COLOR=true")
		return cmd.CombinedOutput()
	}
	if msg, err := restoreBlob("one.json", keyFiles[1]); err == nil {
		t.Errorf("az restore-blob with one key succeeded; want a refusal (%s)", msg)
	}
	if msg, err := restoreBlob("restore-blob.json", keyFiles[2], keyFiles[0]); err != nil {
		t.Fatalf("az keyvault security-domain restore-blob: %v\n%s", err, msg)
	}
	rb, err := os.ReadFile(filepath.Join(dir, "restore-blob.json"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("az restore-blob wrote %d bytes", len(rb))

	// Upload what az wrote, as `az keyvault security-domain upload --restore-blob` sends it.
	if status, out, _ := c.call(t, "POST", "azdst", "/securitydomain/upload", map[string]string{"value": string(rb)}); status != 202 || out["status"] != "Success" {
		t.Fatalf("upload of az's restore blob = %d %v; want 202 Success", status, out)
	}
	if status, out, _ := c.call(t, "GET", "azdst", "/securitydomain/upload/pending", nil); status != 200 || out["status"] != "Success" {
		t.Errorf("upload/pending = %d %v", status, out)
	}
	dst := azkeysClient(t, ts, "https://azdst.managedhsm.localhost:"+ts.resources().port+"/")
	if _, err := dst.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: backup.Value}, nil); err != nil {
		t.Fatalf("RestoreKey into the pool az restored = %v", err)
	}
	signsAs(t, dst, "k", k.Key)
}
