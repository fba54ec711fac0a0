package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/coffer-kms/coffer/internal/barrier"
	"github.com/coffer-kms/coffer/internal/keys"
	"github.com/coffer-kms/coffer/internal/keywrap"
	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/provider/malformed"
	"github.com/coffer-kms/coffer/internal/provider/soft"
	"github.com/coffer-kms/coffer/internal/sdblob"
	"github.com/coffer-kms/coffer/internal/storage/mem"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// targets, in the order a full run measures them. The decrypt targets answer two questions:
// valid against invalid padding (the response says which anyway: the time must not say
// more), and near-valid against random invalid padding (the response is identical: time
// is the only channel, the Bleichenbacher/Manger oracle itself). The comparison targets put
// the mismatch at the end of the compared value (class 0) or anywhere (class 1), which an
// early-exit comparison would tell apart.
var targets = []target{
	{"rsa1_5", "keys.Service.Decrypt RSA1_5, RSA-2048 soft key: valid (32-byte message) vs invalid padding (random; 01 first byte; block type 01; no separator; PS < 8 bytes)", rsaTarget(provider.AlgRSA15, false, false)},
	{"rsa1_5-invalid", "keys.Service.Decrypt RSA1_5: invalid with 00 02 prefix (no separator; PS < 8 bytes) vs random invalid ciphertexts", rsaTarget(provider.AlgRSA15, true, false)},
	{"rsa-oaep", "keys.Service.Decrypt RSA-OAEP (SHA-1): valid vs invalid (random; Y ≠ 0; lHash; no 01 separator)", rsaTarget(provider.AlgRSAOAEP, false, false)},
	{"rsa-oaep-invalid", "keys.Service.Decrypt RSA-OAEP: invalid with Y = 0 (lHash; no separator) vs random invalid ciphertexts (Y ≠ 0 but 1/256)", rsaTarget(provider.AlgRSAOAEP, true, false)},
	{"rsa-oaep-256", "keys.Service.Decrypt RSA-OAEP-256: valid vs invalid (as rsa-oaep)", rsaTarget(provider.AlgRSAOAEP256, false, false)},
	{"rsa1_5-provider", "soft provider Key.Decrypt RSA1_5 alone: valid vs invalid (as rsa1_5)", rsaTarget(provider.AlgRSA15, false, true)},
	{"rsa-oaep-provider", "soft provider Key.Decrypt RSA-OAEP alone: valid vs invalid (as rsa-oaep)", rsaTarget(provider.AlgRSAOAEP, false, true)},
	{"root-token", "barrier.Manager.CheckRootToken: the root token with its last character changed vs a random token", rootTokenTarget},
	{"sd-check", "sdblob.Blob.Verify (hmac.Equal): the security domain's check value wrong in its last byte vs in its first byte", sdCheckTarget},
	{"keywrap-kw", "keywrap.Unwrap (RFC 3394 integrity check): integrity value wrong in its last byte vs in its first byte", kwTarget(false)},
	{"keywrap-kwp", "keywrap.UnwrapPad (RFC 5649 AIV check): AIV prefix wrong in its last byte vs in its first byte", kwTarget(true)},
	{"client-secret", "tenancy.Store.VerifySecret (argon2id, ~30 ms a call): the secret with its last character changed vs a random secret with the same hint", clientSecretTarget(false)},
	{"client-unknown", "tenancy.Store.VerifySecret: a known client with a wrong secret vs an unknown client id", clientSecretTarget(true)},
}

// pool draws inputs of each class at random from a few thousand prepared ones, and hands
// out a fresh copy of each, so both classes' inputs are new allocations of the same size
// made in the order of the batch (a class whose inputs stayed hot in the cache would be
// faster for that reason alone).
type pool [2][]any

