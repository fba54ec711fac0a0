package records

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/coffer-kms/coffer/internal/names"
	"github.com/coffer-kms/coffer/internal/storage"
)

// Deletion is a soft delete as the per-name record of a key, secret or certificate stores
// it (its "deleted" member). Dates are unix seconds.
type Deletion struct {
	Date      int64 `json:"date"`
	PurgeDate int64 `json:"purgeDate"`
}

// Head points at the fields of a per-name record that the lifecycle code below reads and
// writes. Each kind keeps its own record type, and so its own JSON.
type Head struct {
	Name       *string    // display casing
	Latest     *string    // the current version; "" while there is none
	Deleted    **Deletion // nil while the object is live
	PurgeIndex *string    // the purge schedule entry written when it was deleted
}

// Kind describes one kind of versioned vault object (keys, secrets, certificates) to the
// lifecycle code below: M is its per-name record and V its version record. Under a vault's
// prefix, with <name> lower-cased, a kind keeps
//
//	<Object><name>/meta                 M
//	<Object><name>/versions/<version>   V
//	<Index>live/<name>                  empty: the object is live (List pages over these)
//	<Index>deleted/<name>               empty: the object is soft-deleted (ListDeleted)
//
// and writes an object's purge entry at ScheduleKey(PurgePrefix, purge date, <the vault's
// prefix without "tenants/"><name>). Every change rewrites records and index entries in one
// transaction.
type Kind[M, V any] struct {
	Object, Index, PurgePrefix string
	// Head returns the lifecycle fields of a per-name record.
	Head func(*M) Head
	// Usable, if set, reports whether a version record can be served; one that cannot is
	// not found.
	Usable func(*V) bool
	// NotFound is the kind's error for a name (and version) with no live object.
	NotFound func(name, version string) error
	// NotDeleted is its error for a get or purge of a deleted object under a name with no
	// soft-deleted object (Key Vault's "Deleted Key not found: <name>"), live or not.
	NotDeleted func(name string) error
	// PurgeProtected is its refusal of a user purge before the purge date (purgeDate, unix
	// seconds) while the vault has purge protection.
	PurgeProtected func(name string, purgeDate int64) error
	// PurgeHeld is its refusal of a user purge of a purge-protected object after its purge
	// date while the PurgeGate holds purges (the clock jumped forward).
	PurgeHeld func(name string) error
}

// Objects is a kind's records in one vault. Prefix is the vault's:
// tenants/<tenant>/<vaults|managedhsms>/<vault>/.
type Objects[M, V any] struct {
	*Kind[M, V]
	Prefix string
}

// MetaPath is the path of an object's per-name record.
func (o Objects[M, V]) MetaPath(lc string) string { return o.Prefix + o.Object + lc + "/meta" }

// VersionsPrefix is the prefix of an object's version records.
func (o Objects[M, V]) VersionsPrefix(lc string) string {
	return o.Prefix + o.Object + lc + "/versions/"
}

// VersionPath is the path of one version record.
func (o Objects[M, V]) VersionPath(lc, ver string) string {
	return o.Prefix + o.Object + lc + "/versions/" + ver
}

// LiveIndex and DeletedIndex are the prefixes of the live and deleted indexes.
func (o Objects[M, V]) LiveIndex() string    { return o.Prefix + o.Index + "live/" }
func (o Objects[M, V]) DeletedIndex() string { return o.Prefix + o.Index + "deleted/" }

// get reads an object's per-name record; found is false if there is none.
func (o Objects[M, V]) get(ctx context.Context, r storage.Reader, lc string) (*M, bool, error) {
	var meta M
	found, err := Get(ctx, r, o.MetaPath(lc), &meta)
	return &meta, found, err
}

// live reports whether a record get found is of a live object with a version.
func (o Objects[M, V]) live(meta *M, found bool) bool {
	h := o.Head(meta)
	return found && *h.Deleted == nil && *h.Latest != ""
}

// version reads a version record; found is false if there is none or it is not Usable.
func (o Objects[M, V]) version(ctx context.Context, r storage.Reader, lc, version string) (*V, bool, error) {
	var ver V
	found, err := Get(ctx, r, o.VersionPath(lc, version), &ver)
	return &ver, found && (o.Usable == nil || o.Usable(&ver)), err
}

// Read reads an object's per-name record, live or deleted; NotFound if there is none.
func (o Objects[M, V]) Read(ctx context.Context, r storage.Reader, lc, name string) (*M, error) {
	meta, found, err := o.get(ctx, r, lc)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, o.NotFound(name, "")
	}
	return meta, nil
}

// ReadLive reads the record of an object that is not deleted and has a version.
func (o Objects[M, V]) ReadLive(ctx context.Context, r storage.Reader, lc, name string) (*M, error) {
	meta, found, err := o.get(ctx, r, lc)
	if err != nil {
		return nil, err
	}
	if !o.live(meta, found) {
		return nil, o.NotFound(name, "")
	}
	return meta, nil
}

