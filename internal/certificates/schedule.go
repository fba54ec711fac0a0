package certificates

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// The scheduler's index lives outside any vault, ordered by due time:
//
//	certschedule/purge/<due, 20 digits>/<tenant>/vaults/<vault>/<name>
//	certschedule/renew/<due, 20 digits>/<tenant>/vaults/<vault>/<name>
//
// The value is a scheduleEntry. A certificate's record names the entries written for it
// (PurgeIndex, RenewIndex); an entry the record no longer names is stale and dropped.
const (
	schedulePrefix = "certschedule/"
	purgePrefix    = schedulePrefix + "purge/"
	renewPrefix    = schedulePrefix + "renew/"
)

// errStale is returned inside a transaction when a scheduled action lost a race.
var errStale = errors.New("certificates: the certificate changed since the action was scheduled")

type scheduleEntry struct {
	TenantID string `json:"tenantId"`
	Vault    string `json:"vault"`
	Name     string `json:"name"`
	Action   string `json:"action,omitempty"`
	Version  string `json:"version,omitempty"`
}

func scheduleKey(prefix string, due int64, sc scope, lc string) string {
	return records.ScheduleKey(prefix, due, sc.vault.TenantID+"/vaults/"+sc.vault.Name+"/"+lc)
}

// nextAction is the lifetime action of the policy due next for the latest version, if any:
// AutoRenew, or EmailContacts unless already recorded for this version.
func nextAction(meta *certRecord, latest *versionRecord) (string, int64, bool) {
	var action string
	var due int64
	for _, la := range meta.Policy.LifetimeActions {
		if la.Action.ActionType == ActionEmailContacts && meta.Notified == latest.Version {
			continue
		}
		var at int64
		switch {
		case la.Trigger.LifetimePercentage != nil:
			at = latest.NotBefore + (latest.Expires-latest.NotBefore)*int64(*la.Trigger.LifetimePercentage)/100
		case la.Trigger.DaysBeforeExpiry != nil:
			at = latest.Expires - int64(*la.Trigger.DaysBeforeExpiry)*86400
		default:
			continue
		}
		if action == "" || at < due {
			action, due = la.Action.ActionType, at
		}
	}
	return action, due, action != ""
}

// scheduleRenewal replaces the certificate's lifetime-action entry after a change of its
// latest version, policy or deletion state. The caller writes meta.
func scheduleRenewal(ctx context.Context, tx storage.Tx, sc scope, lc string, meta *certRecord, latest *versionRecord) error {
	if meta.RenewIndex != "" {
		if err := tx.Delete(ctx, meta.RenewIndex); err != nil {
			return err
		}
		meta.RenewIndex = ""
	}
	if meta.Deleted != nil || latest == nil || meta.Policy == nil {
		return nil
	}
	action, due, ok := nextAction(meta, latest)
	if !ok {
		return nil
	}
	key := scheduleKey(renewPrefix, due, sc, lc)
	entry := scheduleEntry{TenantID: sc.vault.TenantID, Vault: sc.vault.Name, Name: lc, Action: action, Version: latest.Version}
	if err := records.Put(ctx, tx, key, entry); err != nil {
		return err
	}
	meta.RenewIndex = key
	return nil
}

// RunDue performs every lifetime action due at now across all vaults: it purges the
// soft-deleted certificates whose retention has passed (their keys and secrets are purged
// by their own schedulers at the same date), renews the certificates whose AutoRenew
// trigger fired (a new version under the current policy) and records an Event for each
// EmailContacts trigger. A failure on one certificate does not stop the others. While the
// purge hooks' gate holds purges (the clock jumped forward) nothing is purged, and renewals
// and notices still run; each purge done is reported to the hooks.
func (s *Service) RunDue(ctx context.Context, now time.Time) (renewed, notified, purged int, err error) {
	now = now.UTC().Truncate(time.Second)
	var errs []error
	if hold, err := s.hooks.Hold(ctx, now); hold {
		renewed, notified, err2 := s.runActions(ctx, now)
		return renewed, notified, 0, errors.Join(err, err2)
	}
	err = records.EachDue(ctx, s.store, purgePrefix, now, func(key string, e scheduleEntry) error {
		sc, err := newScope(tenancy.Vault{TenantID: e.TenantID, Name: e.Vault}, "")
		if err != nil {
			return s.store.Delete(ctx, key)
		}
		err = s.store.Txn(ctx, func(tx storage.Tx) error {
			meta, err := sc.certs().ReadPurgeable(ctx, tx, e.Name, e.Name, now, key, false, s.hooks.Gate, nil)
			if err != nil {
				return err
			}
			return sc.certs().Remove(ctx, tx, e.Name, meta, meta.RenewIndex)
		})
		switch {
		case errors.Is(err, records.ErrStale):
			if err := s.dropIfUnowned(ctx, sc, e.Name, key); err != nil {
				errs = append(errs, fmt.Errorf("drop stale purge entry of certificate %s/%s/%s: %w", e.TenantID, e.Vault, e.Name, err))
			}
		case err != nil:
			errs = append(errs, fmt.Errorf("purge certificate %s/%s/%s: %w", e.TenantID, e.Vault, e.Name, err))
		default:
			purged++
			due, _ := records.DueOf(purgePrefix, key)
			s.hooks.Done(records.Purged{TenantID: e.TenantID, Kind: tenancy.KindVault, Vault: e.Vault, Path: "deletedcertificates/" + e.Name, Due: due})
		}
		return nil
	})
	if err != nil {
		return renewed, notified, purged, errors.Join(append(errs, err)...)
	}
	renewed, notified, err = s.runActions(ctx, now)
	return renewed, notified, purged, errors.Join(append(errs, err)...)
}

