package keywrap

import (
	"bytes"
	"testing"
)

// FuzzKeyWrap: Wrap and WrapPad round-trip through Unwrap and UnwrapPad for any plaintext
// they take, and the unwrap functions, given arbitrary ciphertext (a BYOK blob's tail is the
// sender's to choose, key included), accept only what wrapping their output gives back
// byte for byte: both modes are deterministic.
func FuzzKeyWrap(f *testing.F) {
	kek := bytes.Repeat([]byte{0x42}, 32)
	for _, p := range [][]byte{nil, {1}, bytes.Repeat([]byte{7}, 16), bytes.Repeat([]byte{9}, 20)} {
		f.Add(p)
		if c, err := WrapPad(kek, p); err == nil {
			f.Add(c)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := Wrap(kek, b); err == nil {
			if p, err := Unwrap(kek, c); err != nil || !bytes.Equal(p, b) {
				t.Fatalf("Unwrap(Wrap(%x)) = %x, %v", b, p, err)
			}
		}
		if c, err := WrapPad(kek, b); err == nil {
			if p, err := UnwrapPad(kek, c); err != nil || !bytes.Equal(p, b) {
				t.Fatalf("UnwrapPad(WrapPad(%x)) = %x, %v", b, p, err)
			}
		}
		if p, err := Unwrap(kek, b); err == nil {
			if c, err := Wrap(kek, p); err != nil || !bytes.Equal(c, b) {
				t.Fatalf("Unwrap accepted %x, which Wrap does not make", b)
			}
		}
		if p, err := UnwrapPad(kek, b); err == nil {
			if c, err := WrapPad(kek, p); err != nil || !bytes.Equal(c, b) {
				t.Fatalf("UnwrapPad accepted %x, which WrapPad does not make", b)
			}
		}
	})
}
