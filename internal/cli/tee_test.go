package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/coffer-kms/coffer/internal/server"
)

// TestTeeSim plays the example: a TEE with the allowed measurement gets the key
// released and uses it; the same TEE with other code (another measurement) is denied.
func TestTeeSim(t *testing.T) {
	s := startServer(t, "--dev")
	dataDir := filepath.Dir(filepath.Dir(s.Dev.CAFile))
	c := s.Dev.Credentials
	hc, err := loopbackHTTPS(s.Dev.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	// The dev principal (Coffer Tenant Administrator of the dev tenant) creates a provider.
	cred, err := azidentity.NewClientSecretCredential(c.TenantID, c.ClientID, c.ClientSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: c.AuthorityHost}, Transport: hc}, DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{strings.TrimSuffix(c.AuthorityHost, "/") + "/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	bearer := tk.Token
	req, _ := http.NewRequest("PUT", strings.TrimSuffix(c.AuthorityHost, "/")+"/v1/tenants/"+c.TenantID+"/attestationProviders/teesim",
		bytes.NewReader([]byte(`{"policy":{"types":["sim"]}}`)))
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var prov struct {
		URI string `json:"attestUri"`
	}
	json.NewDecoder(resp.Body).Decode(&prov)
	resp.Body.Close()
	if resp.StatusCode != 201 || prov.URI == "" {
		t.Fatalf("create provider = %d %+v", resp.StatusCode, prov)
	}
	good, bad := strings.Repeat("0a", 48), strings.Repeat("0b", 48)
	args := []string{"tee", "sim", "--credentials", s.Dev.CredentialsFile, "--provider", prov.URI,
		"--sim-key", filepath.Join(dataDir, server.DevSimKeyFile), "--key", "teekey"}
	code, out, errOut := run(t, "", append(args, "--measurement", good, "--create-key")...)
	if code != 0 || !strings.Contains(out, "released: ") {
		t.Fatalf("tee sim (allowed measurement) = %d %q %q", code, out, errOut)
	}
	code, out, errOut = run(t, "", append(args, "--measurement", bad)...)
	if code == 0 || strings.Contains(out, "released: ") || !strings.Contains(errOut, "release denied: 403") {
		t.Errorf("tee sim (tampered measurement) = %d %q %q; want denied", code, out, errOut)
	}
}
