package pkcs11

import (
	"context"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/provider"
)

// TestObjectCacheSeesExternalDestroy: the key object handle is cached after the first
// operation, and when another provider (another Coffer node, an administrator) destroys
// the key, the stale handle is not used: the next operation fails as for any missing key
// (provider.ErrKeyGone).
func TestObjectCacheSeesExternalDestroy(t *testing.T) {
	p := newToken(t)
	ctx := context.Background()
	k, err := p.Generate(ctx, provider.KeySpec{Type: provider.ECHSM, Curve: provider.P256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Sign(ctx, provider.AlgES256, make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	doc, _, err := parseHandle(k.Handle())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.objects.m.Load(cacheKey(p11.CKO_PRIVATE_KEY, doc.ID)); !ok {
		t.Fatal("the key's object handle was not cached by the first operation")
	}
	other, err := Open(Config{Library: softhsmLib, TokenLabel: "coffer-test", PIN: "1234"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Destroy(ctx, k.Handle()); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Sign(ctx, provider.AlgES256, make([]byte, 32)); !goneNotHSM(err) {
		t.Errorf("Sign after another provider destroyed the key = %v; want ErrKeyGone (the key is gone, the token is not)", err)
	}
	if _, ok := p.objects.m.Load(cacheKey(p11.CKO_PRIVATE_KEY, doc.ID)); ok {
		t.Error("the stale handle is still cached")
	}
}
