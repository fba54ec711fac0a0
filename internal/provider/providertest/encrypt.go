package providertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"math/big"
	"testing"

	"github.com/coffer-kms/coffer/internal/provider"
)

// encAlgsFor are the offered encryption algorithms that fit k.
func (s *suite) encAlgsFor(k provider.Key) []string {
	var out []string
	for _, alg := range provider.EncryptionAlgorithms() {
		if s.offr[alg] && encFits(alg, k.Type()) {
			out = append(out, alg)
		}
	}
	return out
}

// rsaPub is the public key of an RSA key, parsed independently from Public().
func rsaPub(t *testing.T, k provider.Key) *rsa.PublicKey {
	t.Helper()
	pub, err := publicKeyOf(k.Public())
	if err != nil {
		t.Fatalf("Public() does not parse: %v", err)
	}
	return pub.(*rsa.PublicKey)
}

// stdEncrypt encrypts with the standard library, independently of the provider.
func stdEncrypt(pub *rsa.PublicKey, alg string, msg, label []byte) ([]byte, error) {
	if h := oaepHash(alg); h != 0 {
		return rsa.EncryptOAEP(h.New(), rand.Reader, pub, msg, label)
	}
	//lint:ignore SA1019 testing Key Vault's RSA1_5
	return rsa.EncryptPKCS1v15(rand.Reader, pub, msg)
}

func (s *suite) testEncryptDecrypt(t *testing.T) {
	ctx := context.Background()
	for _, g := range s.keys {
		for _, alg := range s.encAlgsFor(g.key) {
			t.Run(specName(g.spec)+"/"+alg, func(t *testing.T) {
				pub := rsaPub(t, g.key)
				k := g.key.Size() / 8
				limit := maxPlaintext(alg, k)
				for _, n := range []int{0, 1, 32, limit} {
					msg := randomBytes(n)
					ct, err := g.key.Encrypt(ctx, provider.EncryptParams{Algorithm: alg, Value: msg})
					if err != nil {
						t.Fatalf("Encrypt(%d bytes) = %v", n, err)
					}
					if len(ct.Value) != k || ct.IV != nil || ct.Tag != nil || ct.AAD != nil {
						t.Errorf("Encrypt(%d bytes) = %d-byte value, iv %x, tag %x; want %d bytes and no iv or tag", n, len(ct.Value), ct.IV, ct.Tag, k)
					}
					pt, err := g.key.Decrypt(ctx, provider.EncryptParams{Algorithm: alg, Value: ct.Value})
					if err != nil || !bytes.Equal(pt, msg) {
						t.Errorf("Decrypt(Encrypt(%d bytes)) = %d bytes, %v; want the plaintext", n, len(pt), err)
					}
					// Ciphertexts of the standard library decrypt too.
					std, err := stdEncrypt(pub, alg, msg, nil)
					if err != nil {
						t.Fatal(err)
					}
					if pt, err := g.key.Decrypt(ctx, provider.EncryptParams{Algorithm: alg, Value: std}); err != nil || !bytes.Equal(pt, msg) {
						t.Errorf("Decrypt(standard library ciphertext of %d bytes) = %d bytes, %v", n, len(pt), err)
					}
					if again, _ := g.key.Encrypt(ctx, provider.EncryptParams{Algorithm: alg, Value: msg}); bytes.Equal(again.Value, ct.Value) {
						t.Errorf("two encryptions of one message are equal: encryption is not randomized")
					}
				}
				for _, n := range []int{16, 32, limit} {
					cek := randomBytes(n)
					w, err := g.key.WrapKey(ctx, provider.EncryptParams{Algorithm: alg, Value: cek})
					if err != nil || len(w.Value) != k {
						t.Fatalf("WrapKey(%d bytes) = %d bytes, %v", n, len(w.Value), err)
					}
					u, err := g.key.UnwrapKey(ctx, provider.EncryptParams{Algorithm: alg, Value: w.Value})
					if err != nil || !bytes.Equal(u, cek) {
						t.Errorf("UnwrapKey(WrapKey(%d bytes)) = %d bytes, %v", n, len(u), err)
					}
				}
				if _, err := g.key.WrapKey(ctx, provider.EncryptParams{Algorithm: alg}); !wantErr(err, provider.ErrInvalidParameter) {
					t.Errorf("WrapKey(empty) = %v; want ErrInvalidParameter", err)
				}
				ct, _ := g.key.Encrypt(ctx, provider.EncryptParams{Algorithm: alg, Value: []byte("x")})
				for _, extra := range []provider.EncryptParams{{IV: make([]byte, 12)}, {AAD: []byte("a")}, {Tag: make([]byte, 16)}} {
					p := extra
					p.Algorithm, p.Value = alg, []byte("x")
					if _, err := g.key.Encrypt(ctx, p); !wantErr(err, provider.ErrInvalidParameter) {
						t.Errorf("Encrypt with iv/aad/tag = %v; want ErrInvalidParameter", err)
					}
					p.Value = ct.Value
					if _, err := g.key.Decrypt(ctx, p); !wantErr(err, provider.ErrInvalidParameter) {
						t.Errorf("Decrypt with iv/aad/tag = %v; want ErrInvalidParameter", err)
					}
				}
			})
		}
	}
}

