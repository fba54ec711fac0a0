package azsd

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"errors"
)

// kdfName is the EncData.kdf value of the one key-derivation function the format uses.
const kdfName = "sp108_kdf"

// KDF is the key-derivation function of the format: NIST SP 800-108 Rev. 1, §4.1 (KDF in
// counter mode) with HMAC-SHA512 as the PRF, a 32-bit counter r, and the fixed input data
// Label ‖ 0x00 ‖ Context ‖ [L]₃₂ (big endian):
//
//	K(i) = HMAC-SHA512(key, [i]₃₂ ‖ label ‖ 0x00 ‖ context ‖ [L]₃₂),  i = 1 … ⌈L/512⌉
//	out  = the leftmost L bits of K(1) ‖ K(2) ‖ …
//
// It composes crypto/hmac exactly as the specification says; nothing else is home-made. The
// format derives only 512-bit keys (one block), for which this equals the Azure CLI's
// sp800_108 (which, for longer outputs, feeds each block's input into one running HMAC
// instead of a fresh one; no part of the format asks for more than one block).
func KDF(key []byte, label, context string, bits int) ([]byte, error) {
	if bits <= 0 || bits%8 != 0 || bits > 1<<20 {
		return nil, errors.New("azsd: KDF output length must be a positive multiple of 8 bits")
	}
	n := (bits/8 + sha512.Size - 1) / sha512.Size
	out := make([]byte, 0, n*sha512.Size)
	var ctr, l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(bits))
	for i := 1; i <= n; i++ {
		binary.BigEndian.PutUint32(ctr[:], uint32(i))
		m := hmac.New(sha512.New, key)
		m.Write(ctr[:])
		m.Write([]byte(label))
		m.Write([]byte{0})
		m.Write([]byte(context))
		m.Write(l[:])
		out = m.Sum(out)
	}
	clear(out[bits/8:])
	return out[:bits/8], nil
}

// dataKey derives the 64-byte A256CBC-HS512 key of the datum tagged tag from a master key.
func dataKey(master []byte, tag string) ([]byte, error) {
	return KDF(master, tag, "", 512)
}