func (p *pool) input(class int) any {
	var b [2]byte
	_, _ = rand.Read(b[:])
	c := p[class]
	switch in := c[int(binary.BigEndian.Uint16(b[:]))%len(c)].(type) {
	case []byte:
		return bytes.Clone(in)
	case string:
		return strings.Clone(in)
	case call:
		return call{strings.Clone(in.app), strings.Clone(in.secret)}
	case *sdblob.Blob:
		c := *in
		c.Check = strings.Clone(in.Check)
		return &c
	default:
		panic(fmt.Sprintf("pool: no copy for %T", in))
	}
}

// call is a client id and secret sent to the token endpoint.
type call struct{ app, secret string }

const poolSize = 2048

// rsaFixture decrypts with one RSA-2048 soft key: through keys.Service.Decrypt (what the
// API handler calls, over in-memory storage), or (provider) through the soft provider's
// Key.Decrypt alone, to tell the domain layer's share of a difference from the crypto's.
type rsaFixture struct {
	pub     *rsa.PublicKey
	decrypt func(ctx context.Context, alg string, ct []byte) error
}

func newRSAFixture(ctx context.Context, providerOnly bool) (*rsaFixture, error) {
	if providerOnly {
		k, err := soft.New().Generate(ctx, provider.KeySpec{Type: provider.RSA, Size: 2048})
		if err != nil {
			return nil, err
		}
		pub, err := rsaPublic(k.Public())
		return &rsaFixture{pub: pub, decrypt: func(ctx context.Context, alg string, ct []byte) error {
			_, err := k.Decrypt(ctx, provider.EncryptParams{Algorithm: alg, Value: ct})
			return err
		}}, err
	}
	backup := make([]byte, 32)
	if _, err := rand.Read(backup); err != nil {
		return nil, err
	}
	svc := keys.NewService(mem.New(), soft.New(), time.Now, backup)
	vault := tenancy.Vault{TenantID: tenancy.NewUUID(), Name: "dudect", Kind: tenancy.KindVault, SoftDeleteRetention: 7}
	const base = "https://dudect.vault.coffer.test"
	b, err := svc.Create(ctx, vault, base, "k", keys.CreateParams{Kty: provider.RSA, KeySize: 2048})
	if err != nil {
		return nil, err
	}
	pub, err := rsaPublic(b.Key)
	return &rsaFixture{pub: pub, decrypt: func(ctx context.Context, alg string, ct []byte) error {
		_, err := svc.Decrypt(ctx, vault, base, "k", "", keys.OperationParams{Algorithm: alg, Value: ct})
		return err
	}}, err
}

func rsaPublic(j *provider.JWK) (*rsa.PublicKey, error) {
	if j == nil || len(j.N) == 0 {
		return nil, errors.New("no RSA public key")
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(j.N), E: int(new(big.Int).SetBytes(j.E).Int64())}, nil
}

// rsaTarget: class 0 valid ciphertexts and class 1 invalid ones, or (nearValid) class 0
// invalid ciphertexts that pass the first checks and class 1 random ones. Every prepared
// ciphertext is decrypted once to check it is in its class.
func rsaTarget(alg string, nearValid, providerOnly bool) func(context.Context) (func(int) any, func(any), error) {
	return func(ctx context.Context) (func(int) any, func(any), error) {
		f, err := newRSAFixture(ctx, providerOnly)
		if err != nil {
			return nil, nil, err
		}
		k := f.pub.Size()
		var p pool
		for i := range 2 * poolSize {
			class := i % 2
			var ct []byte
			switch {
			case class == 0 && !nearValid:
				ct, err = encrypt(f.pub, alg, randomBytes(32))
			case class == 0:
				ct = malformed.Textbook(f.pub, badBlock(alg, k, i/2%2))
			case !nearValid:
				ct = malformed.Textbook(f.pub, badBlock(alg, k, i/2%5))
			default:
				ct = malformed.Textbook(f.pub, randomBytes(k)) // em = c^d is uniform: as a random ciphertext
			}
			if err != nil {
				return nil, nil, err
			}
			derr := f.decrypt(ctx, alg, ct)
			if (class == 0 && !nearValid) != (derr == nil) || (derr != nil && !errors.Is(derr, provider.ErrDecrypt)) {
				return nil, nil, fmt.Errorf("prepared %s ciphertext %d of class %d: decrypt = %v", alg, i, class, derr)
			}
			p[class] = append(p[class], ct)
		}
		run := func(in any) { _ = f.decrypt(ctx, alg, in.([]byte)) }
		return p.input, run, nil
	}
}