func (s *suite) testPlaintextLimits(t *testing.T) {
	ctx := context.Background()
	for _, g := range s.keys {
		for _, alg := range s.encAlgsFor(g.key) {
			k := g.key.Size() / 8
			limit := maxPlaintext(alg, k)
			for _, n := range []int{limit + 1, limit + 2, k, k + 1, 4 * k} {
				p := provider.EncryptParams{Algorithm: alg, Value: randomBytes(n)}
				if r, err := g.key.Encrypt(ctx, p); !wantErr(err, provider.ErrInvalidParameter) || r.Value != nil {
					t.Errorf("%s: Encrypt(%s, %d bytes; max %d) = %v; want ErrInvalidParameter", specName(g.spec), alg, n, limit, err)
				}
				if r, err := g.key.WrapKey(ctx, p); !wantErr(err, provider.ErrInvalidParameter) || r.Value != nil {
					t.Errorf("%s: WrapKey(%s, %d bytes; max %d) = %v; want ErrInvalidParameter", specName(g.spec), alg, n, limit, err)
				}
			}
		}
	}
}

// textbook returns m^e mod n as a k-byte ciphertext: raw RSA, to build encodings no
// padding function would produce.
func textbook(pub *rsa.PublicKey, m []byte) []byte {
	c := new(big.Int).Exp(new(big.Int).SetBytes(m), big.NewInt(int64(pub.E)), pub.N)
	return c.FillBytes(make([]byte, (pub.N.BitLen()+7)/8))
}

// nonZero returns n random non-zero bytes.
func nonZero(n int) []byte {
	b := randomBytes(n)
	for i := range b {
		for b[i] == 0 {
			b[i] = randomBytes(1)[0]
		}
	}
	return b
}

// pkcs1Block builds 00 ‖ bt ‖ PS ‖ 00 ‖ msg of k bytes with a psLen-byte PS (no separator
// if psLen fills the block).
func pkcs1Block(k int, bt byte, psLen int, msg []byte) []byte {
	b := append([]byte{0, bt}, nonZero(psLen)...)
	if len(b) < k {
		b = append(b, 0)
		b = append(b, msg...)
	}
	return b[:k]
}

