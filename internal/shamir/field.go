package shamir

// Arithmetic in GF(2^8) modulo the AES polynomial x^8+x^4+x^3+x+1 (0x11b). Addition and
// subtraction are both xor. mul and inv run in constant time: a fixed number of steps, no
// table lookups, no branches on their operands.

// mul returns a·b in GF(2^8), computed by shift-and-xor with masks.
func mul(a, b byte) byte {
	var p byte
	for range 8 {
		p ^= a & -(b & 1)                 // add a when the low bit of b is set
		a = (a << 1) ^ (0x1b & -(a >> 7)) // a·x, reduced when a bit falls off the top
		b >>= 1
	}
	return p
}

// inv returns the multiplicative inverse of a, a^254 (a^255 = 1 for every non-zero a), by a
// fixed chain of squarings and multiplications. inv(0) is 0.
func inv(a byte) byte {
	r := a
	for range 6 { // r = a^3, a^7, a^15, a^31, a^63, a^127
		r = mul(mul(r, r), a)
	}
	return mul(r, r) // a^254
}
