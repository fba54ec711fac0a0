package secdomain

import (
	"context"
	"errors"

	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// ErrCorruptBackup is the one answer to a full backup that does not open in a pool: corrupt,
// truncated, made by another tenant, or under another security domain.
var ErrCorruptBackup = errors.New("the full backup is corrupt, or was made by another tenant or under another security domain")

func fullBackupAAD(v tenancy.Vault) []byte { return []byte("coffer/mhsm-full-backup/v1" + v.TenantID) }

// fullBackupSealer is the sealer of v's full backups: AES-256-GCM under
// DeriveKey(domain key, "full-backup"). An inactive pool is ErrNotActivated.
func (s *Service) fullBackupSealer(ctx context.Context, v tenancy.Vault) (*records.Sealer, error) {
	k, err := s.derive(ctx, v, "full-backup")
	if err != nil {
		return nil, err
	}
	defer clear(k)
	return records.NewSealer(k), nil
}

// SealFullBackup seals a full backup of the pool under its security domain.
func (s *Service) SealFullBackup(ctx context.Context, v tenancy.Vault, plain []byte) ([]byte, error) {
	sl, err := s.fullBackupSealer(ctx, v)
	if err != nil {
		return nil, err
	}
	return sl.Seal(plain, fullBackupAAD(v))
}

// OpenFullBackup opens a full backup in the pool v, which must hold the security domain the
// backup was sealed under (ErrCorruptBackup otherwise).
func (s *Service) OpenFullBackup(ctx context.Context, v tenancy.Vault, blob []byte) ([]byte, error) {
	sl, err := s.fullBackupSealer(ctx, v)
	if err != nil {
		return nil, err
	}
	plain, err := sl.Open(blob, fullBackupAAD(v))
	if err != nil {
		return nil, ErrCorruptBackup
	}
	return plain, nil
}