// runActions performs the renewals and notices due at now; a failure on one certificate does
// not stop the others.
func (s *Service) runActions(ctx context.Context, now time.Time) (renewed, notified int, err error) {
	var errs []error
	err = records.EachDue(ctx, s.store, renewPrefix, now, func(key string, e scheduleEntry) error {
		sc, err := newScope(tenancy.Vault{TenantID: e.TenantID, Name: e.Vault}, "")
		if err != nil {
			return s.store.Delete(ctx, key)
		}
		action, err := s.runAction(ctx, sc, e, key, now)
		switch {
		case errors.Is(err, errStale):
			if err := s.dropIfUnowned(ctx, sc, e.Name, key); err != nil {
				errs = append(errs, fmt.Errorf("drop stale %s entry of certificate %s/%s/%s: %w", e.Action, e.TenantID, e.Vault, e.Name, err))
			}
		case err != nil:
			errs = append(errs, fmt.Errorf("%s certificate %s/%s/%s: %w", e.Action, e.TenantID, e.Vault, e.Name, err))
		case action == ActionAutoRenew:
			renewed++
		default:
			notified++
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return renewed, notified, errors.Join(errs...)
}

// runAction performs one due lifetime action.
func (s *Service) runAction(ctx context.Context, sc scope, e scheduleEntry, key string, now time.Time) (string, error) {
	meta, err := readLive(ctx, s.store, sc, e.Name, e.Name)
	if err != nil && !isNotFound(err) {
		return "", err
	}
	if err != nil || meta.RenewIndex != key || meta.Latest != e.Version {
		return "", errStale
	}
	latest, err := readVersion(ctx, s.store, sc, e.Name, meta, "")
	if err != nil {
		return "", err
	}
	action, due, ok := nextAction(meta, latest)
	if !ok || action != e.Action || due > now.Unix() {
		return "", errStale
	}
	if action == ActionEmailContacts {
		return action, s.notify(ctx, sc, e, key, latest, now)
	}
	policy := meta.Policy
	d, err := s.draftFor(ctx, sc, e.Name, meta.Name, meta, policy, true, latest.Tags, false)
	if err != nil {
		return action, err
	}
	d.preserve = latest.PreserveOrder
	if err := s.issueDraft(ctx, sc, policy, &d); err != nil {
		return action, err
	}
	_, err = s.commitVersion(ctx, sc, e.Name, meta.Name, d,
		policy.SecretProps.ContentType, *policy.KeyProps.Exportable, func(m *certRecord) (*certRecord, error) {
			if m == nil || m.RenewIndex != key || m.Latest != e.Version {
				return nil, errStale
			}
			return m, nil
		})
	return action, err
}

// notify records an EmailContacts event for the latest version and reschedules.
func (s *Service) notify(ctx context.Context, sc scope, e scheduleEntry, key string, latest *versionRecord, now time.Time) error {
	return s.store.Txn(ctx, func(tx storage.Tx) error {
		meta, err := readLive(ctx, tx, sc, e.Name, e.Name)
		if err != nil && !isNotFound(err) {
			return err
		}
		if err != nil || meta.RenewIndex != key || meta.Latest != e.Version {
			return errStale
		}
		var contacts Contacts
		if _, err := records.Get(ctx, tx, sc.contactsPath(), &contacts); err != nil {
			return err
		}
		ev := Event{Time: now.Unix(), Certificate: meta.Name, Version: latest.Version, Expires: latest.Expires,
			Message: fmt.Sprintf("Certificate %s expires at %s.", meta.Name, time.Unix(latest.Expires, 0).UTC().Format(time.RFC3339))}
		for _, c := range contacts.Contacts {
			ev.Contacts = append(ev.Contacts, c.Email)
		}
		if err := records.Put(ctx, tx, fmt.Sprintf("%s%020d-%s", sc.eventsPrefix(), now.UnixNano(), records.NewVersion()[:8]), ev); err != nil {
			return err
		}
		s.log.Info("certificate expiry notice", "tenant", sc.vault.TenantID, "vault", sc.vault.Name, "certificate", meta.Name, "contacts", len(ev.Contacts))
		meta.Notified = latest.Version
		if err := scheduleRenewal(ctx, tx, sc, e.Name, meta, latest); err != nil {
			return err
		}
		return records.Put(ctx, tx, sc.metaPath(e.Name), meta)
	})
}

// Events returns the vault's recorded lifetime notices, oldest first (at most 1000).
func (s *Service) Events(ctx context.Context, v tenancy.Vault) ([]Event, error) {
	sc, err := newScope(v, "")
	if err != nil {
		return nil, err
	}
	page, err := s.store.List(ctx, sc.eventsPrefix(), storage.ListOptions{Limit: 1000})
	if err != nil {
		return nil, err
	}
	out := make([]Event, 0, len(page.Keys))
	for _, k := range page.Keys {
		var ev Event
		if found, err := records.Get(ctx, s.store, k, &ev); err != nil {
			return nil, err
		} else if found {
			out = append(out, ev)
		}
	}
	return out, nil
}

// dropIfUnowned removes an index entry unless the certificate's record still names it.
func (s *Service) dropIfUnowned(ctx context.Context, sc scope, lc, key string) error {
	return sc.certs().DropUnowned(ctx, s.store, lc, key, func(m *certRecord) bool { return m.RenewIndex == key || m.PurgeIndex == key })
}
