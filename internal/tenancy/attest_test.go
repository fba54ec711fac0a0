package tenancy

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/coffer-kms/coffer/internal/storage/mem"
)

func TestAttestationProviders(t *testing.T) {
	ctx := context.Background()
	s := New(mem.New(), nil)
	a, err := s.CreateTenant(ctx, "", "A")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateTenant(ctx, "", "B")
	if err != nil {
		t.Fatal(err)
	}
	p, created, err := s.PutAttestationProvider(ctx, a.ID, "TeeProv", json.RawMessage(`{"types":["sim"]}`))
	if err != nil || !created || p.Name != "teeprov" || p.TenantID != a.ID {
		t.Fatalf("PutAttestationProvider = %+v, %v, %v", p, created, err)
	}
	p, created, err = s.PutAttestationProvider(ctx, a.ID, "teeprov", json.RawMessage(`{}`))
	if err != nil || created || string(p.Policy) != `{}` {
		t.Fatalf("update = %+v, %v, %v", p, created, err)
	}
	if _, _, err := s.PutAttestationProvider(ctx, b.ID, "teeprov", json.RawMessage(`{}`)); !errors.Is(err, ErrExists) {
		t.Errorf("other tenant's put = %v; want ErrExists", err)
	}
	if _, _, err := s.PutAttestationProvider(ctx, a.ID, "bad.name", json.RawMessage(`{}`)); !errors.Is(err, ErrInvalidName) {
		t.Errorf("bad name = %v; want ErrInvalidName", err)
	}
	if _, _, err := s.PutAttestationProvider(ctx, "00000000-0000-4000-8000-000000000000", "x1", json.RawMessage(`{}`)); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown tenant = %v; want ErrNotFound", err)
	}
	got, err := s.AttestationProvider(ctx, "TEEPROV")
	if err != nil || string(got.Policy) != `{}` {
		t.Errorf("AttestationProvider = %+v, %v", got, err)
	}
	if l, err := s.AttestationProviders(ctx, a.ID); err != nil || len(l) != 1 {
		t.Errorf("AttestationProviders(A) = %v, %v", l, err)
	}
	if l, err := s.AttestationProviders(ctx, b.ID); err != nil || len(l) != 0 {
		t.Errorf("AttestationProviders(B) = %v, %v", l, err)
	}
}
