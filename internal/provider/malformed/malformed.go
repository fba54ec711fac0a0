// Package malformed builds ciphertexts whose decryption is exactly the padded block, or the
// key-wrap integrity value, a test asks for: the failure classes of padding and integrity
// oracles (SECURITY-NOTES C1–C3). The oracle tests over HTTPS and the dudect timing tool
// use it; no server code does.
//
// It imports only the standard library, and crypto/rand for randomness.
package malformed

import (
	"crypto/aes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"hash"
	"math/big"
)

// Textbook is em^e mod n as a modulus-sized big-endian value: the RSA ciphertext whose
// private-key operation yields exactly em (which must be shorter than the modulus).
func Textbook(pub *rsa.PublicKey, em []byte) []byte {
	m := new(big.Int).SetBytes(em)
	return new(big.Int).Exp(m, big.NewInt(int64(pub.E)), pub.N).FillBytes(make([]byte, pub.Size()))
}

// OAEPBlock is the EME-OAEP encoding (RFC 8017 §7.1.1) of msg under a k-byte modulus with
// hash h and an empty label, with mutate (if not nil) applied to the first byte Y and to
// DB = lHash ‖ PS ‖ 01 ‖ msg before masking. With Textbook it makes an OAEP ciphertext that
// fails in exactly the way mutate says.
func OAEPBlock(h hash.Hash, k int, msg []byte, mutate func(y *byte, db []byte)) []byte {
	hLen := h.Size()
	h.Reset()
	db := make([]byte, k-hLen-1)
	copy(db, h.Sum(nil))
	db[len(db)-len(msg)-1] = 1
	copy(db[len(db)-len(msg):], msg)
	var y byte
	if mutate != nil {
		mutate(&y, db)
	}
	seed := make([]byte, hLen)
	if _, err := rand.Read(seed); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	xorInto(db, mgf1(h, seed, len(db)))
	xorInto(seed, mgf1(h, db, hLen))
	return append(append([]byte{y}, seed...), db...)
}

// mgf1 is MGF1 with h (RFC 8017 §B.2.1).
func mgf1(h hash.Hash, seed []byte, n int) []byte {
	var out []byte
	var ctr [4]byte
	for i := uint32(0); len(out) < n; i++ {
		binary.BigEndian.PutUint32(ctr[:], i)
		h.Reset()
		h.Write(seed)
		h.Write(ctr[:])
		out = h.Sum(out)
	}
	return out[:n]
}

func xorInto(dst, mask []byte) {
	for i := range dst {
		dst[i] ^= mask[i]
	}
}

// KeyWrap wraps p (a non-empty multiple of 8 bytes) under kek with initial value iv: RFC
// 3394's W for two semiblocks or more, and RFC 5649's single AES block of iv ‖ p for one.
// An unwrap with the same key recovers iv as its integrity value (RFC 3394's A6…A6, or
// RFC 5649's A65959A6 ‖ length), so any iv makes a wrap that fails, or passes, on purpose.
func KeyWrap(kek []byte, iv [8]byte, p []byte) []byte {
	b, err := aes.NewCipher(kek)
	if err != nil {
		panic("malformed: " + err.Error())
	}
	if len(p) == 8 {
		out := append(iv[:], p...)
		b.Encrypt(out, out)
		return out
	}
	n := len(p) / 8
	r := append([]byte(nil), p...)
	a := iv
	var buf [16]byte
	for j := range 6 {
		for i := 1; i <= n; i++ {
			copy(buf[:8], a[:])
			copy(buf[8:], r[8*(i-1):8*i])
			b.Encrypt(buf[:], buf[:])
			binary.BigEndian.PutUint64(a[:], binary.BigEndian.Uint64(buf[:8])^uint64(n*j+i))
			copy(r[8*(i-1):], buf[8:])
		}
	}
	return append(a[:], r...)
}
