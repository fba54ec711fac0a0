package server

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// TestCPUShare (SECURITY-NOTES R2): with two crypto slots, one tenant's flood of RSA-4096
// key generations holds one slot at a time — the others wait, counted by the
// coffer_crypto_waiting gauge — so another tenant's RSA signatures run in the free slot
// meanwhile and all succeed; every slot is free again afterwards.
func TestCPUShare(t *testing.T) {
	ts := startDev(t, "--crypto-slots", "2")
	ctx := context.Background()
	a := keysClient(t, ts)
	b := otherTenantVault(t, ts, "bvault")
	signer, err := b.CreateKey(ctx, "signer", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const floods = 3
	var wg sync.WaitGroup
	errs := make(chan error, floods)
	for i := range floods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := a.CreateKey(ctx, fmt.Sprintf("big%d", i), azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr(int32(4096))}, nil)
			errs <- err
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for ts.cpu.Waiting() < floods-1 { // two of A's generations wait for its cap
		if time.Now().After(deadline) {
			t.Fatalf("tenant A's RSA-4096 generations never queued: %d waiting, %d slots free", ts.cpu.Waiting(), ts.cpu.Free())
		}
		time.Sleep(time.Millisecond)
	}
	if free := ts.cpu.Free(); free != 1 {
		t.Errorf("%d slots free while tenant A generates; want 1 (its generations hold one of two)", free)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(signer.Key.N), E: 65537}
	for i := range 5 {
		digest := sha256.Sum256([]byte{byte(i)})
		sig, err := b.Sign(ctx, "signer", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmPS256), Value: digest[:]}, nil)
		if err != nil {
			t.Fatalf("tenant B's signature during A's flood: %v", err)
		}
		if err := rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig.Result, nil); err != nil {
			t.Fatal(err)
		}
	}
	if w := ts.cpu.Waiting(); w == 0 {
		t.Log("tenant A's generations ended before B's signatures did; the check above still holds")
	}
	if m := grepLines(ts.metricsText(t), "coffer_crypto_waiting "); m == "" {
		t.Error("no coffer_crypto_waiting gauge in /metrics")
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("tenant A's RSA-4096 generation: %v", err)
		}
	}
	if free, w := ts.cpu.Free(), ts.cpu.Waiting(); free != 2 || w != 0 {
		t.Errorf("after the flood: %d slots free, %d waiting; want 2, 0", free, w)
	}
}

// otherTenantVault makes tenant "Tenant B" with the vault named vault and a service
// principal holding Key Vault Crypto Officer on it, and returns an azkeys client of that
// principal for the vault.
func otherTenantVault(t *testing.T, ts *testServer, vault string) *azkeys.Client {
	t.Helper()
	ctx := context.Background()
	tb, err := ts.tenants.CreateTenant(ctx, "", "Tenant B")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.tenants.CreateVault(ctx, tb.ID, tenancy.KindVault, vault, tenancy.VaultOptions{}); err != nil {
		t.Fatal(err)
	}
	pb, secret, err := ts.tenants.CreateServicePrincipal(ctx, tb.ID, "b-app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.tenants.CreateRoleAssignment(ctx, authz.Assignment{PrincipalID: pb.ObjectID, TenantID: tb.ID, RoleDefinitionID: mustRole("Key Vault Crypto Officer"), Scope: "/tenants/" + tb.ID + "/vaults/" + vault}); err != nil {
		t.Fatal(err)
	}
	hc := loopbackClient(t, ts.caFile)
	cred, err := azidentity.NewClientSecretCredential(tb.ID, pb.AppID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: ts.Dev.Credentials.AuthorityHost}, Transport: hc},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := azkeys.NewClient("https://"+vault+".localhost:"+ts.resources().port+"/", cred, &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: hc}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
