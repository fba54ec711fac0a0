package shamir

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
)

const base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

func TestEncodeShareVectors(t *testing.T) {
	// Computed independently: base64(raw ‖ SHA-256("coffer-shamir-share-v1" ‖ raw)[:4]).
	tests := []struct {
		name string
		raw  []byte
		want string
	}{
		{"ok/two-bytes", []byte{0x29, 0x01}, "KQHCaRq6"},
		{"ok/would-pad-twice", []byte{0x2a, 0x2b, 0x07}, "KisHMeO/SA"},
		{"ok/would-pad-once", []byte("coffer\xff"), "Y29mZmVy/+ckKi8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EncodeShare(tt.raw); got != tt.want {
				t.Errorf("EncodeShare(%x) = %q; want %q", tt.raw, got, tt.want)
			}
			if got, err := DecodeShare(tt.want); err != nil || !bytes.Equal(got, tt.raw) {
				t.Errorf("DecodeShare(%q) = %x, %v; want %x", tt.want, got, err, tt.raw)
			}
		})
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, n := range []int{1, 2, 3, 16, 32, 64} {
		shares, err := Split(randomSecret(t, n), 5, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range shares {
			s := EncodeShare(raw)
			if strings.ContainsAny(s, "=\n ") {
				t.Errorf("EncodeShare(%d-byte share) = %q; want base64 without padding or spaces", len(raw), s)
			}
			got, err := DecodeShare(s)
			if err != nil || !bytes.Equal(got, raw) {
				t.Errorf("DecodeShare(EncodeShare(%x)) = %x, %v; want %x", raw, got, err, raw)
			}
		}
	}
}

func TestDecodeShareAcceptsWhitespaceAndPadding(t *testing.T) {
	raw := []byte("coffer\xff")
	enc := EncodeShare(raw) // "Y29mZmVy/+ckKi8"
	tests := []struct {
		name string
		in   string
	}{
		{"ok/as-issued", enc},
		{"ok/trailing-newline", enc + "\n"},
		{"ok/crlf", enc + "\r\n"},
		{"ok/surrounding-spaces", "  \t" + enc + "  "},
		{"ok/grouped", "Y29m ZmVy /+ck Ki8"},
		{"ok/wrapped", "Y29mZmVy\n/+ckKi8\n"},
		{"ok/std-padding", base64.StdEncoding.EncodeToString(append(bytes.Clone(raw), 0xe7, 0x24, 0x2a, 0x2f))},
		{"ok/padding-then-newline", enc + "=\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := DecodeShare(tt.in); err != nil || !bytes.Equal(got, raw) {
				t.Errorf("DecodeShare(%q) = %x, %v; want %x", tt.in, got, err, raw)
			}
		})
	}
}

func TestDecodeShareInvalid(t *testing.T) {
	good := EncodeShare([]byte{0x29, 0x98, 0x01})
	tests := []struct {
		name string
		in   string
	}{
		{"fail/empty", ""},
		{"fail/whitespace-only", " \n\t "},
		{"fail/padding-only", "=="},
		{"fail/not-base64", "not a share at all!"},
		{"fail/url-alphabet", strings.NewReplacer("+", "-", "/", "_").Replace(EncodeShare([]byte{0xfb, 0xff, 0xfe, 0x01}))},
		{"fail/padding-inside", good[:4] + "=" + good[4:]},
		{"fail/hex-of-raw", "299801"},
		{"fail/base64-without-checksum", base64.RawStdEncoding.EncodeToString([]byte{0x29, 0x98, 0x01})},
		{"fail/too-short-for-y-and-x", EncodeShare([]byte{0x01})},
		{"fail/nothing-but-checksum", EncodeShare(nil)},
		{"fail/zero-x", EncodeShare([]byte{0x29, 0x00})},
		{"fail/truncated", good[:len(good)-1]},
		{"fail/extra-char", good + "A"},
		{"fail/two-shares-glued", good + good},
		{"fail/other-domain", otherDomainShare([]byte{0x29, 0x98, 0x01})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeShare(tt.in)
			if !errors.Is(err, ErrCorruptShare) || got != nil {
				t.Errorf("DecodeShare(%q) = %x, %v; want ErrCorruptShare", tt.in, got, err)
			}
		})
	}
}

// otherDomainShare encodes raw with a checksum under a different domain, as a later format
// version would.
func otherDomainShare(raw []byte) string {
	var buf []byte
	buf = append(buf, raw...)
	buf = append(buf, 0x8b, 0x4e, 0x11, 0x00) // any 4 bytes but the v1 checksum of raw
	return base64.RawStdEncoding.EncodeToString(buf)
}