// ReadVersion reads one version of an object ("" is the latest).
func (o Objects[M, V]) ReadVersion(ctx context.Context, r storage.Reader, lc string, meta *M, version string) (*V, error) {
	h := o.Head(meta)
	if version == "" {
		version = *h.Latest
	}
	ver, found, err := o.version(ctx, r, lc, version)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, o.NotFound(*h.Name, version)
	}
	return ver, nil
}

// ReadDeleted reads a soft-deleted object and its latest version; a name that is not
// soft-deleted is NotDeleted.
func (o Objects[M, V]) ReadDeleted(ctx context.Context, r storage.Reader, lc, name string) (*M, *V, error) {
	return o.readDeleted(ctx, r, lc, name, o.NotDeleted)
}

// ReadRecoverable is ReadDeleted for a recover, which Key Vault refuses for a name that is
// not soft-deleted with NotFound (the message of a get of a missing object), not NotDeleted.
func (o Objects[M, V]) ReadRecoverable(ctx context.Context, r storage.Reader, lc, name string) (*M, *V, error) {
	return o.readDeleted(ctx, r, lc, name, func(name string) error { return o.NotFound(name, "") })
}

func (o Objects[M, V]) readDeleted(ctx context.Context, r storage.Reader, lc, name string, notDeleted func(string) error) (*M, *V, error) {
	meta, found, err := o.get(ctx, r, lc)
	if err != nil {
		return nil, nil, err
	}
	if !found || *o.Head(meta).Deleted == nil {
		return nil, nil, notDeleted(name)
	}
	latest, err := o.ReadVersion(ctx, r, lc, meta, "")
	if err != nil {
		return nil, nil, err
	}
	return meta, latest, nil
}

// SoftDelete marks a live object deleted at now, to be purged after days: it moves the name
// to the deleted index and writes the purge entry (entry is its value). The caller writes
// meta.
func (o Objects[M, V]) SoftDelete(ctx context.Context, tx storage.Tx, lc string, meta *M, now time.Time, days int, entry any) error {
	h := o.Head(meta)
	*h.Deleted = &Deletion{Date: now.Unix(), PurgeDate: now.AddDate(0, 0, days).Unix()}
	if err := o.moveIndex(ctx, tx, lc, o.LiveIndex(), o.DeletedIndex()); err != nil {
		return err
	}
	if *h.PurgeIndex != "" {
		if err := tx.Delete(ctx, *h.PurgeIndex); err != nil {
			return err
		}
	}
	key := ScheduleKey(o.PurgePrefix, (*h.Deleted).PurgeDate, strings.TrimPrefix(o.Prefix, "tenants/")+lc)
	if err := Put(ctx, tx, key, entry); err != nil {
		return err
	}
	*h.PurgeIndex = key
	return nil
}

// Recover makes a deleted object live again: it drops the deletion and the purge entry and
// moves the name to the live index. The caller writes meta.
func (o Objects[M, V]) Recover(ctx context.Context, tx storage.Tx, lc string, meta *M) error {
	h := o.Head(meta)
	*h.Deleted = nil
	if *h.PurgeIndex != "" {
		if err := tx.Delete(ctx, *h.PurgeIndex); err != nil {
			return err
		}
		*h.PurgeIndex = ""
	}
	return o.moveIndex(ctx, tx, lc, o.DeletedIndex(), o.LiveIndex())
}

func (o Objects[M, V]) moveIndex(ctx context.Context, tx storage.Tx, lc, from, to string) error {
	if err := tx.Delete(ctx, from+lc); err != nil {
		return err
	}
	return tx.Put(ctx, to+lc, nil)
}

// Remove deletes every record and index entry of an object, its purge entry and the other
// schedule entries given.
func (o Objects[M, V]) Remove(ctx context.Context, tx storage.Tx, lc string, meta *M, entries ...string) error {
	versions, err := ListAll(ctx, tx, o.VersionsPrefix(lc))
	if err != nil {
		return err
	}
	return DeleteAll(ctx, tx, append(append(versions, entries...), *o.Head(meta).PurgeIndex, o.LiveIndex()+lc, o.DeletedIndex()+lc, o.MetaPath(lc))...)
}

// ErrStale is ReadPurgeable's answer to a scheduled purge that lost a race: the object was
// recovered, purged or deleted again since the entry was written, or is not due yet. The
// scheduler drops the entry (DropUnowned) and tells no client.
var ErrStale = errors.New("records: the object changed since its purge was scheduled")

