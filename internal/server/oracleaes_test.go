package server

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/coffer-kms/coffer/internal/byok"
	"github.com/coffer-kms/coffer/internal/keywrap"
	"github.com/coffer-kms/coffer/internal/provider/malformed"
)

// aesVec is one Wycheproof AES vector (aes_cbc_pkcs5_test, aes_wrap_test, aes_kwp_test).
type aesVec struct {
	flags            string
	result           string
	key, iv, msg, ct []byte
}

func loadAESVecs(t *testing.T, file string) []aesVec {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "keywrap", "testdata", "wycheproof", file))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		TestGroups []struct {
			Tests []struct {
				Flags            []string
				Key, IV, Msg, Ct string
				Result           string
			}
		}
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	var out []aesVec
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			v := aesVec{flags: strings.Join(tc.Flags, "+"), result: tc.Result}
			for _, p := range []struct {
				dst *[]byte
				s   string
			}{{&v.key, tc.Key}, {&v.iv, tc.IV}, {&v.msg, tc.Msg}, {&v.ct, tc.Ct}} {
				if *p.dst, err = hex.DecodeString(p.s); err != nil {
					t.Fatal(err)
				}
			}
			out = append(out, v)
		}
	}
	return out
}

// hsmAESImport brings raw AES keys into the token as oct-HSM through BYOK.
func hsmAESImport(ctx context.Context, kc *azkeys.Client, kek *rsa.PublicKey, kid string) func(t *testing.T, name string, key []byte) {
	return func(t *testing.T, name string, key []byte) {
		t.Helper()
		blob, err := byok.Build(kek, kid, "CKM_RSA_AES_KEY_WRAP", key, "oracle test")
		if err != nil {
			t.Fatal(err)
		}
		if err := importKeyHSM(ctx, kc, azkeys.KeyTypeOctHSM, name, blob); err != nil {
			t.Fatalf("BYOK import %s (AES-%d): %v", name, 8*len(key), err)
		}
	}
}

// aesRef is the local reference of a mode: the plaintext and whether ct is valid, and
// whether its length is one the mode produces at all (shaped).
type aesRef func(key, iv, ct []byte) (pt []byte, ok, shaped bool)

func cbcPadRef(key, iv, ct []byte) ([]byte, bool, bool) {
	if len(ct) == 0 || len(ct)%16 != 0 {
		return nil, false, false
	}
	b, _ := aes.NewCipher(key)
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(b, iv).CryptBlocks(pt, ct)
	pad := int(pt[len(pt)-1])
	if pad == 0 || pad > 16 {
		return nil, false, true
	}
	for _, x := range pt[len(pt)-pad:] {
		if int(x) != pad {
			return nil, false, true
		}
	}
	return pt[:len(pt)-pad], true, true
}

func kwRef(key, _, ct []byte) ([]byte, bool, bool) {
	if len(ct) < 24 || len(ct)%8 != 0 {
		return nil, false, false
	}
	pt, err := keywrap.Unwrap(key, ct)
	return pt, err == nil, true
}

func kwpRef(key, _, ct []byte) ([]byte, bool, bool) {
	if len(ct) < 16 || len(ct)%8 != 0 {
		return nil, false, false
	}
	pt, err := keywrap.UnwrapPad(key, ct)
	return pt, err == nil, true
}

// aesCase is one ciphertext (and CBC iv) with its class.
type aesCase struct {
	class      string
	ct, iv     []byte
	wycheproof string
}

// aesMode is one algorithm family of the oct-HSM oracle run.
type aesMode struct {
	family string // CBCPAD, KW, KWP
	op     string
	algs   func(bits int) []string
	ref    aesRef
	file   string
	synth  func(t *testing.T, key, other []byte) []aesCase
}

var aesModes = []aesMode{
	{"CBCPAD", "decrypt", func(bits int) []string { return []string{fmt.Sprintf("A%dCBCPAD", bits)} }, cbcPadRef, "aes_cbc_pkcs5_test.json", syntheticCBC},
	{"KW", "unwrapkey", func(bits int) []string { return []string{fmt.Sprintf("A%dKW", bits), "CKM_AES_KEY_WRAP"} }, kwRef, "aes_wrap_test.json", syntheticKW},
	{"KWP", "unwrapkey", func(int) []string { return []string{"CKM_AES_KEY_WRAP_PAD"} }, kwpRef, "aes_kwp_test.json", syntheticKWP},
}

