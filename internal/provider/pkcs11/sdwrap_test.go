package pkcs11

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/provider"
)

// withSO configures newToken's security officer PIN.
func withSO(c *Config) { c.SOPIN = testSOPIN }

// newDomainKey returns a random security-domain wrapping key id and value, installed in p.
func newDomainKey(t *testing.T, p *Provider) (id, value []byte) {
	t.Helper()
	id, value = make([]byte, idLen), make([]byte, 32)
	_, _ = rand.Read(id)
	_, _ = rand.Read(value)
	if err := p.InstallDomainKey(context.Background(), "managedhsms/pool", id, value); err != nil {
		t.Fatalf("InstallDomainKey = %v", err)
	}
	return id, value
}

// keyID is the CKA_ID of a provider key, and the class of its secret object.
func keyID(k provider.Key) (uint, []byte) {
	if a, ok := k.(*aesKey); ok {
		return p11.CKO_SECRET_KEY, a.id
	}
	return p11.CKO_PRIVATE_KEY, k.(*Key).id
}

// works checks that k is usable and is the key of pub: it signs a digest that verifies under
// pub (RSA, EC), or decrypts what pub (the original AES key) encrypted.
func works(t *testing.T, k, orig provider.Key) {
	t.Helper()
	ctx := context.Background()
	if k.Type() == provider.OctHSM {
		ct, err := orig.Encrypt(ctx, provider.EncryptParams{Algorithm: provider.AlgA256GCM, Value: []byte("restored")})
		if err != nil {
			t.Fatal(err)
		}
		pt, err := k.Decrypt(ctx, provider.EncryptParams{Algorithm: provider.AlgA256GCM, Value: ct.Value, IV: ct.IV, Tag: ct.Tag})
		if err != nil || string(pt) != "restored" {
			t.Errorf("the restored AES key decrypts the original's ciphertext to %q, %v", pt, err)
		}
		return
	}
	alg := provider.AlgPS256
	if k.Type() == provider.ECHSM {
		alg = provider.AlgES256
	}
	digest := sha256.Sum256([]byte("restored"))
	sig, err := k.Sign(ctx, alg, digest[:])
	if err != nil {
		t.Fatalf("Sign with the restored key = %v", err)
	}
	if ok, err := orig.Verify(ctx, alg, digest[:], sig); !ok || err != nil {
		t.Errorf("the restored key's signature does not verify under the original's public key: %v, %v", ok, err)
	}
}