// ReadPurgeable reads, in r, the record of a soft-deleted object that a purge at now may
// remove; the caller removes it. A scheduled purge (index: the purge entry it runs) needs the
// object to be deleted, to still own index and to be due, and is ErrStale otherwise; purge
// protection does not stop it, but gate (if set) may: its error is returned as is, and the
// entry stays for a later run. A user purge (index "") of a name with no soft-deleted object
// is NotDeleted; then refuse, if set, may refuse it with the kind's own error; then, while
// the vault has purge protection (protected), it is PurgeProtected before the purge date, and
// after it PurgeHeld if gate holds purges. The purge date is the one stored at the delete
// (a later change of the vault's retention does not move it).
func (o Objects[M, V]) ReadPurgeable(ctx context.Context, r storage.Reader, lc, name string, now time.Time, index string, protected bool, gate PurgeGate, refuse func(*M) error) (*M, error) {
	meta, found, err := o.get(ctx, r, lc)
	if err != nil {
		return nil, err // a storage failure is not a stale entry: it is retried on the next run
	}
	h := o.Head(meta)
	if index != "" {
		if !found || *h.Deleted == nil || *h.PurgeIndex != index || (*h.Deleted).PurgeDate > now.Unix() {
			return nil, ErrStale
		}
		if gate != nil {
			if err := gate(ctx, now); err != nil {
				return nil, err
			}
		}
		return meta, nil
	}
	if !found || *h.Deleted == nil {
		return nil, o.NotDeleted(name)
	}
	if refuse != nil {
		if err := refuse(meta); err != nil {
			return nil, err
		}
	}
	if protected && now.Unix() < (*h.Deleted).PurgeDate {
		return nil, o.PurgeProtected(*h.Name, (*h.Deleted).PurgeDate)
	}
	if protected && gate != nil {
		if err := gate(ctx, now); errors.Is(err, ErrPurgesHeld) {
			return nil, o.PurgeHeld(*h.Name)
		} else if err != nil {
			return nil, err
		}
	}
	return meta, nil
}

// DropUnowned deletes the schedule entry key unless the object's record still owns it.
func (o Objects[M, V]) DropUnowned(ctx context.Context, store storage.Backend, lc, key string, owns func(*M) bool) error {
	return store.Txn(ctx, func(tx storage.Tx) error {
		meta, found, err := o.get(ctx, tx, lc)
		if err != nil {
			return err
		}
		if found && owns(meta) {
			return nil
		}
		return tx.Delete(ctx, key)
	})
}

// ValidName accepts an index entry's name: a lower-cased object name.
func ValidName(s string) bool { return names.Object(s) && strings.ToLower(s) == s }

// PageItems reads one page of a listing (PageNames over prefix) and turns each name into an
// item; item reports ok false for a name to leave out (its object went away since the index
// was read). Value is never nil, so an empty page is "value":[].
func PageItems[T any](ctx context.Context, r storage.Reader, prefix string, maxResults int, skipToken string, valid func(string) bool, item func(name string) (T, bool, error)) ([]T, string, error) {
	names, next, err := PageNames(ctx, r, prefix, maxResults, skipToken, valid)
	if err != nil {
		return nil, "", err
	}
	out := make([]T, 0, len(names))
	for _, n := range names {
		it, ok, err := item(n)
		if err != nil {
			return nil, "", err
		}
		if ok {
			out = append(out, it)
		}
	}
	return out, next, nil
}

// ListLive reads one page of a vault's live objects, each as item of its latest version.
func ListLive[M, V, T any](ctx context.Context, r storage.Reader, o Objects[M, V], maxResults int, skipToken string, item func(*M, *V) T) ([]T, string, error) {
	return PageItems(ctx, r, o.LiveIndex(), maxResults, skipToken, ValidName, func(lc string) (T, bool, error) {
		var zero T
		meta, found, err := o.get(ctx, r, lc)
		if err != nil || !o.live(meta, found) {
			return zero, false, err // deleted or purged since the index was read
		}
		latest, err := o.ReadVersion(ctx, r, lc, meta, "")
		if err != nil {
			return zero, false, err
		}
		return item(meta, latest), true, nil
	})
}

// ListDeleted reads one page of a vault's soft-deleted objects, each as item of its latest
// version.
func ListDeleted[M, V, T any](ctx context.Context, r storage.Reader, o Objects[M, V], maxResults int, skipToken string, item func(*M, *V) T) ([]T, string, error) {
	return PageItems(ctx, r, o.DeletedIndex(), maxResults, skipToken, ValidName, func(lc string) (T, bool, error) {
		var zero T
		meta, found, err := o.get(ctx, r, lc)
		if err != nil || !found || *o.Head(meta).Deleted == nil {
			return zero, false, err // recovered or purged since the index was read
		}
		latest, found, err := o.version(ctx, r, lc, *o.Head(meta).Latest)
		if err != nil || !found {
			return zero, false, err
		}
		return item(meta, latest), true, nil
	})
}

// ListVersions reads one page of the versions of an object, each as item.
func ListVersions[M, V, T any](ctx context.Context, r storage.Reader, o Objects[M, V], lc string, maxResults int, skipToken string, item func(*V) T) ([]T, string, error) {
	return PageItems(ctx, r, o.VersionsPrefix(lc), maxResults, skipToken, names.Version, func(id string) (T, bool, error) {
		ver, found, err := o.version(ctx, r, lc, id)
		if err != nil || !found {
			var zero T
			return zero, false, err // gone since the listing was read
		}
		return item(ver), true, nil
	})
}
