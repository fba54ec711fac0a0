package azsd

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
)

// Shamir secret sharing as Azure's security domain does it: each byte of the secret is the
// constant term of its own random polynomial of degree required-1 over the prime field
// GF(257), and share x (1 … N) holds the polynomial values at x. The field is 257 so that
// every byte is an element; values are 0 … 256, nine bits.
//
// A share's plaintext is one 16-bit word per secret byte, little endian (the Azure CLI reads
// them in its machine's order, little endian on every platform it runs on), the word being
// x << 9 | value: seven bits of x, nine of value.
//
// Arithmetic is constant time: reduction modulo 257 uses 256 ≡ -1 without branches, and
// inversion (only of values made from x-coordinates, which are public) is exponentiation to
// 255. Validation branches only on lengths and x-coordinates.

const (
	prime     = 257
	maxShareX = 126 // x must fit the word's seven bits (the Azure CLI's limit too)
)

// reduce returns x mod 257 for 0 ≤ x ≤ 65792 (256·257), without branches.
func reduce(x uint32) uint32 {
	t := int32(x&0xff) - int32(x>>8) // x = 256·h + l ≡ l - h
	t += (t >> 31) & prime           // -256 … 255 → 0 … 256
	return uint32(t)
}

func gfMul(a, b uint32) uint32 { return reduce(a * b) }
func gfAdd(a, b uint32) uint32 { return reduce(a + b) }
func gfSub(a, b uint32) uint32 { return reduce(a + prime - b) }

// gfInv is a^255 = a^-1 for a ≠ 0 (Fermat).
func gfInv(a uint32) uint32 {
	r := a
	for range 7 {
		r = gfMul(gfMul(r, r), a)
	}
	return r
}

// randomElement is a uniform element of GF(257): 16 random bits, 65535 (the one value past
// 255·257) drawn again.
func randomElement(r io.Reader) (uint32, error) {
	var b [2]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, err
		}
		if v := uint32(binary.LittleEndian.Uint16(b[:])); v < 255*prime {
			return v % prime, nil
		}
	}
}

// splitShares splits secret into n shares, any required of which rebuild it. Every
// non-constant coefficient is uniform in GF(257), zero included.
func splitShares(secret []byte, n, required int) ([][]byte, error) {
	if required < 2 || n < required || n > maxShareX || len(secret) == 0 {
		return nil, errors.New("azsd: split needs 2 ≤ required ≤ shares ≤ 126 and a secret")
	}
	shares := make([][]byte, n)
	for i := range shares {
		shares[i] = make([]byte, 2*len(secret))
	}
	coef := make([]uint32, required)
	defer clear(coef)
	for j, s := range secret {
		coef[0] = uint32(s)
		for k := 1; k < required; k++ {
			c, err := randomElement(rand.Reader)
			if err != nil {
				return nil, err
			}
			coef[k] = c
		}
		for i := range shares {
			x := uint32(i + 1)
			v := coef[required-1] // Horner
			for k := required - 2; k >= 0; k-- {
				v = gfAdd(gfMul(v, x), coef[k])
			}
			binary.LittleEndian.PutUint16(shares[i][2*j:], uint16(x<<9|v))
		}
	}
	return shares, nil
}

var errShares = errors.New("azsd: the shares are malformed, repeated or of different secrets")

// combineShares rebuilds the secret from shares (at least two, distinct x, same length) by
// Lagrange interpolation at 0. Shares of different splits give a wrong secret, or an error
// when a rebuilt value is 256 (not a byte); the caller authenticates what it rebuilds.
func combineShares(shares [][]byte) ([]byte, error) {
	if len(shares) < 2 || len(shares[0]) == 0 || len(shares[0])%2 != 0 {
		return nil, errShares
	}
	xs := make([]uint32, len(shares))
	for i, s := range shares {
		if len(s) != len(shares[0]) {
			return nil, errShares
		}
		xs[i] = uint32(binary.LittleEndian.Uint16(s)) >> 9
		for w := 0; w < len(s); w += 2 { // every word of a share has the share's x
			if uint32(binary.LittleEndian.Uint16(s[w:]))>>9 != xs[i] {
				return nil, errShares
			}
		}
		if xs[i] == 0 || xs[i] > maxShareX {
			return nil, errShares
		}
		for k := range i {
			if xs[k] == xs[i] {
				return nil, errShares
			}
		}
	}
	// Lagrange basis at 0: l_i = Π_{j≠i} x_j / (x_j - x_i); public values.
	l := make([]uint32, len(shares))
	for i := range shares {
		num, den := uint32(1), uint32(1)
		for j := range shares {
			if j != i {
				num, den = gfMul(num, xs[j]), gfMul(den, gfSub(xs[j], xs[i]))
			}
		}
		l[i] = gfMul(num, gfInv(den))
	}
	out := make([]byte, len(shares[0])/2)
	var bad uint32
	for w := range out {
		var v uint32
		for i, s := range shares {
			v = gfAdd(v, gfMul(l[i], reduce(uint32(binary.LittleEndian.Uint16(s[2*w:]))&0x1ff)))
		}
		bad |= v >> 8
		out[w] = byte(v)
	}
	if bad != 0 {
		clear(out)
		return nil, errShares
	}
	return out, nil
}