func encrypt(pub *rsa.PublicKey, alg string, msg []byte) ([]byte, error) {
	if alg == provider.AlgRSA15 {
		return rsa.EncryptPKCS1v15(rand.Reader, pub, msg)
	}
	return rsa.EncryptOAEP(oaepHash(alg).New(), rand.Reader, pub, msg, nil)
}

func oaepHash(alg string) crypto.Hash {
	if alg == provider.AlgRSAOAEP256 {
		return crypto.SHA256
	}
	return crypto.SHA1
}

// badBlock is an invalid padded block of k bytes of kind 0..4. The first two kinds get
// past the first byte checks (00 02 for PKCS #1 v1.5, Y = 0 for OAEP).
func badBlock(alg string, k, kind int) []byte {
	if alg == provider.AlgRSA15 {
		em := nonZero(randomBytes(k))
		em[0], em[1] = 0, 2
		switch kind {
		case 0: // no separator
		case 1: // PS of 5 bytes
			em[7] = 0
		case 2:
			em[0] = 1
			em[10] = 0
		case 3:
			em[1] = 1
			em[10] = 0
		default:
			return randomBytes(k)
		}
		return em
	}
	h := oaepHash(alg).New()
	msg := randomBytes(32)
	switch kind {
	case 0:
		return malformed.OAEPBlock(h, k, msg, func(_ *byte, db []byte) { db[3] ^= 1 }) // lHash
	case 1:
		return malformed.OAEPBlock(h, k, msg, func(_ *byte, db []byte) { clear(db[h.Size():]) }) // no 01
	case 2:
		return malformed.OAEPBlock(h, k, msg, func(y *byte, _ []byte) { *y = 1 })
	case 3:
		return malformed.OAEPBlock(h, k, msg, func(y *byte, _ []byte) { *y = 0x80 })
	}
	return randomBytes(k)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return b
}

func nonZero(b []byte) []byte {
	for i := range b {
		for b[i] == 0 {
			b[i] = randomBytes(1)[0]
		}
	}
	return b
}

// changeLast returns s with its last character replaced by another of the same alphabet.
func changeLast(s string) string {
	c := s[len(s)-1]
	r := byte('A')
	if c == 'A' {
		r = 'B'
	}
	return s[:len(s)-1] + string(r)
}

func randomToken(like string, keep int) string {
	t := like[:keep] + base64.RawURLEncoding.EncodeToString(randomBytes(len(like)))
	return t[:len(like)]
}

// rootTokenTarget: the operator's root token checked by the barrier (the management API's
// bearer check calls it on every admin request).
func rootTokenTarget(ctx context.Context) (func(int) any, func(any), error) {
	raw := mem.New()
	b := barrier.New(raw)
	m := barrier.NewManager(raw, b, nil, time.Now)
	res, err := m.Init(ctx, barrier.InitOptions{Shares: 1, Threshold: 1})
	if err != nil {
		return nil, nil, err
	}
	if _, err := m.Unseal(ctx, res.Shares[0]); err != nil {
		return nil, nil, err
	}
	if err := m.CheckRootToken(ctx, res.RootToken); err != nil {
		return nil, nil, fmt.Errorf("the root token does not check: %w", err)
	}
	var p pool
	for range poolSize {
		p[0] = append(p[0], changeLast(res.RootToken))
		p[1] = append(p[1], randomToken(res.RootToken, 0))
	}
	run := func(in any) { _ = m.CheckRootToken(ctx, in.(string)) }
	return p.input, run, nil
}

