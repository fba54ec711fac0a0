package keys

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// The scheduler's index lives outside any vault, ordered by due time, so RunDue reads only
// the entries that are due:
//
//	keyschedule/rotate/<due, 20 decimal digits>/<tenant>/<kind>/<vault>/<name>
//	keyschedule/purge/<due, 20 decimal digits>/<tenant>/<kind>/<vault>/<name>
//
// The value is a scheduleEntry. A key's record names the entries written for it
// (RotateIndex, PurgeIndex); every change that moves a due time replaces the entry in the
// same transaction, and an entry the key no longer names is stale and dropped.
const (
	schedulePrefix = "keyschedule/"
	rotatePrefix   = schedulePrefix + "rotate/"
	purgePrefix    = schedulePrefix + "purge/"
)

// scheduleEntry says which key an index entry is for.
type scheduleEntry struct {
	TenantID string       `json:"tenantId"`
	Kind     tenancy.Kind `json:"kind"`
	Vault    string       `json:"vault"`
	Name     string       `json:"name"` // lower-cased
	Version  string       `json:"version,omitempty"`
}

// scheduleKey is the index key of a due time for a key.
func scheduleKey(prefix string, due int64, sc scope, lc string) string {
	seg, _ := kindSegment(sc.vault.Kind)
	return records.ScheduleKey(prefix, due, sc.vault.TenantID+"/"+seg+"/"+sc.vault.Name+"/"+lc)
}

// reschedule replaces the key's rotation entry after a change of its latest version, its
// policy or its deletion state. The caller writes meta.
func reschedule(ctx context.Context, tx storage.Tx, sc scope, lc string, meta *keyRecord, latest *versionRecord) error {
	if meta.RotateIndex != "" {
		if err := tx.Delete(ctx, meta.RotateIndex); err != nil {
			return err
		}
		meta.RotateIndex = ""
	}
	if meta.Deleted != nil {
		return nil
	}
	due, ok := rotationDue(meta.Policy, latest)
	if !ok {
		return nil
	}
	key := scheduleKey(rotatePrefix, due.Unix(), sc, lc)
	entry := scheduleEntry{TenantID: sc.vault.TenantID, Kind: sc.vault.Kind, Vault: sc.vault.Name, Name: lc, Version: latest.Version}
	if err := records.Put(ctx, tx, key, entry); err != nil {
		return err
	}
	meta.RotateIndex = key
	return nil
}

// RunDue performs every automatic action due at now, across all vaults: it purges the
// soft-deleted keys whose scheduled purge date has passed (purge protection does not stop
// this system purge) and rotates the keys whose rotation policy's Rotate trigger has fired
// (timeAfterCreate after the latest version's creation, or timeBeforeExpiry before its
// expiry). It reads only the due entries of its index. A failure on one key does not stop the
// others; the errors are joined and the failed entries are retried on the next run. While the
// purge hooks' gate holds purges (the clock jumped forward) no key is purged, and rotations
// still run; each scheduled purge done is reported to the hooks. Notify actions are not
// performed (Coffer has no event sink yet).
func (s *Service) RunDue(ctx context.Context, now time.Time) (rotated, purged int, err error) {
	now = now.UTC().Truncate(time.Second)
	var errs []error
	hold, err := s.hooks.Hold(ctx, now)
	if hold {
		return rotated, purged, errors.Join(err, s.runRotations(ctx, now, &rotated))
	}
	err = records.EachDue(ctx, s.store, purgePrefix, now, func(key string, e scheduleEntry) error {
		sc, err := newScope(tenancy.Vault{TenantID: e.TenantID, Kind: e.Kind, Name: e.Vault}, "")
		if err != nil {
			return s.store.Delete(ctx, key) // names no valid vault: unusable
		}
		destroyed, err := s.purge(ctx, sc, e.Name, e.Name, now, key)
		switch {
		case errors.Is(err, records.ErrStale):
			err = sc.keys().DropUnowned(ctx, s.store, e.Name, key, func(m *keyRecord) bool { return m.PurgeIndex == key })
			if err != nil {
				errs = append(errs, fmt.Errorf("drop stale purge entry of %s/%s/%s: %w", e.TenantID, e.Vault, e.Name, err))
			}
		case err != nil:
			errs = append(errs, fmt.Errorf("purge %s/%s/%s: %w", e.TenantID, e.Vault, e.Name, err))
		default:
			purged++
			due, _ := records.DueOf(purgePrefix, key)
			s.hooks.Done(records.Purged{TenantID: e.TenantID, Kind: e.Kind, Vault: e.Vault, Path: "deletedkeys/" + e.Name, Due: due, Destroyed: destroyed})
		}
		return nil
	})
	if err != nil {
		return rotated, purged, errors.Join(append(errs, err)...)
	}
	if err := s.runRotations(ctx, now, &rotated); err != nil {
		errs = append(errs, err)
	}
	return rotated, purged, errors.Join(errs...)
}

// runRotations performs the rotations due at now, counting them in rotated; a failure on one
// key does not stop the others.
func (s *Service) runRotations(ctx context.Context, now time.Time, rotated *int) error {
	var errs []error
	err := records.EachDue(ctx, s.store, rotatePrefix, now, func(key string, e scheduleEntry) error {
		sc, err := newScope(tenancy.Vault{TenantID: e.TenantID, Kind: e.Kind, Name: e.Vault}, "")
		if err != nil {
			return s.store.Delete(ctx, key) // names no valid vault: unusable
		}
		ok, err := s.rotateDue(ctx, sc, e, key, now)
		switch {
		case errors.Is(err, errStale):
			err = sc.keys().DropUnowned(ctx, s.store, e.Name, key, func(m *keyRecord) bool { return m.RotateIndex == key })
			if err != nil {
				errs = append(errs, fmt.Errorf("drop stale rotation entry of %s/%s/%s: %w", e.TenantID, e.Vault, e.Name, err))
			}
		case err != nil:
			errs = append(errs, fmt.Errorf("rotate %s/%s/%s: %w", e.TenantID, e.Vault, e.Name, err))
		case ok:
			*rotated++
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// rotateDue performs one scheduled rotation. It reports errStale if the key changed since
// the entry was written.
func (s *Service) rotateDue(ctx context.Context, sc scope, e scheduleEntry, key string, now time.Time) (bool, error) {
	meta, err := readLive(ctx, s.store, sc, e.Name, e.Name)
	if isNotFound(err) {
		return false, errStale
	}
	if err != nil {
		return false, err
	}
	if meta.RotateIndex != key || meta.Latest != e.Version {
		return false, errStale
	}
	latest, err := readVersion(ctx, s.store, sc, e.Name, meta, "")
	if err != nil {
		return false, err
	}
	if due, ok := rotationDue(meta.Policy, latest); !ok || due.After(now) {
		return false, errStale
	}
	rec, err := s.rotated(ctx, sc, meta, latest, now)
	if err != nil {
		return false, err
	}
	if _, err := s.commit(ctx, sc, e.Name, meta.Name, rec, commitRotate, expectation{latest: e.Version, index: key}); err != nil {
		return false, err
	}
	return true, nil
}
