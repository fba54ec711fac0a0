package keys

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/records"
)

// octProvider adds in-memory oct-HSM keys (AES-GCM only, random 12-byte IVs) to the
// software provider, standing in for a token in the keys domain's tests.
type octProvider struct {
	provider.Provider
	mu   sync.Mutex
	keys map[string]*octKey
}

type octKey struct {
	provider.Key // nil: only the methods below are used
	handle       []byte
	aead         cipher.AEAD
}

func (p *octProvider) Generate(ctx context.Context, spec provider.KeySpec) (provider.Key, error) {
	if spec.Type != provider.OctHSM {
		return p.Provider.Generate(ctx, spec)
	}
	raw := make([]byte, spec.Size/8)
	id := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	k := &octKey{handle: []byte(`{"v":1,"id":"` + hex.EncodeToString(id) + `","kty":"oct-HSM"}`), aead: aead}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys[string(k.handle)] = k
	return k, nil
}

func (p *octProvider) Load(ctx context.Context, handle []byte) (provider.Key, error) {
	p.mu.Lock()
	k := p.keys[string(handle)]
	p.mu.Unlock()
	if k != nil {
		return k, nil
	}
	return p.Provider.Load(ctx, handle)
}

func (k *octKey) Handle() []byte        { return k.handle }
func (k *octKey) Public() *provider.JWK { return &provider.JWK{Kty: provider.OctHSM} }
func (k *octKey) Type() provider.KeyType {
	return provider.OctHSM
}
func (k *octKey) Size() int             { return 256 }
func (k *octKey) Curve() provider.Curve { return "" }

func (k *octKey) Encrypt(_ context.Context, p provider.EncryptParams) (provider.EncryptResult, error) {
	if len(p.IV) > 0 {
		return provider.EncryptResult{}, fmt.Errorf("%w: GCM encryption takes no iv", provider.ErrInvalidParameter)
	}
	if p.BeforeRandomIV != nil {
		if err := p.BeforeRandomIV(); err != nil {
			return provider.EncryptResult{}, err
		}
	}
	iv := make([]byte, 12)
	if _, err := rand.Read(iv); err != nil {
		return provider.EncryptResult{}, err
	}
	out := k.aead.Seal(nil, iv, p.Value, p.AAD)
	n := len(p.Value)
	return provider.EncryptResult{Value: out[:n], Tag: out[n:], IV: iv}, nil
}

func (k *octKey) Decrypt(_ context.Context, p provider.EncryptParams) ([]byte, error) {
	pt, err := k.aead.Open(nil, p.IV, append(append([]byte(nil), p.Value...), p.Tag...), p.AAD)
	if err != nil {
		return nil, provider.ErrDecrypt
	}
	return pt, nil
}

// newOctFixture is newFixture with oct-HSM keys and the AES-GCM limit lowered to limit,
// reserved block at a time.
func newOctFixture(t *testing.T, limit, block uint64) *fixture {
	f := newFixture(t)
	f.svc = f.octService(limit, block)
	return f
}

// octService is a fresh service on the fixture's store and provider (a restart).
func (f *fixture) octService(limit, block uint64) *Service {
	if _, ok := f.prov.Provider.(*octProvider); !ok {
		f.prov.Provider = &octProvider{Provider: f.prov.Provider, keys: map[string]*octKey{}}
	}
	s := NewService(f.store, f.prov, f.clk.Now, f.bkey)
	s.RequireHSMInPools()
	s.LowerGCMLimitForTest(limit, block)
	return s
}

// gcmEncrypt encrypts msg with A256GCM under the version (latest if "").
func (f *fixture) gcmEncrypt(s *Service, name, version string, msg []byte) (OperationResult, error) {
	return s.Encrypt(f.ctx, f.v, f.base, name, version, OperationParams{Algorithm: provider.AlgA256GCM, Value: msg})
}

// storedCeiling reads the reservation record of the key version's token key.
func (f *fixture) storedCeiling(name, version string) uint64 {
	f.t.Helper()
	sc, lc, err := target(f.v, f.base, name)
	if err != nil {
		f.t.Fatal(err)
	}
	var ver versionRecord
	if _, err := records.Get(f.ctx, f.store, sc.versionPath(lc, version), &ver); err != nil {
		f.t.Fatal(err)
	}
	var r gcmRecord
	if _, err := records.Get(f.ctx, f.store, gcmCountPath(f.v.TenantID, ver.Handle), &r); err != nil {
		f.t.Fatal(err)
	}
	return r.Ceiling
}

