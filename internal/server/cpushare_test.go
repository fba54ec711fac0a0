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
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
)

// TestCPUShare (SECURITY-NOTES R2): with two crypto slots, one tenant's flood of RSA-4096
// key generations holds one slot at a time — the others wait, counted by the
// coffer_crypto_waiting gauge — so another tenant's RSA signatures run in the free slot
// meanwhile and all succeed; every slot is free again afterwards.
func TestCPUShare(t *testing.T) {
	ts := startDev(t, "--crypto-slots", "2")
	ctx := context.Background()
	a := keysClient(t, ts)
	tb := secondTenantVault(t, ts, "bvault")
	b, err := azkeys.NewClient(tb.url, tb.cred, &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: tb.hc}})
	if err != nil {
		t.Fatal(err)
	}
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
