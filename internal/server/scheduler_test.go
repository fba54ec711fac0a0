package server

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/coffer-kms/coffer/internal/keys"
)

// TestSchedulerRotatesDueKeys moves the server's clock past a rotation policy's trigger and
// waits (polling, no fixed sleep as the assertion) for the scheduler to add a version.
func TestSchedulerRotatesDueKeys(t *testing.T) {
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	cfg := loadConfig(t, "--dev", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--scheduler-interval", "50ms")
	ts := startWithClock(t, cfg, "", clock)
	ctx := context.Background()
	c := keysClient(t, ts)
	if _, err := c.CreateKey(ctx, "auto", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateKeyRotationPolicy(ctx, "auto", azkeys.KeyRotationPolicy{
		LifetimeActions: []*azkeys.LifetimeAction{{Action: &azkeys.LifetimeActionType{Type: to.Ptr(azkeys.KeyRotationPolicyActionRotate)}, Trigger: &azkeys.LifetimeActionTrigger{TimeAfterCreate: to.Ptr("P7D")}}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	// Count versions through the service: after the clock jump, tokens cached by the SDK
	// (which lives on the real clock) are expired for the server.
	versions := func() int {
		id, err := ts.ident()
		if err != nil {
			t.Fatal(err)
		}
		p, err := id.keys.ListVersions(ctx, *ts.devVault, ts.Dev.Credentials.VaultURL, "auto", keys.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return len(p.Value)
	}
	if got := versions(); got != 1 {
		t.Fatalf("versions before the trigger = %d; want 1", got)
	}
	offset.Store(int64(7*24*time.Hour + time.Hour))
	deadline := time.Now().Add(10 * time.Second)
	for versions() != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the scheduler did not rotate the due key within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTokenSigningKeyRotation: once the signing key is older than --token-key-rotation the
// scheduler replaces it; the JWKS then offers both keys, and a token signed before the
// rotation still authenticates.
func TestTokenSigningKeyRotation(t *testing.T) {
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	cfg := loadConfig(t, "--dev", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--scheduler-interval", "50ms", "--token-key-rotation", "2h")
	ts := startWithClock(t, cfg, "", clock)
	hc := loopbackClient(t, ts.caFile)
	c := ts.Dev.Credentials
	_, old := rawToken(t, ts, hc, c.TenantID, c.ClientID, c.ClientSecret, "https://managedhsm.localhost:"+ts.resources().port)
	id, _ := ts.ident()
	first := id.signer.CurrentCreated()
	offset.Store(int64(2*time.Hour + time.Minute))
	deadline := time.Now().Add(10 * time.Second)
	for id.signer.CurrentCreated().Equal(first) {
		if time.Now().After(deadline) {
			t.Fatal("the signing key was not rotated within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	jwks, _ := id.signer.JWKS()
	if n := strings.Count(string(jwks), `"kid"`); n != 2 {
		t.Errorf("JWKS after rotation has %d keys; want the new and the retired one", n)
	}
	offset.Store(0) // back to the old token's lifetime
	if status, _, _ := rng(t, hc, "devhsm.managedhsm.localhost", ts.resources().port, old); status != 200 {
		t.Errorf("token signed before the rotation = %d; want 200", status)
	}
}
