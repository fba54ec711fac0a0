package soft

import (
	"bytes"
	"encoding/asn1"
	"math/big"
	"testing"
)

// TestRawSignature: DER (r, s) → r ‖ s at the curve's size, for short integers (leading
// zero bytes dropped by DER), full-width ones (a 0x00 sign byte in DER), and malformed input.
func TestRawSignature(t *testing.T) {
	der := func(r, s *big.Int) []byte {
		b, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	high := new(big.Int).SetBytes(bytes.Repeat([]byte{0xff}, 32))
	for _, c := range []struct {
		r, s *big.Int
	}{{big.NewInt(1), high}, {high, big.NewInt(0x1234)}, {new(big.Int).Lsh(big.NewInt(1), 200), big.NewInt(7)}} {
		got, err := rawSignature(der(c.r, c.s), 32)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]byte, 64)
		c.r.FillBytes(want[:32])
		c.s.FillBytes(want[32:])
		if !bytes.Equal(got, want) {
			t.Errorf("rawSignature(%x, %x) = %x; want %x", c.r, c.s, got, want)
		}
	}
	tooBig := new(big.Int).Lsh(big.NewInt(1), 256)
	good := der(big.NewInt(1), big.NewInt(2))
	for name, bad := range map[string][]byte{
		"empty":        nil,
		"r too long":   der(tooBig, big.NewInt(1)),
		"zero r":       der(big.NewInt(0), big.NewInt(1)),
		"trailing":     append(append([]byte(nil), good...), 0),
		"truncated":    good[:len(good)-1],
		"not sequence": {0x02, 0x01, 0x01},
	} {
		if _, err := rawSignature(bad, 32); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