// runAESOracle imports each distinct Wycheproof key (and one fresh key per size) as
// oct-HSM, runs the vectors and the synthetic classes, and checks every answer against
// the local reference.
func runAESOracle(t *testing.T, c *oracleClient, o *oracle, imp func(t *testing.T, name string, key []byte)) {
	names := map[string]string{}
	keyName := func(key []byte) string {
		if n, ok := names[string(key)]; ok {
			return n
		}
		n := fmt.Sprintf("wpa-%d", len(names))
		imp(t, n, key)
		names[string(key)] = n
		return n
	}
	for _, m := range aesModes {
		var cases []struct {
			key []byte
			aesCase
		}
		for _, v := range loadAESVecs(t, m.file) {
			cases = append(cases, struct {
				key []byte
				aesCase
			}{v.key, aesCase{class: "wycheproof:" + v.flags, ct: v.ct, iv: v.iv, wycheproof: v.result}})
		}
		for _, bits := range []int{128, 192, 256} {
			key, other := randomBytes(bits/8), randomBytes(bits/8)
			for _, cs := range m.synth(t, key, other) {
				cases = append(cases, struct {
					key []byte
					aesCase
				}{key, cs})
			}
		}
		for _, cs := range cases {
			want, good, shaped := m.ref(cs.key, cs.iv, cs.ct)
			if (cs.wycheproof == "valid" && !good) || (cs.wycheproof == "invalid" && good) {
				t.Fatalf("%s %s: the local reference says %v; Wycheproof says %s", m.file, cs.class, good, cs.wycheproof)
			}
			name := keyName(cs.key)
			for _, alg := range m.algs(8 * len(cs.key)) {
				a := c.op(t, m.op, name, alg, cs.ct, cs.iv)
				if !shaped {
					o.shape(t, m.op, alg, "oct-HSM/"+m.family+"/"+cs.class, a)
					continue
				}
				o.expect(t, m.op, "oct-HSM/"+m.family+"/"+cs.class, a, want, good)
			}
		}
	}
	t.Logf("%d oct-HSM keys imported", len(names))
}

// cbcEncrypt is raw CBC over whole blocks.
func cbcEncrypt(key, iv, pt []byte) []byte {
	b, _ := aes.NewCipher(key)
	ct := make([]byte, len(pt))
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(ct, pt)
	return ct
}

// pkcs7 pads msg to whole blocks.
func pkcs7(msg []byte) []byte {
	pad := 16 - len(msg)%16
	out := append([]byte(nil), msg...)
	for range pad {
		out = append(out, byte(pad))
	}
	return out
}

func syntheticCBC(t *testing.T, key, other []byte) []aesCase {
	var out []aesCase
	add := func(class string, ct, iv []byte) { out = append(out, aesCase{class: class, ct: ct, iv: iv}) }
	iv := randomBytes(16)
	for _, n := range []int{0, 1, 15, 16, 17, 33} {
		add("valid", cbcEncrypt(key, iv, pkcs7(randomBytes(n))), iv)
	}
	// Final blocks whose padding is wrong in each way a check can go wrong.
	for class, last := range map[string]func(b []byte){
		"pad:last-00":        func(b []byte) { b[15] = 0 },
		"pad:last-11":        func(b []byte) { b[15] = 17 },
		"pad:last-ff":        func(b []byte) { b[15] = 0xff },
		"pad:04-one-03":      func(b []byte) { copy(b[12:], []byte{4, 3, 4, 4}) },
		"pad:04-first-05":    func(b []byte) { copy(b[12:], []byte{5, 4, 4, 4}) },
		"pad:10-first-0f":    func(b []byte) { copy(b, pkcs7(nil)); b[0] = 0x0f },
		"pad:10-last-but-00": func(b []byte) { copy(b, pkcs7(nil)); b[14] = 0 },
		"pad:02-02(ok)":      func(b []byte) { b[14], b[15] = 2, 2 },
	} {
		pt := randomBytes(32)
		last(pt[16:])
		add(class, cbcEncrypt(key, iv, pt), iv)
	}
	// The padding-oracle attack's own queries: every value of the byte before the last
	// block's last byte, and of the iv's last byte before a single block.
	two := cbcEncrypt(key, iv, pkcs7(randomBytes(16)))
	one := cbcEncrypt(key, iv, pkcs7(randomBytes(15)))
	for v := range 256 {
		q := append([]byte(nil), two...)
		q[15] = byte(v)
		add("probe:previous-block-byte", q, iv)
		qiv := append([]byte(nil), iv...)
		qiv[15] = byte(v)
		add("probe:iv-byte", one, qiv)
	}
	for i := range 8 {
		add("random", randomBytes(16*(1+i%3)), randomBytes(16))
	}
	long := cbcEncrypt(key, iv, pkcs7(randomBytes(33)))
	add("length:one-block-less", long[:32], iv)
	add("length:one-block-more", append(append([]byte(nil), long...), randomBytes(16)...), iv)
	add("other-key", cbcEncrypt(other, iv, pkcs7(randomBytes(20))), iv)
	add("other-iv", one, randomBytes(16))
	for _, at := range []int{47, 40, 31, 16, 0} {
		f := append([]byte(nil), long...)
		f[at] ^= 0x20
		add("bitflip", f, iv)
	}
	for _, n := range []int{1, 15, 17, 31, 47} {
		add(fmt.Sprintf("length:%d", n), randomBytes(n), iv)
	}
	return out
}

