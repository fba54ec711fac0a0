package secrets

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// The scheduler's index lives outside any vault, ordered by due time, so RunDue reads only
// the entries that are due:
//
//	secretschedule/purge/<due, 20 decimal digits>/<tenant>/vaults/<vault>/<name>
//
// The value is a scheduleEntry. A secret's record names the entry written for it
// (PurgeIndex); Delete writes it, Recover and Purge remove it in the same transaction, and an
// entry the secret no longer names is stale and dropped.
const (
	schedulePrefix = "secretschedule/"
	purgePrefix    = schedulePrefix + "purge/"
)

// scheduleEntry says which secret an index entry is for.
type scheduleEntry struct {
	TenantID string `json:"tenantId"`
	Vault    string `json:"vault"`
	Name     string `json:"name"` // lower-cased
}

// RunDue purges, across all vaults, the soft-deleted secrets whose scheduled purge date is at
// or before now (purge protection does not stop this system purge). It reads only the due
// entries of its index. A failure on one secret does not stop the others; the errors are
// joined and the failed entries are retried on the next run. While the purge hooks' gate
// holds purges (the clock jumped forward) it purges nothing; each purge done is reported to
// the hooks.
func (s *Service) RunDue(ctx context.Context, now time.Time) (purged int, err error) {
	now = now.UTC().Truncate(time.Second)
	if hold, err := s.hooks.Hold(ctx, now); hold {
		return 0, err
	}
	var errs []error
	err = records.EachDue(ctx, s.store, purgePrefix, now, func(key string, e scheduleEntry) error {
		done, err := s.purgeDue(ctx, key, e, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("purge secret %s/%s/%s: %w", e.TenantID, e.Vault, e.Name, err))
		}
		if done {
			purged++
		}
		return nil
	})
	return purged, errors.Join(append(errs, err)...)
}

// purgeDue performs one scheduled purge; a stale entry is dropped.
func (s *Service) purgeDue(ctx context.Context, key string, e scheduleEntry, now time.Time) (bool, error) {
	sc, err := newScope(tenancy.Vault{TenantID: e.TenantID, Kind: tenancy.KindVault, Name: e.Vault}, "")
	if err != nil || !records.ValidName(e.Name) {
		return false, s.store.Delete(ctx, key) // names no valid secret: unusable
	}
	err = s.purge(ctx, sc, e.Name, e.Name, now, key)
	if errors.Is(err, records.ErrStale) {
		return false, sc.secrets().DropUnowned(ctx, s.store, e.Name, key, func(m *secretRecord) bool { return m.PurgeIndex == key })
	}
	if err != nil {
		return false, err
	}
	due, _ := records.DueOf(purgePrefix, key)
	s.hooks.Done(records.Purged{TenantID: e.TenantID, Kind: tenancy.KindVault, Vault: e.Vault, Path: "deletedsecrets/" + e.Name, Due: due})
	return true, nil
}
