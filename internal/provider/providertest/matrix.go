package providertest

import (
	"context"
	"fmt"
	"testing"

	"github.com/coffer-kms/coffer/internal/provider"
)

// expectation is what the table says about one algorithm on one key.
type expectation int

const (
	expectOK          expectation = iota // fits and offered
	expectUnsupported                    // fits but not offered
	expectWrongType                      // offered, does not fit
	expectRefused                        // neither: ErrWrongKeyType or ErrUnsupported
)

func (s *suite) expect(alg string, fits bool) expectation {
	switch {
	case fits && s.offr[alg]:
		return expectOK
	case fits:
		return expectUnsupported
	case s.offr[alg]:
		return expectWrongType
	}
	return expectRefused
}

// check reports a mismatch between err and the expectation; for expectOK, err must be nil.
func (e expectation) check(err error) string {
	switch e {
	case expectOK:
		if err != nil {
			return fmt.Sprintf("%v; want success", err)
		}
	case expectUnsupported:
		if !wantErr(err, provider.ErrUnsupported) {
			return fmt.Sprintf("%v; want ErrUnsupported", err)
		}
	case expectWrongType:
		if !wantErr(err, provider.ErrWrongKeyType) {
			return fmt.Sprintf("%v; want ErrWrongKeyType", err)
		}
	default:
		if !wantErr(err, provider.ErrWrongKeyType, provider.ErrUnsupported) {
			return fmt.Sprintf("%v; want ErrWrongKeyType or ErrUnsupported", err)
		}
	}
	return ""
}

// unknownAlgs are names in no Key Vault enum (JWA names are case-sensitive).
var unknownAlgs = []string{"", "none", "rs256", "RS256 ", "ES256K1", "RSA-OAEP-384", "A256GCMKW", "RSA1_5\x00", "HS1"}

// testWrongAlgorithm runs every algorithm of both Key Vault enums against every key, through
// all six operations, and compares each outcome with the table: success where the
// algorithm fits and is offered, ErrWrongKeyType where it does not fit (never ErrDecrypt: a
// wrong algorithm is refused before the ciphertext is looked at), ErrUnsupported where it
// fits but is not offered and for names outside the enums.
func (s *suite) testWrongAlgorithm(t *testing.T) {
	ctx := context.Background()
	for _, g := range s.keys {
		k := g.key
		t.Run(specName(g.spec), func(t *testing.T) {
			for _, alg := range provider.SignatureAlgorithms() {
				e := s.expect(alg, sigFits(alg, k.Type(), k.Curve()))
				n := 32
				if h, ok := sigHash[alg]; ok {
					n = h.Size()
				}
				digest := randomBytes(n)
				sig, err := k.Sign(ctx, alg, digest)
				if msg := e.check(err); msg != "" {
					t.Errorf("Sign(%s) = %s", alg, msg)
				}
				if sig == nil {
					sig = make([]byte, sigLen(k))
				}
				ok, err := k.Verify(ctx, alg, digest, sig)
				if msg := e.check(err); msg != "" {
					t.Errorf("Verify(%s) = %s", alg, msg)
				}
				if e != expectOK && ok {
					t.Errorf("Verify(%s) = true for an algorithm that does not apply", alg)
				}
			}
			for _, alg := range provider.EncryptionAlgorithms() {
				e := s.expect(alg, encFits(alg, k.Type()))
				p := provider.EncryptParams{Algorithm: alg, Value: randomBytes(16)}
				ct, err := k.Encrypt(ctx, p)
				if msg := e.check(err); msg != "" {
					t.Errorf("Encrypt(%s) = %s", alg, msg)
				}
				w, err := k.WrapKey(ctx, p)
				if msg := e.check(err); msg != "" {
					t.Errorf("WrapKey(%s) = %s", alg, msg)
				}
				if e != expectOK {
					ct.Value = randomBytes(sigLen(k))
					w.Value = ct.Value
				}
				if _, err := k.Decrypt(ctx, provider.EncryptParams{Algorithm: alg, Value: ct.Value}); e.check(err) != "" {
					t.Errorf("Decrypt(%s) = %s", alg, e.check(err))
				}
				if _, err := k.UnwrapKey(ctx, provider.EncryptParams{Algorithm: alg, Value: w.Value}); e.check(err) != "" {
					t.Errorf("UnwrapKey(%s) = %s", alg, e.check(err))
				}
			}
			// Names in no enum, and names of the other enum, are refused on every operation.
			for _, alg := range unknownAlgs {
				digest := randomBytes(32)
				if _, err := k.Sign(ctx, alg, digest); !wantErr(err, provider.ErrUnsupported) {
					t.Errorf("Sign(%q) = %v; want ErrUnsupported", alg, err)
				}
				if _, err := k.Verify(ctx, alg, digest, make([]byte, sigLen(k))); !wantErr(err, provider.ErrUnsupported) {
					t.Errorf("Verify(%q) = %v; want ErrUnsupported", alg, err)
				}
				p := provider.EncryptParams{Algorithm: alg, Value: make([]byte, sigLen(k))}
				if _, err := k.Encrypt(ctx, provider.EncryptParams{Algorithm: alg, Value: []byte("x")}); !wantErr(err, provider.ErrUnsupported) {
					t.Errorf("Encrypt(%q) = %v; want ErrUnsupported", alg, err)
				}
				if _, err := k.Decrypt(ctx, p); !wantErr(err, provider.ErrUnsupported) {
					t.Errorf("Decrypt(%q) = %v; want ErrUnsupported", alg, err)
				}
				if _, err := k.UnwrapKey(ctx, p); !wantErr(err, provider.ErrUnsupported) {
					t.Errorf("UnwrapKey(%q) = %v; want ErrUnsupported", alg, err)
				}
			}
			for _, alg := range provider.EncryptionAlgorithms() {
				if _, err := k.Sign(ctx, alg, randomBytes(32)); !wantErr(err, provider.ErrUnsupported, provider.ErrWrongKeyType) {
					t.Errorf("Sign(encryption algorithm %s) = %v; want ErrUnsupported or ErrWrongKeyType", alg, err)
				}
			}
			for _, alg := range provider.SignatureAlgorithms() {
				if _, err := k.Encrypt(ctx, provider.EncryptParams{Algorithm: alg, Value: []byte("x")}); !wantErr(err, provider.ErrUnsupported, provider.ErrWrongKeyType) {
					t.Errorf("Encrypt(signature algorithm %s) = %v; want ErrUnsupported or ErrWrongKeyType", alg, err)
				}
				if _, err := k.Decrypt(ctx, provider.EncryptParams{Algorithm: alg, Value: make([]byte, sigLen(k))}); !wantErr(err, provider.ErrUnsupported, provider.ErrWrongKeyType) {
					t.Errorf("Decrypt(signature algorithm %s) = %v; want ErrUnsupported or ErrWrongKeyType", alg, err)
				}
			}
		})
	}
}
