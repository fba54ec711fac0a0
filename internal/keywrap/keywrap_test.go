package keywrap

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// vectorFile is the part of a Wycheproof KeywrapTest file these tests read.
type vectorFile struct {
	NumberOfTests int `json:"numberOfTests"`
	TestGroups    []struct {
		KeySize int `json:"keySize"`
		Tests   []struct {
			TcID   int      `json:"tcId"`
			Flags  []string `json:"flags"`
			Key    string   `json:"key"`
			Msg    string   `json:"msg"`
			Ct     string   `json:"ct"`
			Result string   `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// runVectors checks wrap and unwrap against a Wycheproof file: a valid vector wraps to ct
// and unwraps to msg; an invalid one does not unwrap (ErrUnwrap), and its msg either does
// not wrap or wraps to something other than ct; an acceptable one may go either way.
func runVectors(t *testing.T, name string, wrap, unwrap func(kek, in []byte) ([]byte, error)) {
	b, err := os.ReadFile(filepath.Join("testdata", "wycheproof", name))
	if err != nil {
		t.Fatal(err)
	}
	var f vectorFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var valid, invalid, acceptable int
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			key, msg, ct := unhex(t, tc.Key), unhex(t, tc.Msg), unhex(t, tc.Ct)
			gotCT, werr := wrap(key, msg)
			gotPT, uerr := unwrap(key, ct)
			switch tc.Result {
			case "valid":
				valid++
				if werr != nil || !bytes.Equal(gotCT, ct) {
					t.Errorf("%s tc%d %v: wrap = %x, %v; want %x", name, tc.TcID, tc.Flags, gotCT, werr, ct)
				}
				if uerr != nil || !bytes.Equal(gotPT, msg) {
					t.Errorf("%s tc%d %v: unwrap = %x, %v; want %x", name, tc.TcID, tc.Flags, gotPT, uerr, msg)
				}
			case "invalid":
				invalid++
				if uerr != ErrUnwrap || gotPT != nil {
					t.Errorf("%s tc%d %v: unwrap = %x, %v; want exactly ErrUnwrap", name, tc.TcID, tc.Flags, gotPT, uerr)
				}
				if werr == nil && bytes.Equal(gotCT, ct) {
					t.Errorf("%s tc%d %v: wrap produced the invalid ciphertext", name, tc.TcID, tc.Flags)
				}
			default:
				acceptable++
				if uerr == nil && !bytes.Equal(gotPT, msg) {
					t.Errorf("%s tc%d %v: acceptable unwrap gave the wrong plaintext", name, tc.TcID, tc.Flags)
				}
			}
		}
	}
	if valid+invalid+acceptable != f.NumberOfTests || valid == 0 || invalid == 0 {
		t.Fatalf("%s: ran %d valid, %d invalid, %d acceptable of %d", name, valid, invalid, acceptable, f.NumberOfTests)
	}
	t.Logf("%s: %d valid, %d invalid, %d acceptable (8-byte keys under KW: refused, RFC 3394 needs two semiblocks)", name, valid, invalid, acceptable)
}

func TestWycheproofKW(t *testing.T) {
	runVectors(t, "aes_wrap_test.json", Wrap, Unwrap)
}

func TestWycheproofKWP(t *testing.T) {
	runVectors(t, "aes_kwp_test.json", WrapPad, UnwrapPad)
}

// TestRFCVectors: RFC 3394 §4.6 and RFC 5649 §6.
func TestRFCVectors(t *testing.T) {
	kek := unhex(t, "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
	ct, err := Wrap(kek, unhex(t, "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F"))
	if want := unhex(t, "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"); err != nil || !bytes.Equal(ct, want) {
		t.Errorf("RFC 3394 4.6: %x, %v", ct, err)
	}
	kek = unhex(t, "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8")
	for msg, want := range map[string]string{
		"c37b7e6492584340bed12207808941155068f738": "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a",
		"466f7250617369": "afbeb0f07dfbf5419200f2ccb50bb24f",
	} {
		ct, err := WrapPad(kek, unhex(t, msg))
		if err != nil || !bytes.Equal(ct, unhex(t, want)) {
			t.Errorf("RFC 5649 6 (%s): %x, %v; want %s", msg, ct, err, want)
		}
		pt, err := UnwrapPad(kek, ct)
		if err != nil || hex.EncodeToString(pt) != msg {
			t.Errorf("RFC 5649 6 unwrap: %x, %v", pt, err)
		}
	}
}

// TestKWPPaddingChecks builds wrapped blobs with a bad length indicator or non-zero padding
// under a known key (by wrapping a crafted AIV with the raw W function) and checks each is
// refused.
func TestKWPPaddingChecks(t *testing.T) {
	kek := make([]byte, 16)
	b, _ := newBlock(kek)
	build := func(mli uint32, prefix [4]byte, padded []byte) []byte {
		var aiv [8]byte
		copy(aiv[:4], prefix[:])
		aiv[4], aiv[5], aiv[6], aiv[7] = byte(mli>>24), byte(mli>>16), byte(mli>>8), byte(mli)
		return wrapW(b, aiv, padded)
	}
	good := build(9, aivPrefix, append([]byte("123456789"), 0, 0, 0, 0, 0, 0, 0))
	if pt, err := UnwrapPad(kek, good); err != nil || string(pt) != "123456789" {
		t.Fatalf("UnwrapPad(good) = %q, %v", pt, err)
	}
	bad := map[string][]byte{
		"mli-0":        build(0, aivPrefix, make([]byte, 16)),
		"mli-8":        build(8, aivPrefix, make([]byte, 16)),
		"mli-17":       build(17, aivPrefix, make([]byte, 16)),
		"mli-huge":     build(1<<31+9, aivPrefix, append([]byte("123456789"), 0, 0, 0, 0, 0, 0, 0)),
		"mli-2^25+9":   build(1<<25+9, aivPrefix, append([]byte("123456789"), 0, 0, 0, 0, 0, 0, 0)),
		"pad-nonzero":  build(9, aivPrefix, append([]byte("123456789"), 0, 0, 0, 0, 0, 0, 1)),
		"pad-first":    build(9, aivPrefix, append([]byte("123456789"), 1, 0, 0, 0, 0, 0, 0)),
		"prefix":       build(9, [4]byte{0xa6, 0x59, 0x59, 0xa7}, append([]byte("123456789"), 0, 0, 0, 0, 0, 0, 0)),
		"kw-iv":        build(0xa6a6a6a6, [4]byte{0xa6, 0xa6, 0xa6, 0xa6}, make([]byte, 16)),
		"short":        good[:8],
		"not-multiple": good[:23],
		"empty":        nil,
	}
	for name, ct := range bad {
		if pt, err := UnwrapPad(kek, ct); err != ErrUnwrap || pt != nil {
			t.Errorf("UnwrapPad(%s) = %x, %v; want exactly ErrUnwrap", name, pt, err)
		}
	}
	if _, err := Wrap(make([]byte, 15), make([]byte, 16)); !errors.Is(err, ErrKEK) {
		t.Errorf("Wrap(15-byte KEK) = %v; want ErrKEK", err)
	}
	if _, err := UnwrapPad(make([]byte, 33), good); !errors.Is(err, ErrKEK) {
		t.Errorf("UnwrapPad(33-byte KEK) = %v; want ErrKEK", err)
	}
	for _, n := range []int{0, 8, 15, 17} {
		if _, err := Wrap(kek, make([]byte, n)); !errors.Is(err, ErrWrapInput) {
			t.Errorf("Wrap(%d bytes) = %v; want ErrWrapInput", n, err)
		}
	}
	if _, err := WrapPad(kek, nil); !errors.Is(err, ErrWrapInput) {
		t.Errorf("WrapPad(empty) = %v; want ErrWrapInput", err)
	}
}