// sdCheckTarget: the check value of a security-domain blob against the domain key rebuilt
// from uploaded shares (secdomain's restore).
func sdCheckTarget(context.Context) (func(int) any, func(any), error) {
	dk := randomBytes(sdblob.DomainKeyLen)
	blob := &sdblob.Blob{Format: "coffer-sd/1", DomainID: tenancy.NewUUID(), Required: 2}
	mac, err := blob.MAC(dk)
	if err != nil {
		return nil, nil, err
	}
	var p pool
	for i, at := range []int{len(mac) - 1, 0} {
		for range poolSize {
			m := append([]byte(nil), mac...)
			m[at] ^= 1 + randomBytes(1)[0]%255
			c := *blob
			c.Check = base64.RawURLEncoding.EncodeToString(m)
			p[i] = append(p[i], &c)
		}
	}
	run := func(in any) { _ = in.(*sdblob.Blob).Verify(dk) }
	return p.input, run, nil
}

// kwTarget: RFC 3394 / RFC 5649 unwrapping whose integrity value is wrong in one byte
// (the BYOK transfer format's second step; the token does it on the server, keywrap in
// the CLI's secure-key-release path).
func kwTarget(pad bool) func(context.Context) (func(int) any, func(any), error) {
	return func(context.Context) (func(int) any, func(any), error) {
		kek := randomBytes(32)
		iv := [8]byte{0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6}
		if pad {
			iv = [8]byte{0xa6, 0x59, 0x59, 0xa6, 0, 0, 0, 32}
		}
		var p pool
		for i, at := range []int{3, 0} { // the last byte of the compared value, and its first
			if !pad {
				at = []int{7, 0}[i]
			}
			for range poolSize {
				bad := iv
				bad[at] ^= 1 + randomBytes(1)[0]%255
				p[i] = append(p[i], malformed.KeyWrap(kek, bad, randomBytes(32)))
			}
		}
		unwrap := keywrap.Unwrap
		if pad {
			unwrap = keywrap.UnwrapPad
		}
		for _, c := range p {
			for _, ct := range c {
				_, err := unwrap(kek, ct.([]byte))
				mustf(err != nil, "a corrupted wrap unwrapped")
			}
		}
		run := func(in any) { _, _ = unwrap(kek, in.([]byte)) }
		return p.input, run, nil
	}
}

// clientSecretTarget: the built-in identity provider's client-secret check. With unknown
// set, class 0 is the real client with a wrong secret and class 1 a client id that does
// not exist (the token endpoint must not tell them apart).
func clientSecretTarget(unknown bool) func(context.Context) (func(int) any, func(any), error) {
	return func(ctx context.Context) (func(int) any, func(any), error) {
		st := tenancy.New(mem.New(), time.Now)
		tid := tenancy.NewUUID()
		if _, err := st.CreateTenant(ctx, tid, "dudect"); err != nil {
			return nil, nil, err
		}
		pr, secret, err := st.CreateServicePrincipal(ctx, tid, "dudect")
		if err != nil {
			return nil, nil, err
		}
		if _, err := st.VerifySecret(ctx, tid, pr.AppID, secret); err != nil {
			return nil, nil, fmt.Errorf("the client secret does not verify: %w", err)
		}
		var p pool
		for range poolSize {
			if unknown {
				wrong := randomToken(secret, 3)
				p[0] = append(p[0], call{pr.AppID, wrong})
				p[1] = append(p[1], call{tenancy.NewUUID(), wrong})
			} else {
				p[0] = append(p[0], call{pr.AppID, changeLast(secret)})
				p[1] = append(p[1], call{pr.AppID, randomToken(secret, 3)})
			}
		}
		run := func(in any) {
			c := in.(call)
			_, _ = st.VerifySecret(ctx, tid, c.app, c.secret)
		}
		return p.input, run, nil
	}
}
