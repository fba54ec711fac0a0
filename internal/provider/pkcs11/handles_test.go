package pkcs11

import (
	"context"
	"encoding/hex"
	"os/exec"
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
	if _, ok := p.objects.m.Load(keyOf(p11.CKO_PRIVATE_KEY, doc.ID)); !ok {
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
	if _, ok := p.objects.m.Load(keyOf(p11.CKO_PRIVATE_KEY, doc.ID)); ok {
		t.Error("the stale handle is still cached")
	}
}

// TestObjectCacheSeesDestroyByAnotherProcess: another application (pkcs11-tool, a process
// of its own, whose calls move no handle epoch here) destroys a key whose handle this
// provider has cached and uses without a check. The token then reports the handle invalid,
// the key is searched for again, and the operation fails as for any missing key.
func TestObjectCacheSeesDestroyByAnotherProcess(t *testing.T) {
	p := newToken(t)
	tool, err := exec.LookPath("pkcs11-tool")
	if err != nil {
		t.Skip("pkcs11-tool is not on PATH: apt-get install opensc")
	}
	ctx := context.Background()
	k, err := p.Generate(ctx, provider.KeySpec{Type: provider.ECHSM, Curve: provider.P256})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second use takes the cached handle unchecked
		if _, err := k.Sign(ctx, provider.AlgES256, make([]byte, 32)); err != nil {
			t.Fatal(err)
		}
	}
	doc, _, _ := parseHandle(k.Handle())
	if e, ok := p.objects.lookup(p11.CKO_PRIVATE_KEY, doc.ID); !ok || e.epoch != handleEpoch.Load() {
		t.Fatalf("cache entry = %+v, %v; want one current at epoch %d", e, ok, handleEpoch.Load())
	}
	out, err := exec.Command(tool, "--module", softhsmLib, "--token-label", "coffer-test", "--login", "--pin", "1234",
		"--delete-object", "--type", "privkey", "--id", hex.EncodeToString(doc.ID)).CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool --delete-object: %v\n%s", err, out)
	}
	if _, err := k.Sign(ctx, provider.AlgES256, make([]byte, 32)); !goneNotHSM(err) {
		t.Errorf("Sign after another process destroyed the key = %v; want ErrKeyGone", err)
	}
}

// TestObjectCacheChecksOldEpochs: a cached handle recorded at an earlier handle epoch is
// not trusted. Here it names another key (as a reused handle number would): the result
// made with it is thrown away, the right object is found, and the signature returned is
// the right key's.
func TestObjectCacheChecksOldEpochs(t *testing.T) {
	p := newToken(t)
	ctx := context.Background()
	k, err := p.Generate(ctx, provider.KeySpec{Type: provider.ECHSM, Curve: provider.P256})
	if err != nil {
		t.Fatal(err)
	}
	other, err := p.Generate(ctx, provider.KeySpec{Type: provider.ECHSM, Curve: provider.P256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Sign(ctx, provider.AlgES256, make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	kd, _, _ := parseHandle(k.Handle())
	od, _, _ := parseHandle(other.Handle())
	wrong, _ := p.objects.lookup(p11.CKO_PRIVATE_KEY, od.ID)
	p.objects.put(p11.CKO_PRIVATE_KEY, kd.ID, wrong.obj, handleEpoch.Load()-1)
	digest := make([]byte, 32)
	sig, err := k.Sign(ctx, provider.AlgES256, digest)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := k.Verify(ctx, provider.AlgES256, digest, sig); err != nil || !ok {
		t.Errorf("the signature does not verify under the key's own public key (%v, %v): the stale handle was used", ok, err)
	}
	if e, _ := p.objects.lookup(p11.CKO_PRIVATE_KEY, kd.ID); e.obj == wrong.obj {
		t.Error("the wrong handle is still cached")
	}
}
