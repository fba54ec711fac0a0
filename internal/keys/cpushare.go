package keys

import (
	"context"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// CPUShare shares the CPU that expensive software cryptography needs among tenants
// (internal/cpushare, SECURITY-NOTES R2): Acquire for an RSA private operation (about a
// millisecond), AcquireLong for a key generation (up to seconds for RSA-4096). Each returns
// the function that gives the slot back, or the context's error.
type CPUShare interface {
	Acquire(ctx context.Context, tenant string) (func(), error)
	AcquireLong(ctx context.Context, tenant string) (func(), error)
}

// ShareCPU makes the service take a slot of c for each software RSA private operation and
// each software RSA key generation. HSM keys run in their token, whose session pool bounds
// them; EC operations cost tens of microseconds and run freely.
func (s *Service) ShareCPU(c CPUShare) { s.cpu = c }

func noRelease() {}

// shareOp takes a slot for an operation of key in v's tenant when it is a software RSA
// private operation.
func (s *Service) shareOp(ctx context.Context, v tenancy.Vault, kty provider.KeyType) (func(), error) {
	if s.cpu == nil || kty != provider.RSA {
		return noRelease, nil
	}
	return s.cpu.Acquire(ctx, v.TenantID)
}

// generate makes a key of spec for v's tenant, in a long slot when it is a software RSA key.
func (s *Service) generate(ctx context.Context, v tenancy.Vault, spec provider.KeySpec) (provider.Key, error) {
	if s.cpu != nil && spec.Type == provider.RSA {
		release, err := s.cpu.AcquireLong(ctx, v.TenantID)
		if err != nil {
			return nil, err
		}
		defer release()
	}
	return s.prov.Generate(ctx, spec)
}
