// Package keywrap owns the AES key-wrap modes: RFC 3394 (AES Key Wrap, KW) and RFC 5649
// (AES Key Wrap with Padding, KWP), which Go's standard library lacks (SECURITY-NOTES F5).
// They are modes over a cipher.Block from crypto/aes, not new primitives, and are pinned by
// the Wycheproof aes_wrap and aes_kwp vectors. Coffer uses them where no token does the
// work: `coffer byok` building a BYOK transfer blob on the user's machine, and tests.
//
// Threat model: unwrap inputs are attacker-controlled. Every unwrap failure (length,
// integrity value, padding) is the single ErrUnwrap, and the integrity checks are done in
// constant time, so a caller learns nothing but "invalid".
//
// This package must not import net/http, storage or provider code.
package keywrap

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
)

// ErrUnwrap is the one error of every failed unwrap.
var ErrUnwrap = errors.New("keywrap: unwrap failed: the wrapped key is corrupt or was wrapped with another key")

// ErrWrapInput is returned by Wrap for a plaintext RFC 3394 cannot wrap and by both Wraps
// for an empty one.
var ErrWrapInput = errors.New("keywrap: KW wraps keys of a multiple of 8 bytes, at least 16 (use KWP for other lengths)")

// ErrKEK is returned for a key-encryption key that is not 16, 24 or 32 bytes.
var ErrKEK = errors.New("keywrap: the key-encryption key must be 16, 24 or 32 bytes")

// defaultIV is RFC 3394 §2.2.3.1's initial value; aivPrefix is RFC 5649 §3's.
var (
	defaultIV = [8]byte{0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6}
	aivPrefix = [4]byte{0xa6, 0x59, 0x59, 0xa6}
)

// maxLen bounds inputs (the 32-bit MLI of RFC 5649 bounds KWP anyway).
const maxLen = 1 << 24

func newBlock(kek []byte) (cipher.Block, error) {
	switch len(kek) {
	case 16, 24, 32:
	default:
		return nil, ErrKEK
	}
	return aes.NewCipher(kek)
}

// Wrap wraps plaintext (a multiple of 8 bytes, at least 16) with RFC 3394.
func Wrap(kek, plaintext []byte) ([]byte, error) {
	b, err := newBlock(kek)
	if err != nil {
		return nil, err
	}
	if len(plaintext) < 16 || len(plaintext)%8 != 0 || len(plaintext) > maxLen {
		return nil, ErrWrapInput
	}
	return wrapW(b, defaultIV, plaintext), nil
}

// Unwrap unwraps RFC 3394 output; every failure is ErrUnwrap.
func Unwrap(kek, ciphertext []byte) ([]byte, error) {
	b, err := newBlock(kek)
	if err != nil {
		return nil, err
	}
	if len(ciphertext) < 24 || len(ciphertext)%8 != 0 || len(ciphertext) > maxLen+8 {
		return nil, ErrUnwrap
	}
	a, p := unwrapW(b, ciphertext)
	if subtle.ConstantTimeCompare(a[:], defaultIV[:]) != 1 {
		clear(p)
		return nil, ErrUnwrap
	}
	return p, nil
}

// WrapPad wraps plaintext of any non-zero length with RFC 5649.
func WrapPad(kek, plaintext []byte) ([]byte, error) {
	b, err := newBlock(kek)
	if err != nil {
		return nil, err
	}
	if len(plaintext) == 0 || len(plaintext) > maxLen {
		return nil, ErrWrapInput
	}
	var aiv [8]byte
	copy(aiv[:4], aivPrefix[:])
	binary.BigEndian.PutUint32(aiv[4:], uint32(len(plaintext)))
	padded := make([]byte, (len(plaintext)+7)/8*8)
	copy(padded, plaintext)
	defer clear(padded)
	if len(padded) == 8 {
		// RFC 5649 §4.1: one semiblock is encrypted as a single AES block.
		out := make([]byte, 16)
		copy(out, aiv[:])
		copy(out[8:], padded)
		b.Encrypt(out, out)
		return out, nil
	}
	return wrapW(b, aiv, padded), nil
}

// UnwrapPad unwraps RFC 5649 output, checking the integrity prefix, the message length
// indicator and the zero padding in constant time; every failure is ErrUnwrap.
func UnwrapPad(kek, ciphertext []byte) ([]byte, error) {
	b, err := newBlock(kek)
	if err != nil {
		return nil, err
	}
	if len(ciphertext) < 16 || len(ciphertext)%8 != 0 || len(ciphertext) > maxLen+16 {
		return nil, ErrUnwrap
	}
	var a [8]byte
	var p []byte
	if len(ciphertext) == 16 {
		blk := make([]byte, 16)
		b.Decrypt(blk, ciphertext)
		copy(a[:], blk[:8])
		p = blk[8:]
	} else {
		a, p = unwrapW(b, ciphertext)
	}
	n := len(p)
	mli := int(binary.BigEndian.Uint32(a[4:]))
	ok := subtle.ConstantTimeCompare(a[:4], aivPrefix[:])
	// MLI < 2^25 (inputs are bounded by maxLen), so the int32 comparisons below are exact.
	ok &= subtle.ConstantTimeEq(int32(mli>>25), 0)
	// 8·(n/8 − 1) < MLI ≤ n, i.e. n − 8 < MLI ≤ n.
	ok &= subtle.ConstantTimeLessOrEq(n-7, mli) & subtle.ConstantTimeLessOrEq(mli, n)
	// Every byte at index ≥ MLI must be zero. Scan the last 8 bytes whatever MLI is.
	var nonzero byte
	for i := n - 8; i < n; i++ {
		inPad := byte(subtle.ConstantTimeLessOrEq(mli, i)) // 1 if i >= mli
		nonzero |= p[i] & -inPad
	}
	ok &= subtle.ConstantTimeByteEq(nonzero, 0)
	if ok != 1 {
		clear(p)
		return nil, ErrUnwrap
	}
	return p[:mli:mli], nil
}

// wrapW is RFC 3394 §2.2.1 (index-based) with initial value iv over n ≥ 2 semiblocks.
func wrapW(b cipher.Block, iv [8]byte, plaintext []byte) []byte {
	n := len(plaintext) / 8
	out := make([]byte, 8+len(plaintext))
	copy(out[8:], plaintext)
	var blk [16]byte
	copy(blk[:8], iv[:])
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			r := out[8*i : 8*i+8]
			copy(blk[8:], r)
			b.Encrypt(blk[:], blk[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(blk[:8], binary.BigEndian.Uint64(blk[:8])^t)
			copy(r, blk[8:])
		}
	}
	copy(out[:8], blk[:8])
	clear(blk[:])
	return out
}

// unwrapW is RFC 3394 §2.2.2 (index-based): it returns the recovered initial value and the
// plaintext semiblocks, for the caller to check.
func unwrapW(b cipher.Block, ciphertext []byte) ([8]byte, []byte) {
	n := len(ciphertext)/8 - 1
	p := make([]byte, 8*n)
	copy(p, ciphertext[8:])
	var blk [16]byte
	copy(blk[:8], ciphertext[:8])
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			r := p[8*(i-1) : 8*i]
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(blk[:8], binary.BigEndian.Uint64(blk[:8])^t)
			copy(blk[8:], r)
			b.Decrypt(blk[:], blk[:])
			copy(r, blk[8:])
		}
	}
	var a [8]byte
	copy(a[:], blk[:8])
	clear(blk[:])
	return a, p
}
