package pkcs11

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/provider"
)

// The Wycheproof AES files, kept once under internal/keywrap/testdata (SOURCE.md there).
// Each vector's key is imported into the token as a sensitive, non-extractable object (a
// test-only path: the provider itself never imports AES keys in clear) and the vector runs
// through the aesKey methods the API calls. GCM encryption uses the vector's IV through
// sealGCM, which Encrypt calls with a random one.

type aesVectors struct {
	NumberOfTests int `json:"numberOfTests"`
	TestGroups    []struct {
		KeySize int `json:"keySize"`
		IVSize  int `json:"ivSize"`
		TagSize int `json:"tagSize"`
		Tests   []struct {
			TcID   int      `json:"tcId"`
			Flags  []string `json:"flags"`
			Key    string   `json:"key"`
			IV     string   `json:"iv"`
			AAD    string   `json:"aad"`
			Msg    string   `json:"msg"`
			Ct     string   `json:"ct"`
			Tag    string   `json:"tag"`
			Result string   `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

// vector is one test with its bytes decoded.
type vector struct {
	id                      int
	flags                   []string
	result                  string
	key, iv, aad, msg, ct   []byte
	tag                     []byte
	keyBits, ivBits, tagBit int
}

func loadAESVectors(t *testing.T, name string) []vector {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "keywrap", "testdata", "wycheproof", name))
	if err != nil {
		t.Fatal(err)
	}
	var f aesVectors
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	dh := func(s string) []byte {
		v, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	var out []vector
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			out = append(out, vector{id: tc.TcID, flags: tc.Flags, result: tc.Result, key: dh(tc.Key), iv: dh(tc.IV), aad: dh(tc.AAD),
				msg: dh(tc.Msg), ct: dh(tc.Ct), tag: dh(tc.Tag), keyBits: g.KeySize, ivBits: g.IVSize, tagBit: g.TagSize})
		}
	}
	if len(out) != f.NumberOfTests {
		t.Fatalf("%s: %d tests, numberOfTests %d", name, len(out), f.NumberOfTests)
	}
	return out
}

// importTestAESKey puts key into the token as a sensitive, non-extractable AES key object
// (C_CreateObject; CKA_VALUE_LEN is implied by CKA_VALUE there) and returns it as an aesKey.
func importTestAESKey(t *testing.T, p *Provider, key []byte) *aesKey {
	t.Helper()
	id := make([]byte, idLen)
	if _, err := rand.Read(id); err != nil {
		t.Fatal(err)
	}
	tmpl := append(aesTemplate(id, 0), p11.NewAttribute(p11.CKA_VALUE, key))
	ctx := context.Background()
	s, err := p.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.ctx.CreateObject(s, tmpl)
	p.put(s, err != nil)
	if err != nil {
		t.Fatalf("CreateObject(AES-%d) = %v", 8*len(key), err)
	}
	k, err := p.Load(ctx, marshalAESHandle(id, 8*len(key), false))
	if err != nil {
		t.Fatalf("Load(imported AES key) = %v", err)
	}
	t.Cleanup(func() { _ = p.Destroy(ctx, k.Handle()) })
	return k.(*aesKey)
}

// vectorKeys imports each distinct key of the vectors once.
type vectorKeys struct {
	t    *testing.T
	p    *Provider
	keys map[string]*aesKey
}

func (vk *vectorKeys) get(key []byte) *aesKey {
	if k, ok := vk.keys[string(key)]; ok {
		return k
	}
	k := importTestAESKey(vk.t, vk.p, key)
	vk.keys[string(key)] = k
	return k
}

// tally counts outcomes and checks every valid vector passed and every invalid one failed.
type tally struct{ valid, invalid, acceptable, skipped int }

func (c *tally) check(t *testing.T, name string, total int) {
	t.Helper()
	if c.valid+c.invalid+c.acceptable+c.skipped != total || c.valid == 0 {
		t.Fatalf("%s: %+v of %d", name, *c, total)
	}
	t.Logf("%s: %d valid, %d invalid, %d acceptable, %d refused as outside Key Vault's shapes", name, c.valid, c.invalid, c.acceptable, c.skipped)
}

// wantFail reports whether err is a decryption failure the API answers uniformly.
func decryptFailed(err error) bool { return err == provider.ErrDecrypt }

func TestWycheproofAESGCM(t *testing.T) {
	p := newToken(t)
	ctx := context.Background()
	vs := loadAESVectors(t, "aes_gcm_test.json")
	vk := &vectorKeys{t: t, p: p, keys: map[string]*aesKey{}}
	var c tally
	for _, v := range vs {
		alg := map[int]string{128: provider.AlgA128GCM, 192: provider.AlgA192GCM, 256: provider.AlgA256GCM}[v.keyBits]
		if alg == "" || v.ivBits != 96 || v.tagBit != 128 {
			// Key Vault's GCM is 96-bit IV, 128-bit tag: other shapes are refused.
			c.skipped++
			if alg != "" {
				k := vk.get(v.key)
				_, err := k.Decrypt(ctx, provider.EncryptParams{Algorithm: alg, Value: v.ct, IV: v.iv, AAD: v.aad, Tag: v.tag})
				if !errors.Is(err, provider.ErrInvalidParameter) {
					t.Errorf("tc%d (iv %d, tag %d bits): Decrypt = %v; want ErrInvalidParameter", v.id, v.ivBits, v.tagBit, err)
				}
			}
			continue
		}
		k := vk.get(v.key)
		pt, err := k.Decrypt(ctx, provider.EncryptParams{Algorithm: alg, Value: v.ct, IV: v.iv, AAD: v.aad, Tag: v.tag})
		switch v.result {
		case "valid":
			c.valid++
			if err != nil || !bytes.Equal(pt, v.msg) {
				t.Errorf("tc%d %v: Decrypt = %x, %v; want %x", v.id, v.flags, pt, err, v.msg)
			}
			r, err := k.sealGCM(ctx, v.iv, v.aad, v.msg)
			if err != nil || !bytes.Equal(r.Value, v.ct) || !bytes.Equal(r.Tag, v.tag) {
				t.Errorf("tc%d %v: sealGCM = %x %x, %v; want %x %x", v.id, v.flags, r.Value, r.Tag, err, v.ct, v.tag)
			}
		case "invalid":
			c.invalid++
			if !decryptFailed(err) {
				t.Errorf("tc%d %v: Decrypt = %x, %v; want exactly ErrDecrypt", v.id, v.flags, pt, err)
			}
		default:
			c.acceptable++
		}
	}
	c.check(t, "aes_gcm_test", len(vs))
}

func TestWycheproofAESCBC(t *testing.T) {
	p := newToken(t)
	ctx := context.Background()
	vs := loadAESVectors(t, "aes_cbc_pkcs5_test.json")
	vk := &vectorKeys{t: t, p: p, keys: map[string]*aesKey{}}
	var c tally
	raw := 0
	for _, v := range vs {
		_, cbc, cbcpad, _ := aesAlgsFor(v.keyBits)
		k := vk.get(v.key)
		pt, err := k.Decrypt(ctx, provider.EncryptParams{Algorithm: cbcpad, Value: v.ct, IV: v.iv})
		switch v.result {
		case "valid":
			c.valid++
			if err != nil || !bytes.Equal(pt, v.msg) {
				t.Errorf("tc%d %v: Decrypt = %x, %v; want %x", v.id, v.flags, pt, err, v.msg)
			}
			r, err := k.Encrypt(ctx, provider.EncryptParams{Algorithm: cbcpad, Value: v.msg, IV: v.iv})
			if err != nil || !bytes.Equal(r.Value, v.ct) {
				t.Errorf("tc%d %v: Encrypt = %x, %v; want %x", v.id, v.flags, r.Value, err, v.ct)
			}
			// Unpadded CBC: the first len(msg) bytes of the padded ciphertext.
			if n := len(v.msg); n > 0 && n%16 == 0 {
				raw++
				r, err := k.Encrypt(ctx, provider.EncryptParams{Algorithm: cbc, Value: v.msg, IV: v.iv})
				if err != nil || !bytes.Equal(r.Value, v.ct[:n]) {
					t.Errorf("tc%d: %s Encrypt = %x, %v; want %x", v.id, cbc, r.Value, err, v.ct[:n])
				}
				pt, err := k.Decrypt(ctx, provider.EncryptParams{Algorithm: cbc, Value: v.ct[:n], IV: v.iv})
				if err != nil || !bytes.Equal(pt, v.msg) {
					t.Errorf("tc%d: %s Decrypt = %x, %v; want %x", v.id, cbc, pt, err, v.msg)
				}
			}
		case "invalid":
			c.invalid++
			// Bad padding → ErrDecrypt; a ciphertext of a length CBC never produces is
			// refused by shape (400 as well, before the token is used).
			if !decryptFailed(err) && !(len(v.ct)%16 != 0 || len(v.ct) == 0) {
				t.Errorf("tc%d %v: Decrypt = %x, %v; want exactly ErrDecrypt", v.id, v.flags, pt, err)
			}
			if err == nil {
				t.Errorf("tc%d %v: invalid ciphertext decrypted", v.id, v.flags)
			}
		default:
			c.acceptable++
		}
	}
	if raw == 0 {
		t.Errorf("no unpadded CBC case derived")
	}
	c.check(t, "aes_cbc_pkcs5_test", len(vs))
}

// runWrapVectors runs a Wycheproof key-wrap file through WrapKey/UnwrapKey with algs(bits).
func runWrapVectors(t *testing.T, file string, algs func(bits int) []string) {
	p := newToken(t)
	ctx := context.Background()
	vs := loadAESVectors(t, file)
	vk := &vectorKeys{t: t, p: p, keys: map[string]*aesKey{}}
	var c tally
	for _, v := range vs {
		k := vk.get(v.key)
		for _, alg := range algs(v.keyBits) {
			pt, uerr := k.UnwrapKey(ctx, provider.EncryptParams{Algorithm: alg, Value: v.ct})
			ct, werr := k.WrapKey(ctx, provider.EncryptParams{Algorithm: alg, Value: v.msg})
			switch v.result {
			case "valid":
				if uerr != nil || !bytes.Equal(pt, v.msg) {
					t.Errorf("%s tc%d %v: UnwrapKey = %x, %v; want %x", alg, v.id, v.flags, pt, uerr, v.msg)
				}
				if len(v.msg)%8 != 0 && !p.kwp && alg == provider.AlgCKMAESKeyWrapPad {
					// A token whose KWP wrap is not RFC 5649 refuses (probeKWP).
					if !errors.Is(werr, provider.ErrUnsupported) {
						t.Errorf("%s tc%d: WrapKey(%d bytes) on a token failing probeKWP = %v; want ErrUnsupported", alg, v.id, len(v.msg), werr)
					}
				} else if werr != nil || !bytes.Equal(ct.Value, v.ct) {
					t.Errorf("%s tc%d %v: WrapKey = %x, %v; want %x", alg, v.id, v.flags, ct.Value, werr, v.ct)
				}
			case "invalid":
				if uerr == nil {
					t.Errorf("%s tc%d %v: invalid ciphertext unwrapped to %x", alg, v.id, v.flags, pt)
				} else if !decryptFailed(uerr) && !errors.Is(uerr, provider.ErrInvalidParameter) {
					t.Errorf("%s tc%d %v: UnwrapKey = %v; want ErrDecrypt (or ErrInvalidParameter for a length)", alg, v.id, v.flags, uerr)
				}
				if werr == nil && bytes.Equal(ct.Value, v.ct) {
					t.Errorf("%s tc%d %v: WrapKey produced the invalid ciphertext", alg, v.id, v.flags)
				}
			default:
				if uerr == nil && !bytes.Equal(pt, v.msg) {
					t.Errorf("%s tc%d %v: acceptable unwrap gave the wrong plaintext", alg, v.id, v.flags)
				}
			}
		}
		switch v.result {
		case "valid":
			c.valid++
		case "invalid":
			c.invalid++
		default:
			c.acceptable++
		}
	}
	c.check(t, file, len(vs))
}

func TestWycheproofAESKW(t *testing.T) {
	runWrapVectors(t, "aes_wrap_test.json", func(bits int) []string {
		_, _, _, kw := aesAlgsFor(bits)
		return []string{kw, provider.AlgCKMAESKeyWrap}
	})
}

func TestWycheproofAESKWP(t *testing.T) {
	runWrapVectors(t, "aes_kwp_test.json", func(int) []string { return []string{provider.AlgCKMAESKeyWrapPad} })
}