// wrapCases returns the classes KW and KWP share — valid wraps of each length in lens, a
// flipped bit in each block, random values, one block less or more, another key's wrap, the
// lengths in shapes — and the mode's own classes in extra.
func wrapCases(t *testing.T, wrap func(kek, p []byte) ([]byte, error), key, other []byte, lens, shapes []int, extra map[string][]byte) []aesCase {
	var out []aesCase
	add := func(class string, ct []byte) { out = append(out, aesCase{class: class, ct: ct}) }
	w := func(k []byte, n int) []byte {
		ct, err := wrap(k, randomBytes(n))
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	for _, n := range lens {
		add("valid", w(key, n))
	}
	for class, ct := range extra {
		add(class, ct)
	}
	valid := w(key, 32)
	for i := 0; i < len(valid); i += 8 {
		f := append([]byte(nil), valid...)
		f[i+int(randomBytes(1)[0])%8] ^= 1
		add(fmt.Sprintf("integrity:flip-block-%d", i/8), f)
	}
	for i := range 8 {
		add("random", randomBytes(16+8*(i%4)))
	}
	add("length:one-block-less", valid[:len(valid)-8])
	add("length:one-block-more", append(append([]byte(nil), valid...), randomBytes(8)...))
	add("other-key", w(other, 32))
	for _, n := range shapes {
		add(fmt.Sprintf("length:%d", n), randomBytes(n))
	}
	return out
}

func syntheticKW(t *testing.T, key, other []byte) []aesCase {
	kwp, _ := keywrap.WrapPad(key, randomBytes(24))
	return wrapCases(t, keywrap.Wrap, key, other, []int{16, 24, 32}, []int{8, 16, 20, 23, 25, 39}, map[string][]byte{
		"integrity:iv-a7":      malformed.KeyWrap(key, [8]byte{0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa7}, randomBytes(32)),
		"integrity:iv-zero":    malformed.KeyWrap(key, [8]byte{}, randomBytes(32)),
		"integrity:kwp-output": kwp,
	})
}

// kwpAIV is RFC 5649's alternative initial value with prefix and message length mli.
func kwpAIV(prefix uint32, mli uint32) [8]byte {
	var a [8]byte
	binary.BigEndian.PutUint32(a[:4], prefix)
	binary.BigEndian.PutUint32(a[4:], mli)
	return a
}

func syntheticKWP(t *testing.T, key, other []byte) []aesCase {
	const prefix = 0xa65959a6
	padded := func(n, mli int, dirty bool) []byte {
		p := make([]byte, n)
		copy(p, randomBytes(mli))
		if dirty {
			p[n-1] = 0x80
		}
		return p
	}
	kw, _ := keywrap.Wrap(key, randomBytes(24))
	return wrapCases(t, keywrap.WrapPad, key, other, []int{1, 7, 8, 9, 16, 17, 32}, []int{8, 12, 15, 17, 23}, map[string][]byte{
		"integrity:kw-output":           kw,
		"integrity:aiv-prefix":          malformed.KeyWrap(key, kwpAIV(prefix^1, 20), padded(24, 20, false)),
		"integrity:kw-iv":               malformed.KeyWrap(key, kwpAIV(0xa6a6a6a6, 0xa6a6a6a6), padded(24, 24, false)),
		"integrity:mli-too-large":       malformed.KeyWrap(key, kwpAIV(prefix, 25), padded(24, 24, false)),
		"integrity:mli-too-small":       malformed.KeyWrap(key, kwpAIV(prefix, 16), padded(24, 16, false)),
		"integrity:mli-zero":            malformed.KeyWrap(key, kwpAIV(prefix, 0), padded(24, 0, false)),
		"integrity:mli-2^31":            malformed.KeyWrap(key, kwpAIV(prefix, 1<<31|20), padded(24, 20, false)),
		"integrity:nonzero-padding":     malformed.KeyWrap(key, kwpAIV(prefix, 20), padded(24, 20, true)),
		"integrity:ok(mli-20)":          malformed.KeyWrap(key, kwpAIV(prefix, 20), padded(24, 20, false)),
		"integrity:1-block-aiv-prefix":  malformed.KeyWrap(key, kwpAIV(prefix^0x100, 5), padded(8, 5, false)),
		"integrity:1-block-mli-9":       malformed.KeyWrap(key, kwpAIV(prefix, 9), padded(8, 8, false)),
		"integrity:1-block-mli-0":       malformed.KeyWrap(key, kwpAIV(prefix, 0), padded(8, 0, false)),
		"integrity:1-block-nonzero-pad": malformed.KeyWrap(key, kwpAIV(prefix, 5), padded(8, 5, true)),
		"integrity:1-block-ok(mli-5)":   malformed.KeyWrap(key, kwpAIV(prefix, 5), padded(8, 5, false)),
		"integrity:2-block-as-1-block":  malformed.KeyWrap(key, kwpAIV(prefix, 5), padded(16, 5, false))[:16],
	})
}
