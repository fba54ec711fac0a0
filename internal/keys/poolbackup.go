package keys

import (
	"context"

	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// PoolBackupKey returns the 32-byte key that seals the key backups of a managed HSM pool
// (the server derives it from the pool's security domain, internal/secdomain).
type PoolBackupKey func(ctx context.Context, pool tenancy.Vault) ([]byte, error)

// SealPoolBackupsWith makes key backups of managed HSM pools sealed under the pool's own key
// instead of the installation's: a pool's backup then restores only into a pool that holds
// the same security domain, and a vault's backup never restores into a pool (nor the other
// way round). Call it before the service is used.
func (s *Service) SealPoolBackupsWith(key PoolBackupKey) { s.poolBackupKey = key }

// sealerFor is the sealer of v's backup blobs.
func (s *Service) sealerFor(ctx context.Context, v tenancy.Vault) (*records.Sealer, error) {
	if v.Kind != tenancy.KindManagedHSM || s.poolBackupKey == nil {
		if s.backup == nil {
			return nil, errNoBackupKey
		}
		return s.backup, nil
	}
	k, err := s.poolBackupKey(ctx, v)
	if err != nil {
		return nil, err
	}
	defer clear(k)
	if sl := records.NewSealer(k); sl != nil {
		return sl, nil
	}
	return nil, errNoBackupKey
}
