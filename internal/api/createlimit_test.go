package api

import (
	"errors"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/tenancy"
)

// TestCreateLimiter: the key-creation bucket of a vault admits limit weighted creations in
// any 10 s window, refuses the next with the wait until the oldest creations that free
// enough room leave the window, keeps software and -HSM creations, vaults and pools apart,
// and is off at 0.
func TestCreateLimiter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	v := tenancy.Vault{Name: "v1", Kind: tenancy.KindVault, TenantID: "t1"}
	l := NewCreateLimiter(10, 3, clock)
	admit := func(v tenancy.Vault, hsm bool, weight int) time.Duration {
		t.Helper()
		err := l.AdmitCreate(v, hsm, weight)
		if err == nil {
			return 0
		}
		var te *ThrottleError
		if !errors.As(err, &te) {
			t.Fatalf("AdmitCreate = %v; want a *ThrottleError", err)
		}
		return te.RetryAfter
	}
	for i := range 2 { // 2 × 1 at t0
		if wait := admit(v, false, 1); wait != 0 {
			t.Fatalf("creation %d refused (%v); want admitted", i, wait)
		}
	}
	now = now.Add(3 * time.Second)
	if wait := admit(v, false, 8); wait != 0 { // RSA-4096 at t0+3s: 10 of 10
		t.Fatalf("RSA-4096 creation refused (%v); want admitted at 2+8 = 10", wait)
	}
	now = now.Add(time.Second)
	if wait := admit(v, false, 1); wait != 6*time.Second {
		t.Errorf("11th weight: Retry-After %v; want 6s (the two at t0 leave at t0+10s)", wait)
	}
	if wait := admit(v, false, 4); wait != 9*time.Second {
		t.Errorf("RSA-3072 over the limit: Retry-After %v; want 9s (needs the RSA-4096's room, free at t0+13s)", wait)
	}
	if wait := admit(v, true, 1); wait != 0 {
		t.Errorf("an HSM creation waited %v; want its own bucket", wait)
	}
	for _, other := range []tenancy.Vault{
		{Name: "v2", Kind: tenancy.KindVault, TenantID: "t1"},
		{Name: "v1", Kind: tenancy.KindManagedHSM, TenantID: "t1"},
		{Name: "v1", Kind: tenancy.KindVault, TenantID: "t2"},
	} {
		if wait := admit(other, false, 8); wait != 0 {
			t.Errorf("%+v waited %v; want its own bucket", other, wait)
		}
	}
	now = now.Add(6 * time.Second) // t0+10s: the two weight-1 creations have left
	if wait := admit(v, false, 1); wait != 0 {
		t.Errorf("creation after the window refused (%v)", wait)
	}
	if wait := admit(v, false, 1); wait != 0 {
		t.Errorf("second creation after the window refused (%v)", wait)
	}
	if wait := admit(v, false, 1); wait != 3*time.Second {
		t.Errorf("full again: Retry-After %v; want 3s", wait)
	}
	// The HSM bucket: 3, with a weight above the limit counting as the limit.
	h := tenancy.Vault{Name: "pool", Kind: tenancy.KindManagedHSM, TenantID: "t1"}
	if wait := admit(h, true, 8); wait != 0 {
		t.Errorf("an RSA-4096-HSM creation in an empty bucket of 3 refused (%v); want admitted", wait)
	}
	if wait := admit(h, true, 1); wait != 10*time.Second {
		t.Errorf("HSM bucket full: Retry-After %v; want 10s", wait)
	}
	now = now.Add(time.Hour) // every bucket has emptied: the sweep forgets them
	if wait := admit(v, false, 1); wait != 0 || len(l.vaults) != 1 {
		t.Errorf("after an hour: wait %v, %d buckets kept; want 0, 1", wait, len(l.vaults))
	}
	off := NewCreateLimiter(0, 0, clock)
	for i := range 1000 {
		if err := off.AdmitCreate(v, i%2 == 0, 8); err != nil {
			t.Fatalf("disabled limiter: creation %d = %v", i, err)
		}
	}
}
