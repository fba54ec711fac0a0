package soft_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	k1ecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/provider/providertest"
	"github.com/coffer-kms/coffer/internal/provider/soft"
)

// BenchmarkSign compares the provider's Sign with the raw library call it wraps, on the
// same key and digest in the same run: the ratio is the provider's overhead (validation,
// raw r ‖ s encoding; for ES256K the side-channel blinding of k1.go).
func BenchmarkSign(b *testing.B) {
	ctx := context.Background()
	digest := sha256.Sum256([]byte("benchmark"))
	p := soft.New()

	rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	rsaKey, err := p.Import(ctx, providertest.RSAJWK(rsaPriv, provider.RSA))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("RSA-2048-PS256/provider", func(b *testing.B) {
		for b.Loop() {
			if _, err := rsaKey.Sign(ctx, provider.AlgPS256, digest[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RSA-2048-PS256/stdlib", func(b *testing.B) {
		opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}
		for b.Loop() {
			if _, err := rsa.SignPSS(rand.Reader, rsaPriv, crypto.SHA256, digest[:], opts); err != nil {
				b.Fatal(err)
			}
		}
	})

	ecPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	ecKey, err := p.Import(ctx, providertest.ECJWK(ecPriv, provider.EC, provider.P256))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("EC-P-256-ES256/provider", func(b *testing.B) {
		for b.Loop() {
			if _, err := ecKey.Sign(ctx, provider.AlgES256, digest[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("EC-P-256-ES256/stdlib", func(b *testing.B) {
		for b.Loop() {
			if _, err := ecdsa.SignASN1(rand.Reader, ecPriv, digest[:]); err != nil {
				b.Fatal(err)
			}
		}
	})

	k1Priv, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		b.Fatal(err)
	}
	k1Key, err := p.Import(ctx, providertest.K1JWK(k1Priv, provider.EC))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("EC-P-256K-ES256K/provider", func(b *testing.B) {
		for b.Loop() {
			if _, err := k1Key.Sign(ctx, provider.AlgES256K, digest[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("EC-P-256K-ES256K/decred", func(b *testing.B) {
		for b.Loop() {
			k1ecdsa.Sign(k1Priv, digest[:])
		}
	})
}
