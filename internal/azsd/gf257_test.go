package azsd

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"testing"
)

func TestGF257Field(t *testing.T) {
	for a := uint32(1); a < prime; a++ {
		if got := gfMul(a, gfInv(a)); got != 1 {
			t.Fatalf("%d · %d⁻¹ = %d; want 1", a, a, got)
		}
	}
	for x := uint32(0); x <= 256*prime; x += 97 {
		if got := reduce(x); got != x%prime {
			t.Fatalf("reduce(%d) = %d; want %d", x, got, x%prime)
		}
	}
}

// TestSplitCombine: every quorum-sized subset of the shares rebuilds the secret, in any
// order; one share fewer does not; the words carry x in their top seven bits.
func TestSplitCombine(t *testing.T) {
	secret := make([]byte, 32)
	rand.Read(secret)
	secret[0], secret[1] = 0, 255
	const n, k = 5, 3
	shares, err := splitShares(secret, n, k)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range shares {
		if len(s) != 64 {
			t.Fatalf("share %d is %d bytes; want 64", i, len(s))
		}
		for w := 0; w < len(s); w += 2 {
			if x := binary.LittleEndian.Uint16(s[w:]) >> 9; int(x) != i+1 {
				t.Fatalf("share %d word %d has x = %d", i, w/2, x)
			}
		}
	}
	for a := range n {
		for b := range n {
			for c := range n {
				if a == b || b == c || a == c {
					continue
				}
				got, err := combineShares([][]byte{shares[a], shares[b], shares[c]})
				if err != nil || !bytes.Equal(got, secret) {
					t.Fatalf("combine(%d,%d,%d) = %x, %v; want the secret", a, b, c, got, err)
				}
			}
		}
	}
	if got, err := combineShares([][]byte{shares[0], shares[1]}); err == nil && bytes.Equal(got, secret) {
		t.Error("two shares of a 3-of-5 split rebuilt the secret")
	}
	for name, bad := range map[string][][]byte{
		"fail/repeated":  {shares[0], shares[0], shares[1]},
		"fail/one":       {shares[0]},
		"fail/lengths":   {shares[0], shares[1][:62], shares[2]},
		"fail/odd":       {shares[0][:63], shares[1][:63]},
		"fail/x-zero":    {make([]byte, 64), shares[1]},
		"fail/mixed-x":   {append(append([]byte{}, shares[0][:62]...), shares[1][62:]...), shares[2]},
		"fail/no-shares": nil,
	} {
		if _, err := combineShares(bad); err == nil {
			t.Errorf("%s: combine = nil error", name)
		}
	}
	if _, err := splitShares(secret, 3, 1); err == nil {
		t.Error("split with quorum 1 = nil error")
	}
	if _, err := splitShares(secret, 127, 2); err == nil {
		t.Error("split into 127 shares = nil error")
	}
}