// TestGCMLimit: with the limit lowered to 1,000 and blocks of 100, a version encrypts
// 1,000 times, the next is refused (ErrGCMLimit, the message says to rotate), decrypt
// still works, and a new version encrypts again. Other algorithms and keys are not counted.
func TestGCMLimit(t *testing.T) {
	const limit, block = 1000, 100
	f := newOctFixture(t, limit, block)
	b := f.mustCreate(f.v, "aes", CreateParams{Kty: provider.OctHSM, KeySize: 256})
	v1 := versionOf(b.Key.KID)
	msg := []byte("sixteen byte msg")
	// A request the provider refuses for its parameters (a caller's IV) counts nothing
	// and writes nothing: bad input changes nothing.
	if _, err := f.svc.Encrypt(f.ctx, f.v, f.base, "aes", "", OperationParams{Algorithm: provider.AlgA256GCM, Value: msg, IV: make([]byte, 12)}); err == nil {
		t.Fatal("Encrypt with a caller's IV succeeded; want it refused")
	}
	if counted, err := records.ListAll(f.ctx, f.store, "tenants/"+f.v.TenantID+"/"+gcmCountPrefix); err != nil || len(counted) != 0 {
		t.Fatalf("after a refused encrypt: %d AES-GCM count records, %v; want none", len(counted), err)
	}
	var first OperationResult
	for i := range limit {
		r, err := f.gcmEncrypt(f.svc, "aes", "", msg)
		if err != nil {
			t.Fatalf("Encrypt #%d = %v; want success below the limit", i+1, err)
		}
		if i == 0 {
			first = r
		}
		if c := f.storedCeiling("aes", v1); c < uint64(i+1) {
			t.Fatalf("after %d encryptions the stored ceiling is %d; want at least that many", i+1, c)
		}
	}
	if c := f.storedCeiling("aes", v1); c != limit {
		t.Errorf("stored ceiling = %d; want %d", c, limit)
	}
	_, err := f.gcmEncrypt(f.svc, "aes", "", msg)
	wantErr(t, "Encrypt past the limit", err, ErrGCMLimit)
	wantErr(t, "Encrypt past the limit", err, ErrForbiddenOp)
	for _, want := range []string{"Key aes version " + v1, "AES-GCM limit of 1000 encryptions with random IVs", "Rotate the key (create a new version)", "decrypt with it still works"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Encrypt past the limit = %v; want a message containing %q", err, want)
		}
	}
	if _, err := f.gcmEncrypt(f.svc, "aes", v1, msg); err == nil {
		t.Error("Encrypt past the limit by explicit version succeeded; want ErrGCMLimit")
	}
	pt, err := f.svc.Decrypt(f.ctx, f.v, f.base, "aes", v1, OperationParams{Algorithm: provider.AlgA256GCM, Value: first.Value, IV: first.IV, Tag: first.Tag})
	if err != nil || string(pt.Value) != string(msg) {
		t.Errorf("Decrypt with the exhausted version = %q, %v; want the plaintext", pt.Value, err)
	}
	f.mustCreate(f.v, "aes", CreateParams{Kty: provider.OctHSM, KeySize: 256}) // a new version
	if _, err := f.gcmEncrypt(f.svc, "aes", "", msg); err != nil {
		t.Errorf("Encrypt with a new version = %v; want success", err)
	}
	// RSA encryption is not counted: the two AES versions alone have records.
	f.mustCreate(f.v, "rsa", rsaKey)
	if _, err := f.svc.Encrypt(f.ctx, f.v, f.base, "rsa", "", OperationParams{Algorithm: provider.AlgRSAOAEP256, Value: msg}); err != nil {
		t.Fatalf("RSA Encrypt = %v", err)
	}
	counted, err := records.ListAll(f.ctx, f.store, "tenants/"+f.v.TenantID+"/"+gcmCountPrefix)
	if err != nil || len(counted) != 2 {
		t.Errorf("AES-GCM count records = %d, %v; want 2 (one per AES version, none for RSA)", len(counted), err)
	}
}

// TestGCMLimitResumesAtCeiling: a fresh service on the same store (a restart, or kill -9:
// nothing but the committed reservation survives) resumes at the stored ceiling, never
// below the encryptions made, and the limit still holds over both lives.
func TestGCMLimitResumesAtCeiling(t *testing.T) {
	const limit, block = 1000, 100
	f := newOctFixture(t, limit, block)
	v1 := versionOf(f.mustCreate(f.v, "aes", CreateParams{Kty: provider.OctHSM, KeySize: 256}).Key.KID)
	msg := []byte("m")
	const before = 150
	for i := range before {
		if _, err := f.gcmEncrypt(f.svc, "aes", "", msg); err != nil {
			t.Fatalf("Encrypt #%d = %v", i+1, err)
		}
	}
	if c := f.storedCeiling("aes", v1); c != 200 {
		t.Fatalf("after %d encryptions the stored ceiling is %d; want 200 (two blocks)", before, c)
	}
	restarted := f.octService(limit, block)
	after := 0
	for {
		if _, err := f.gcmEncrypt(restarted, "aes", "", msg); err != nil {
			wantErr(t, "Encrypt past the limit", err, ErrGCMLimit)
			break
		}
		after++
		if after == 1 {
			if c := f.storedCeiling("aes", v1); c != 300 {
				t.Errorf("the restarted service's first encryption left the ceiling at %d; want 300 (resumed at 200, one block more)", c)
			}
		}
		if after > limit {
			t.Fatal("the restarted service never refused")
		}
	}
	if after != limit-200 {
		t.Errorf("the restarted service made %d encryptions; want %d (the limit less the ceiling stored before the restart)", after, limit-200)
	}
	if before+after > limit {
		t.Errorf("%d encryptions in all; want at most %d", before+after, limit)
	}
	// A second restart at the limit refuses at once and reserves nothing more.
	if _, err := f.gcmEncrypt(f.octService(limit, block), "aes", "", msg); err == nil {
		t.Error("Encrypt after a restart at the limit succeeded; want ErrGCMLimit")
	}
	if c := f.storedCeiling("aes", v1); c != limit {
		t.Errorf("stored ceiling = %d; want %d", c, limit)
	}
}