// fixedShare is a realistic share (32-byte secret) that the corruption tests change one
// character at a time. It is fixed, not random, so a 2^-32 checksum collision cannot make
// the tests flaky: they either always pass or always fail.
var fixedShare = append(bytes.Repeat([]byte{0x5a, 0xc3, 0x0f, 0x96}, 8), 0x2d)

func TestDecodeShareRejectsEverySingleCharChange(t *testing.T) {
	enc := EncodeShare(fixedShare)
	for i := range len(enc) {
		for _, c := range base64Alphabet {
			if byte(c) == enc[i] {
				continue
			}
			bad := enc[:i] + string(c) + enc[i+1:]
			if got, err := DecodeShare(bad); !errors.Is(err, ErrCorruptShare) {
				t.Errorf("DecodeShare(char %d changed %q -> %q) = %x, %v; want ErrCorruptShare", i, enc[i], c, got, err)
			}
		}
	}
}

func TestDecodeShareRejectsTranspositionsAndDeletions(t *testing.T) {
	enc := EncodeShare(fixedShare)
	for i := range len(enc) {
		deleted := enc[:i] + enc[i+1:]
		if _, err := DecodeShare(deleted); !errors.Is(err, ErrCorruptShare) {
			t.Errorf("DecodeShare(char %d deleted) = %v; want ErrCorruptShare", i, err)
		}
		doubled := enc[:i+1] + enc[i:]
		if _, err := DecodeShare(doubled); !errors.Is(err, ErrCorruptShare) {
			t.Errorf("DecodeShare(char %d doubled) = %v; want ErrCorruptShare", i, err)
		}
		if i+1 < len(enc) && enc[i] != enc[i+1] {
			swapped := enc[:i] + enc[i+1:i+2] + enc[i:i+1] + enc[i+2:]
			if _, err := DecodeShare(swapped); !errors.Is(err, ErrCorruptShare) {
				t.Errorf("DecodeShare(chars %d and %d swapped) = %v; want ErrCorruptShare", i, i+1, err)
			}
		}
	}
}

func TestDecodeShareErrorsOmitShare(t *testing.T) {
	enc := EncodeShare(fixedShare)
	bad := []string{
		"A" + enc[1:], // checksum mismatch (enc starts "Ws")
		enc[:10] + "!" + enc[11:],
		enc[:12],
		EncodeShare([]byte{0x5a, 0xc3, 0x0f, 0x00}),
	}
	for _, in := range bad {
		_, err := DecodeShare(in)
		if err == nil {
			t.Fatalf("DecodeShare(%q) = nil error; want ErrCorruptShare", in)
		}
		msg := err.Error()
		for _, leak := range []string{in[:8], enc[:8], fmt.Sprintf("%x", fixedShare[:4]), fmt.Sprint(fixedShare[:4])} {
			if strings.Contains(msg, leak) {
				t.Errorf("DecodeShare error %q contains share material %q", msg, leak)
			}
		}
	}
}

func FuzzDecodeShare(f *testing.F) {
	f.Add(EncodeShare(fixedShare))
	f.Add(EncodeShare([]byte{0x29, 0x01}))
	f.Add(" Y29m ZmVy\n/+ck Ki8= \n")
	f.Add("")
	f.Add("====")
	f.Add("KQHCaRq7")
	f.Add(EncodeShare([]byte{0x29, 0x00}))
	f.Fuzz(func(t *testing.T, s string) {
		raw, err := DecodeShare(s)
		if err != nil {
			if !errors.Is(err, ErrCorruptShare) || raw != nil {
				t.Fatalf("DecodeShare(%q) = %x, %v; want nil and ErrCorruptShare", s, raw, err)
			}
			return
		}
		if len(raw) < 2 || raw[len(raw)-1] == 0 {
			t.Fatalf("DecodeShare(%q) = %x; want at least one y-value and a non-zero x", s, raw)
		}
		again, err := DecodeShare(EncodeShare(raw))
		if err != nil || !bytes.Equal(again, raw) {
			t.Fatalf("DecodeShare(EncodeShare(%x)) = %x, %v; want %x", raw, again, err, raw)
		}
	})
}

func FuzzCombine(f *testing.F) {
	f.Add([]byte{0x29, 1, 0x2c, 2}, uint8(2))
	f.Add([]byte{0x98, 1, 0xd8, 2, 0x13, 3}, uint8(3))
	f.Add([]byte{0, 0}, uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, n uint8) {
		if n == 0 {
			return
		}
		size := len(data) / int(n)
		shares := make([][]byte, n)
		for i := range shares {
			shares[i] = data[i*size : (i+1)*size]
		}
		secret, err := Combine(shares)
		if err == nil && len(secret) != size-1 {
			t.Fatalf("Combine(%d shares of %d bytes) = %d bytes; want %d", n, size, len(secret), size-1)
		}
	})
}
