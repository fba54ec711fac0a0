package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/keys"
	"github.com/coffer-kms/coffer/internal/secdomain"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// hsmBackupDir is where managed HSM full backups are written, under the data directory:
// hsm-backups/<tenant>/<container>/<folder>/backup.blob. Copy them off the host to keep them.
const (
	hsmBackupDir  = "hsm-backups"
	hsmBackupFile = "backup.blob"
	maxHSMBackup  = 256 << 20
)

// dirBackups is the BackupStore of managed HSM full backups: files in the data directory.
// The names it is given are validated by the api layer; it checks again that they stay
// single path segments.
type dirBackups struct{ root string }

var _ api.BackupStore = dirBackups{}

func (d dirBackups) path(tenantID, container, folder string) (string, error) {
	for _, seg := range []string{tenantID, container, folder} {
		if seg == "" || seg != filepath.Base(seg) || seg == "." || seg == ".." || !tenancy.IsUUID(tenantID) {
			return "", fmt.Errorf("hsm backup: invalid path segment")
		}
	}
	return filepath.Join(d.root, tenantID, container, folder, hsmBackupFile), nil
}

func (d dirBackups) Write(_ context.Context, tenantID, container, folder string, blob []byte) error {
	p, err := d.path(tenantID, container, folder)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("hsm backup: %w", err)
	}
	return writeFileSync(p, blob)
}

func (d dirBackups) Read(_ context.Context, tenantID, container, folder string) ([]byte, error) {
	p, err := d.path(tenantID, container, folder)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, api.ErrBackupNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("hsm backup: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxHSMBackup+1))
	if err != nil {
		return nil, fmt.Errorf("hsm backup: %w", err)
	}
	if len(b) > maxHSMBackup {
		return nil, api.Errorf(400, "BadParameter", "the backup is larger than the server reads")
	}
	return b, nil
}

// newHSMBackup builds the full backup and restore endpoints' handler.
func (s *Server) newHSMBackup() *api.HSMBackup {
	return &api.HSMBackup{
		Keys: func() (*keys.Service, error) {
			id, err := s.ident()
			if err != nil {
				return nil, err
			}
			return id.keys, nil
		},
		SD:    func() (*secdomain.Service, error) { return s.sd, nil },
		Store: dirBackups{root: filepath.Join(s.cfg.DataDir, hsmBackupDir)},
	}
}