// TestDomainWrapRoundTrip: with an SO PIN, keys of pools are extractable only under a
// trusted key and still sensitive; wrapped by the security-domain wrapping key they unwrap
// into a new object that works as the original, is protected the same way, and whose
// secret attributes do not read out.
func TestDomainWrapRoundTrip(t *testing.T) {
	p := newToken(t, withSO)
	ctx := context.Background()
	id, _ := newDomainKey(t, p)
	for _, spec := range []provider.KeySpec{
		{Type: provider.RSAHSM, Size: 2048, SecurityDomain: true},
		{Type: provider.ECHSM, Curve: provider.P256, SecurityDomain: true},
		{Type: provider.OctHSM, Size: 256, SecurityDomain: true},
	} {
		t.Run(string(spec.Type), func(t *testing.T) {
			k, err := p.Generate(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			w, err := p.WrapForDomain(ctx, k.Handle(), id)
			if err != nil {
				t.Fatalf("WrapForDomain = %v", err)
			}
			if w.Alg != provider.AlgCKMAESKeyWrapPad || len(w.Value) < 24 {
				t.Fatalf("WrapForDomain = %s, %d bytes", w.Alg, len(w.Value))
			}
			r, err := p.UnwrapForDomain(ctx, "managedhsms/other", id, k.Handle(), w)
			if err != nil {
				t.Fatalf("UnwrapForDomain = %v", err)
			}
			if bytes.Equal(r.Handle(), k.Handle()) {
				t.Error("the restored key has the original's handle; want a new object")
			}
			works(t, r, k)
			if l, err := p.Load(ctx, r.Handle()); err != nil {
				t.Errorf("Load(restored handle) = %v", err)
			} else {
				works(t, l, k)
			}
			for _, key := range []provider.Key{k, r} {
				class, kid := keyID(key)
				attrs := readAttrs(t, p, class, kid, p11.CKA_EXTRACTABLE, p11.CKA_SENSITIVE, p11.CKA_WRAP_WITH_TRUSTED, p11.CKA_PRIVATE)
				for _, a := range attrs {
					if !isTrue(a.Value) {
						t.Errorf("attribute %#x of %x = %v; want true", a.Type, kid, a.Value)
					}
				}
				secret := []uint{p11.CKA_VALUE}
				if class == p11.CKO_PRIVATE_KEY && key.Type() == provider.RSAHSM {
					secret = []uint{p11.CKA_PRIVATE_EXPONENT, p11.CKA_PRIME_1}
				}
				s, _ := p.get(ctx)
				obj, err := p.keyObject(s, class, kid)
				if err != nil {
					p.put(s, false)
					t.Fatal(err)
				}
				for _, a := range secret {
					if _, err := p.ctx.GetAttributeValue(s, obj, []*p11.Attribute{p11.NewAttribute(a, nil)}); !isRV(err, p11.CKR_ATTRIBUTE_SENSITIVE) {
						t.Errorf("reading attribute %#x = %v; want CKR_ATTRIBUTE_SENSITIVE", a, err)
					}
				}
				p.put(s, false)
			}
		})
	}
}

// TestDomainWrapRefusesOtherKeys: the token refuses to wrap a pool's key with any key but a
// trusted one (a fresh AES key of the user's is not), the user can neither make a key
// trusted nor clear CKA_WRAP_WITH_TRUSTED, and WrapForDomain refuses vault keys (not
// extractable) and an id that was never installed.
func TestDomainWrapRefusesOtherKeys(t *testing.T) {
	p := newToken(t, withSO)
	ctx := context.Background()
	id, _ := newDomainKey(t, p)
	pool, err := p.Generate(ctx, provider.KeySpec{Type: provider.RSAHSM, Size: 2048, SecurityDomain: true})
	if err != nil {
		t.Fatal(err)
	}
	poolAES, err := p.Generate(ctx, provider.KeySpec{Type: provider.OctHSM, Size: 256, SecurityDomain: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other, err := p.ctx.GenerateKey(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_GEN, nil)}, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY), p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
		p11.NewAttribute(p11.CKA_TOKEN, false), p11.NewAttribute(p11.CKA_WRAP, true), p11.NewAttribute(p11.CKA_VALUE_LEN, 32),
	})
	if err != nil {
		p.put(s, false)
		t.Fatal(err)
	}
	for _, k := range []provider.Key{pool, poolAES} {
		class, kid := keyID(k)
		obj, err := p.keyObject(s, class, kid)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []uint{p11.CKM_AES_KEY_WRAP_PAD, p11.CKM_AES_KEY_WRAP} {
			if _, err := p.ctx.WrapKey(s, []*p11.Mechanism{p11.NewMechanism(m, nil)}, other, obj); !isRV(err, p11.CKR_KEY_NOT_WRAPPABLE) {
				t.Errorf("C_WrapKey(%s, mechanism %#x) with an untrusted AES key = %v; want CKR_KEY_NOT_WRAPPABLE", k.Type(), m, err)
			}
		}
		if err := p.ctx.SetAttributeValue(s, obj, []*p11.Attribute{p11.NewAttribute(p11.CKA_WRAP_WITH_TRUSTED, false)}); err == nil {
			t.Errorf("the user cleared CKA_WRAP_WITH_TRUSTED of a %s pool key", k.Type())
		}
	}
	if err := p.ctx.SetAttributeValue(s, other, []*p11.Attribute{p11.NewAttribute(p11.CKA_TRUSTED, true)}); err == nil {
		t.Error("the user made an AES key CKA_TRUSTED")
	}
	p.put(s, false)

	vault, err := p.Generate(ctx, provider.KeySpec{Type: provider.ECHSM, Curve: provider.P256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.WrapForDomain(ctx, vault.Handle(), id); !errors.Is(err, provider.ErrNotExportable) {
		t.Errorf("WrapForDomain(a vault key) = %v; want ErrNotExportable", err)
	}
	if e, _ := extractable(t, p, p11.CKO_PRIVATE_KEY, vault.(*Key).id); e {
		t.Error("a vault key is extractable")
	}
	unknown := bytes.Repeat([]byte{7}, idLen)
	if _, err := p.WrapForDomain(ctx, pool.Handle(), unknown); !errors.Is(err, ErrHSM) {
		t.Errorf("WrapForDomain(id never installed) = %v; want ErrHSM", err)
	}
}

// TestInstallDomainKey: installing is idempotent (one object, also after a new Provider is
// opened on the token), an existing id whose key holds another value is refused, keys made
// before and after the SO login keep working, and without an SO PIN installing is
// ErrUnsupported and pool keys stay non-extractable.
func TestInstallDomainKey(t *testing.T) {
	p := newToken(t, withSO)
	ctx := context.Background()
	before, err := p.Generate(ctx, provider.KeySpec{Type: provider.ECHSM, Curve: provider.P256, SecurityDomain: true})
	if err != nil {
		t.Fatal(err)
	}
	n := objectCount(t, p)
	id, value := newDomainKey(t, p)
	if got := objectCount(t, p); got != n+1 {
		t.Errorf("objects after InstallDomainKey: %d; want %d", got, n+1)
	}
	works(t, before, before) // the pool's sessions are logged in again
	p.domainKeys.Clear()     // as after a restart: found in the token, checked, not made again
	if err := p.InstallDomainKey(ctx, "", id, value); err != nil {
		t.Fatalf("InstallDomainKey again = %v", err)
	}
	if got := objectCount(t, p); got != n+1 {
		t.Errorf("objects after a second InstallDomainKey: %d; want %d", got, n+1)
	}
	p.domainKeys.Clear()
	wrong := bytes.Repeat([]byte{1}, 32)
	if err := p.InstallDomainKey(ctx, "", id, wrong); !errors.Is(err, errWrongDomainKey) {
		t.Errorf("InstallDomainKey(same id, another value) = %v; want errWrongDomainKey", err)
	}
	if _, err := p.WrapForDomain(ctx, before.Handle(), id); err == nil {
		t.Error("WrapForDomain with a key whose check failed = nil; want an error")
	}

	bad := newToken(t, func(c *Config) { c.SOPIN = "0000" })
	id3 := bytes.Repeat([]byte{3}, idLen)
	for range 2 {
		if err := bad.InstallDomainKey(ctx, "", id3, value); !errors.Is(err, errSORefused) {
			t.Errorf("InstallDomainKey with a wrong SO PIN = %v; want errSORefused", err)
		}
	}
	works(t, before, before)

	q := newToken(t)
	if err := q.InstallDomainKey(ctx, "", id, value); !errors.Is(err, provider.ErrUnsupported) {
		t.Errorf("InstallDomainKey without an SO PIN = %v; want ErrUnsupported", err)
	}
	k, err := q.Generate(ctx, provider.KeySpec{Type: provider.OctHSM, Size: 256, SecurityDomain: true})
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := extractable(t, q, p11.CKO_SECRET_KEY, k.(*aesKey).id); e {
		t.Error("a pool key made without an SO PIN is extractable")
	}
}

// TestUnwrapForDomainRefuses: a changed wrapped key, one under another domain key, and a
// handle describing another key are refused with ErrInvalidKey and leave no object behind.
func TestUnwrapForDomainRefuses(t *testing.T) {
	p := newToken(t, withSO)
	ctx := context.Background()
	id, _ := newDomainKey(t, p)
	id2, _ := newDomainKey(t, p)
	k, err := p.Generate(ctx, provider.KeySpec{Type: provider.RSAHSM, Size: 2048, SecurityDomain: true})
	if err != nil {
		t.Fatal(err)
	}
	other, err := p.Generate(ctx, provider.KeySpec{Type: provider.RSAHSM, Size: 2048, SecurityDomain: true})
	if err != nil {
		t.Fatal(err)
	}
	ec, err := p.Generate(ctx, provider.KeySpec{Type: provider.ECHSM, Curve: provider.P256, SecurityDomain: true})
	if err != nil {
		t.Fatal(err)
	}
	w, err := p.WrapForDomain(ctx, k.Handle(), id)
	if err != nil {
		t.Fatal(err)
	}
	wec, err := p.WrapForDomain(ctx, ec.Handle(), id)
	if err != nil {
		t.Fatal(err)
	}
	flipped := provider.DomainWrapped{Alg: w.Alg, Value: append([]byte(nil), w.Value...)}
	flipped.Value[10] ^= 1
	ecOther, _ := p.Generate(ctx, provider.KeySpec{Type: provider.ECHSM, Curve: provider.P256})
	n := objectCount(t, p)
	for name, c := range map[string]struct {
		id, handle []byte
		w          provider.DomainWrapped
	}{
		"flipped":              {id, k.Handle(), flipped},
		"truncated":            {id, k.Handle(), provider.DomainWrapped{Alg: w.Alg, Value: w.Value[:len(w.Value)-8]}},
		"other domain key":     {id2, k.Handle(), w},
		"other RSA key":        {id, other.Handle(), w},
		"other EC key":         {id, ecOther.Handle(), wec},
		"RSA as EC":            {id, ec.Handle(), w},
		"other mechanism name": {id, k.Handle(), provider.DomainWrapped{Alg: provider.AlgCKMAESKeyWrap, Value: w.Value}},
	} {
		if _, err := p.UnwrapForDomain(ctx, "", c.id, c.handle, c.w); !errors.Is(err, provider.ErrInvalidKey) {
			t.Errorf("%s: UnwrapForDomain = %v; want ErrInvalidKey", name, err)
		}
	}
	if got := objectCount(t, p); got != n {
		t.Errorf("objects after refused unwraps: %d; want %d", got, n)
	}
}

// TestDomainWrapExportable: a pool key made exportable for secure key release is released
// as before (not bound to trusted keys), and is also wrapped by the security domain; its
// restored copy is exportable again.
func TestDomainWrapExportable(t *testing.T) {
	p := newToken(t, withSO)
	ctx := context.Background()
	id, _ := newDomainKey(t, p)
	k, err := p.Generate(ctx, provider.KeySpec{Type: provider.OctHSM, Size: 256, Exportable: true, SecurityDomain: true})
	if err != nil {
		t.Fatal(err)
	}
	tee, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.(provider.Exporter).ExportWrapped(ctx, &tee.PublicKey, crypto.SHA1); err != nil {
		t.Fatalf("ExportWrapped(exportable pool key) = %v", err)
	}
	w, err := p.WrapForDomain(ctx, k.Handle(), id)
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.UnwrapForDomain(ctx, "", id, k.Handle(), w)
	if err != nil {
		t.Fatal(err)
	}
	works(t, r, k)
	if _, err := r.(provider.Exporter).ExportWrapped(ctx, &tee.PublicKey, crypto.SHA1); err != nil {
		t.Errorf("ExportWrapped(restored exportable key) = %v", err)
	}
}
