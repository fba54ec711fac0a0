package keys

import (
	"context"
	"fmt"

	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// NamedBackup is one key's Backup blob in a whole-store backup.
type NamedBackup struct {
	Name string `json:"name"`
	Blob []byte `json:"blob"`
}

// BackupAll returns a Backup blob of every live key of v (managed HSM full backup).
// Certificates' managed keys are left out: they are backed up with their certificates.
func (s *Service) BackupAll(ctx context.Context, v tenancy.Vault) ([]NamedBackup, error) {
	sc, err := newScope(v, "")
	if err != nil {
		return nil, err
	}
	index, err := records.ListAll(ctx, s.store, sc.liveIndex())
	if err != nil {
		return nil, err
	}
	out := make([]NamedBackup, 0, len(index))
	for _, k := range index {
		lc := k[len(sc.liveIndex()):]
		meta, err := readLive(ctx, s.store, sc, lc, lc)
		if isNotFound(err) {
			continue // deleted since the index was read
		}
		if err != nil {
			return nil, err
		}
		if meta.Managed {
			continue
		}
		b, err := s.Backup(ctx, v, meta.Name)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("back up key %s: %w", meta.Name, err)
		}
		out = append(out, NamedBackup{Name: meta.Name, Blob: b.Value})
	}
	return out, nil
}

// RestoreAll restores the given keys' Backup blobs into v in one transaction: every blob is
// opened and its handles loaded first, and if any blob is refused or any name is taken
// (live or deleted), nothing is written.
func (s *Service) RestoreAll(ctx context.Context, v tenancy.Vault, base string, blobs []NamedBackup) ([]KeyBundle, error) {
	sealer, err := s.sealerFor(ctx, v)
	if err != nil {
		return nil, err
	}
	sc, err := newScope(v, base)
	if err != nil {
		return nil, err
	}
	bodies := make([]*backupBody, 0, len(blobs))
	done := false
	defer func() {
		for _, b := range bodies {
			if !done {
				s.undoRestore(ctx, b)
			}
			b.clear()
		}
	}()
	seen := map[string]bool{}
	for _, nb := range blobs {
		body, err := s.prepareRestore(ctx, sealer, sc, nb.Blob)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", nb.Name, err)
		}
		bodies = append(bodies, body)
		lc, _ := checkName(body.Name)
		if seen[lc] {
			return nil, badParam("the backup holds key %s twice", body.Name)
		}
		seen[lc] = true
	}
	out := make([]KeyBundle, 0, len(bodies))
	err = s.store.Txn(ctx, func(tx storage.Tx) error {
		out = out[:0]
		for _, body := range bodies {
			b, err := restoreTx(ctx, tx, sc, body)
			if err != nil {
				return err
			}
			out = append(out, b)
		}
		return nil
	})
	done = err == nil
	return out, err
}
