package server

import (
	"context"
	"io"
	"testing"

	"github.com/coffer-kms/coffer/internal/identity/token"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// BenchmarkAuthenticate compares a full ES256 token validation with the cached path the data
// plane takes for a token it has seen (BENCHMARKS.md).
func BenchmarkAuthenticate(b *testing.B) {
	cfg := loadConfigB(b, "--dev", "--listen", "127.0.0.1:0", "--data-dir", b.TempDir(), "--log-level", "error")
	s := New(cfg, io.Discard, io.Discard)
	if err := s.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	id, err := s.ident()
	if err != nil {
		b.Fatal(err)
	}
	res := s.resources()
	resource := res.Base()
	now := s.now()
	raw, err := id.signer.Sign(token.Claims{Issuer: res.Issuer(devTenantID), Audience: []string{resource}, TenantID: devTenantID,
		ObjectID: s.Dev.Credentials.ObjectID, AppID: s.Dev.Credentials.ClientID, IssuedAt: now.Unix(), NotBefore: now.Unix(), ExpiresAt: now.Add(tokenLifetime).Unix()})
	if err != nil {
		b.Fatal(err)
	}
	store := tenancy.Vault{TenantID: devTenantID, Name: devVaultName, Kind: tenancy.KindVault}
	b.Run("validate-es256", func(b *testing.B) {
		for b.Loop() {
			if _, err := (token.Validator{}).Validate(raw, token.Expect{Issuers: []string{res.Issuer(devTenantID)}, Audiences: []string{resource}, TenantID: devTenantID, Now: s.now(), Keys: id.signer.KeySet()}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("authenticate-cached", func(b *testing.B) {
		a := authenticator{s}
		if _, err := a.Authenticate(context.Background(), raw, store, resource); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := a.Authenticate(context.Background(), raw, store, resource); err != nil {
				b.Fatal(err)
			}
		}
	})
}
