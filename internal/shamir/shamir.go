package shamir

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
)

// ErrInvalidParameters is returned by Split for an empty secret or a share count and threshold
// outside 2 <= threshold <= parts <= 255 (other than the single-share case parts = threshold = 1).
var ErrInvalidParameters = errors.New("invalid secret sharing parameters")

// ErrTooFewShares is returned by Combine when it is given no shares.
var ErrTooFewShares = errors.New("too few shares to reconstruct the secret")

// ErrInvalidShare is returned by Combine for a share that Split cannot have produced: shorter
// than two bytes, a length different from the other shares, or an x-coordinate of zero.
var ErrInvalidShare = errors.New("invalid share")

// ErrDuplicateShare is returned by Combine when two shares have the same x-coordinate, which
// usually means the same share was entered twice.
var ErrDuplicateShare = errors.New("duplicate share: two shares have the same x-coordinate")

// maxShares is the number of distinct non-zero x-coordinates in GF(2^8).
const maxShares = 255

// Split splits secret into parts shares, any threshold of which reconstruct it with Combine and
// any fewer of which reveal nothing about it. It requires a non-empty secret and
// 2 <= threshold <= parts <= 255, or parts = threshold = 1, the single share of a development
// setup, which is the secret itself followed by its x-coordinate.
//
// Each share is len(secret)+1 bytes: one y-value per secret byte, then the share's
// x-coordinate. The x-coordinates are distinct, non-zero and in random order. Randomness comes
// from crypto/rand.
func Split(secret []byte, parts, threshold int) ([][]byte, error) {
	return split(rand.Reader, secret, parts, threshold)
}

// split is Split with its randomness source as a parameter, so tests can make it fail.
func split(random io.Reader, secret []byte, parts, threshold int) ([][]byte, error) {
	switch {
	case len(secret) == 0:
		return nil, fmt.Errorf("%w: the secret is empty", ErrInvalidParameters)
	case parts == 1 && threshold == 1:
	case threshold < 2 || threshold > parts || parts > maxShares:
		return nil, fmt.Errorf("%w: need 2 <= threshold (%d) <= parts (%d) <= %d, or one part with threshold 1",
			ErrInvalidParameters, threshold, parts, maxShares)
	}

	xs, err := randomXs(random, parts)
	if err != nil {
		return nil, err
	}
	// coeffs[i*degree+k] is the coefficient of x^(k+1) in the polynomial of secret byte i; the
	// constant term is the secret byte itself.
	degree := threshold - 1
	coeffs := make([]byte, len(secret)*degree)
	defer clear(coeffs)
	if _, err := io.ReadFull(random, coeffs); err != nil {
		return nil, fmt.Errorf("read random coefficients: %w", err)
	}

	shares := make([][]byte, parts)
	for s, x := range xs {
		share := make([]byte, len(secret)+1)
		for i, c0 := range secret {
			// Horner's rule from the highest coefficient down to the secret byte.
			var y byte
			for k := degree - 1; k >= 0; k-- {
				y = mul(y, x) ^ coeffs[i*degree+k]
			}
			share[i] = mul(y, x) ^ c0
		}
		share[len(secret)] = x
		shares[s] = share
	}
	return shares, nil
}

// randomXs returns n distinct non-zero x-coordinates in random order: the first n entries of a
// Fisher-Yates shuffle of 1..255.
func randomXs(random io.Reader, n int) ([]byte, error) {
	var all [maxShares]byte
	for i := range all {
		all[i] = byte(i + 1)
	}
	for i := range n {
		j, err := uniform(random, maxShares-i)
		if err != nil {
			return nil, fmt.Errorf("read random x-coordinates: %w", err)
		}
		all[i], all[i+j] = all[i+j], all[i]
	}
	return append([]byte(nil), all[:n]...), nil
}

// uniform returns an integer uniformly distributed in [0, n), 1 <= n <= 256, by rejection
// sampling single random bytes.
func uniform(random io.Reader, n int) (int, error) {
	limit := 256 - 256%n
	var b [1]byte
	for {
		if _, err := io.ReadFull(random, b[:]); err != nil {
			return 0, err
		}
		if int(b[0]) < limit {
			return int(b[0]) % n, nil
		}
	}
}

// Combine reconstructs the secret from shares made by one Split, by Lagrange interpolation at
// x = 0. The shares may come in any order. Given a threshold of them or more it returns the
// secret; given fewer, or a share that is damaged or from another Split, it returns a wrong
// value without error, since shares carry no authentication: the caller must check the result
// (see the package documentation). A single share is taken to be the single share of a
// parts = threshold = 1 split, and its y-values are returned.
//
// Combine returns ErrTooFewShares for no shares, ErrInvalidShare for shares shorter than two
// bytes, of different lengths or with x-coordinate zero, and ErrDuplicateShare for two shares
// with the same x-coordinate. It does not modify shares; the result is a new slice.
func Combine(shares [][]byte) ([]byte, error) {
	if len(shares) == 0 {
		return nil, ErrTooFewShares
	}
	n := len(shares[0])
	if n < 2 {
		return nil, fmt.Errorf("%w: share 1 is %d bytes; a share is at least 2", ErrInvalidShare, n)
	}
	xs := make([]byte, len(shares))
	for i, s := range shares {
		if len(s) != n {
			return nil, fmt.Errorf("%w: share %d is %d bytes but share 1 is %d: they are not from the same split",
				ErrInvalidShare, i+1, len(s), n)
		}
		x := s[n-1]
		if x == 0 {
			return nil, fmt.Errorf("%w: share %d has x-coordinate 0", ErrInvalidShare, i+1)
		}
		for j, prev := range xs[:i] {
			if prev == x {
				return nil, fmt.Errorf("%w (shares %d and %d)", ErrDuplicateShare, j+1, i+1)
			}
		}
		xs[i] = x
	}

	secret := make([]byte, n-1)
	if len(shares) == 1 {
		copy(secret, shares[0])
		return secret, nil
	}
	basis := lagrangeAtZero(xs)
	for i, s := range shares {
		b := basis[i]
		for k := range secret {
			secret[k] ^= mul(s[k], b)
		}
	}
	return secret, nil
}

// lagrangeAtZero returns lᵢ(0) = ∏_{j≠i} xⱼ / (xⱼ - xᵢ) for each of the distinct, non-zero xs,
// so that f(0) = Σ yᵢ·lᵢ(0) for any polynomial f of degree below len(xs) with f(xᵢ) = yᵢ.
func lagrangeAtZero(xs []byte) []byte {
	basis := make([]byte, len(xs))
	for i, xi := range xs {
		num, den := byte(1), byte(1)
		for j, xj := range xs {
			if j == i {
				continue
			}
			num = mul(num, xj)
			den = mul(den, xj^xi)
		}
		basis[i] = mul(num, inv(den))
	}
	return basis
}