// testUniformDecryptError: every corrupted ciphertext gives exactly provider.ErrDecrypt, the
// same value, from Decrypt and UnwrapKey alike (SECURITY-NOTES C1, C2). The RSA1_5 set
// holds each Bleichenbacher failure class built by textbook RSA; the OAEP set the Manger
// class (first byte not zero), a wrong label and a wrong hash.
func (s *suite) testUniformDecryptError(t *testing.T) {
	ctx := context.Background()
	for _, g := range s.keys {
		for _, alg := range s.encAlgsFor(g.key) {
			t.Run(specName(g.spec)+"/"+alg, func(t *testing.T) {
				pub := rsaPub(t, g.key)
				k := g.key.Size() / 8
				msg := randomBytes(32)
				valid, err := g.key.Encrypt(ctx, provider.EncryptParams{Algorithm: alg, Value: msg})
				if err != nil {
					t.Fatal(err)
				}
				ct := valid.Value
				nBytes := pub.N.FillBytes(make([]byte, k))
				bad := map[string][]byte{
					"empty":             nil,
					"one-byte":          {1},
					"truncated":         ct[:k-1],
					"leading-zero":      append([]byte{0}, ct...),
					"trailing-byte":     append(append([]byte(nil), ct...), 0),
					"flipped-last-bit":  flipBit(ct, 8*k-1),
					"flipped-first-bit": flipBit(ct, 7),
					"zero":              make([]byte, k),
					"one":               append(make([]byte, k-1), 1),
					"n":                 nBytes,
					"ones":              bytesOf(0xff, k),
					"n-minus-1":         new(big.Int).Sub(pub.N, big.NewInt(1)).FillBytes(make([]byte, k)),
				}
				if oaepHash(alg) == 0 {
					// A well-formed block decrypts: the crafting is right.
					if pt, err := g.key.Decrypt(ctx, provider.EncryptParams{Algorithm: alg, Value: textbook(pub, pkcs1Block(k, 2, k-3-32, msg))}); err != nil || !bytes.Equal(pt, msg) {
						t.Fatalf("Decrypt(textbook 00 02 PS 00 msg) = %v; want the message", err)
					}
					bad["first-byte-not-zero"] = textbook(pub, append([]byte{1}, pkcs1Block(k, 2, k-3-32, msg)[1:]...))
					bad["block-type-1"] = textbook(pub, pkcs1Block(k, 1, k-3-32, msg))
					bad["block-type-0"] = textbook(pub, pkcs1Block(k, 0, k-3-32, msg))
					bad["no-separator"] = textbook(pub, pkcs1Block(k, 2, k-2, nil))
					bad["padding-7-bytes"] = textbook(pub, pkcs1Block(k, 2, 7, randomBytes(k-10)))
					bad["padding-empty"] = textbook(pub, pkcs1Block(k, 2, 0, randomBytes(k-3)))
					bad["zero-zero-two"] = textbook(pub, append([]byte{0, 0, 2}, pkcs1Block(k, 2, k-3-32, msg)[3:]...))
				} else {
					bad["first-byte-not-zero"] = textbook(pub, append([]byte{1}, randomBytes(k-1)...))
					bad["first-byte-ff"] = textbook(pub, append([]byte{0xff}, randomBytes(k-1)...))
					bad["random-encoding"] = textbook(pub, append([]byte{0}, randomBytes(k-1)...))
					labelled, err := stdEncrypt(pub, alg, msg, []byte("coffer"))
					if err != nil {
						t.Fatal(err)
					}
					bad["wrong-label"] = labelled
					other := provider.AlgRSAOAEP256
					if alg == other {
						other = provider.AlgRSAOAEP
					}
					if bad["wrong-hash"], err = stdEncrypt(pub, other, msg, nil); err != nil {
						t.Fatal(err)
					}
					//lint:ignore SA1019 a foreign ciphertext for the OAEP decryptor
					if bad["pkcs1-v1.5"], err = rsa.EncryptPKCS1v15(rand.Reader, pub, msg); err != nil {
						t.Fatal(err)
					}
				}
				for name, c := range bad {
					for op, f := range map[string]func(context.Context, provider.EncryptParams) ([]byte, error){
						"Decrypt": g.key.Decrypt, "UnwrapKey": g.key.UnwrapKey,
					} {
						out, err := f(ctx, provider.EncryptParams{Algorithm: alg, Value: c})
						if err != provider.ErrDecrypt || out != nil { // the identical value, not errors.Is, is the point
							t.Errorf("%s(%s) = %d bytes, %v; want nil and exactly provider.ErrDecrypt", op, name, len(out), err)
						}
					}
				}
			})
		}
	}
}
