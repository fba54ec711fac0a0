package server

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// wycheproofDir holds the vector files (copied with their licence by the provider's tests).
const wycheproofDir = "../provider/soft/testdata/wycheproof"

type wpFile struct {
	TestGroups []struct {
		PrivateKeyJwk json.RawMessage `json:"privateKeyJwk"`
		Tests         []struct {
			TcID   int    `json:"tcId"`
			Msg    string `json:"msg"`
			Ct     string `json:"ct"`
			Label  string `json:"label"`
			Result string `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

// TestWycheproofThroughHTTP imports each vector group's RSA private key through PUT
// /keys/{name} and runs every decryption vector through POST .../decrypt and .../unwrapkey:
// valid vectors must decrypt to the expected message, invalid ones must fail with 400.
func TestWycheproofThroughHTTP(t *testing.T) {
	ts := startDev(t)
	hc := loopbackClient(t, ts.caFile)
	c := ts.Dev.Credentials
	_, tok := rawToken(t, ts, hc, c.TenantID, c.ClientID, c.ClientSecret, ts.resources().Base())
	call := func(method, path string, body any) (int, map[string]any) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, c.VaultURL+path+"?api-version=7.6", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var out map[string]any
		json.Unmarshal(raw, &out)
		return resp.StatusCode, out
	}
	files := []struct{ file, alg string }{
		{"rsa_oaep_2048_sha1_mgf1sha1_test.json", "RSA-OAEP"},
		{"rsa_oaep_2048_sha256_mgf1sha256_test.json", "RSA-OAEP-256"},
		{"rsa_oaep_3072_sha256_mgf1sha256_test.json", "RSA-OAEP-256"},
		{"rsa_oaep_4096_sha256_mgf1sha256_test.json", "RSA-OAEP-256"},
		{"rsa_pkcs1_2048_test.json", "RSA1_5"},
		{"rsa_pkcs1_3072_test.json", "RSA1_5"},
		{"rsa_pkcs1_4096_test.json", "RSA1_5"},
	}
	var passed, skipped int
	for fi, f := range files {
		raw, err := os.ReadFile(filepath.Join(wycheproofDir, f.file))
		if err != nil {
			t.Fatal(err)
		}
		var wf wpFile
		if err := json.Unmarshal(raw, &wf); err != nil {
			t.Fatal(err)
		}
		filePassed := 0
		invalidBodies := map[string]bool{} // every failure class must look the same (no oracle)
		for gi, g := range wf.TestGroups {
			name := fmt.Sprintf("wp-%d-%d", fi, gi)
			if status, body := call("PUT", "/keys/"+name, map[string]any{"key": g.PrivateKeyJwk}); status != 200 {
				t.Fatalf("%s group %d: import = %d %v", f.file, gi, status, body)
			}
			for _, tc := range g.Tests {
				if tc.Label != "" {
					skipped++ // Key Vault's OAEP takes no label
					continue
				}
				ct, _ := hex.DecodeString(tc.Ct)
				msg, _ := hex.DecodeString(tc.Msg)
				for _, op := range []string{"decrypt", "unwrapkey"} {
					status, body := call("POST", "/keys/"+name+"/"+op, map[string]string{"alg": f.alg, "value": base64.RawURLEncoding.EncodeToString(ct)})
					switch tc.Result {
					case "valid":
						got, _ := base64.RawURLEncoding.DecodeString(fmt.Sprint(body["value"]))
						if status != 200 || !bytes.Equal(got, msg) {
							t.Errorf("%s tcId %d (valid) %s = %d %v", f.file, tc.TcID, op, status, body)
							continue
						}
					case "invalid":
						if status != 400 {
							t.Errorf("%s tcId %d (invalid) %s = %d %v; want 400", f.file, tc.TcID, op, status, body)
							continue
						}
						b, _ := json.Marshal(body)
						invalidBodies[op+" "+string(b)] = true
					default: // acceptable: either outcome, but never a 5xx
						if status >= 500 {
							t.Errorf("%s tcId %d (acceptable) %s = %d", f.file, tc.TcID, op, status)
						}
					}
					passed++
					filePassed++
				}
			}
		}
		if len(invalidBodies) > 2 { // one answer per operation
			t.Errorf("%s: invalid ciphertexts got %d different answers; want one uniform error: %v", f.file, len(invalidBodies), invalidBodies)
		}
		t.Logf("%s: %d decrypt/unwrap calls as expected", f.file, filePassed)
	}
	t.Logf("Wycheproof through HTTP: %d calls as expected, %d vectors skipped (OAEP label)", passed, skipped)
	if passed < 500 {
		t.Errorf("only %d vector calls ran", passed)
	}
}
