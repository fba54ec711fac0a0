package keys

import (
	"context"
	"errors"

	"github.com/coffer-kms/coffer/internal/names"
	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Get returns a version of a key (GetKey); version "" is the latest. A deleted key is
// ErrKeyNotFound (GetDeleted reads it).
func (s *Service) Get(ctx context.Context, v tenancy.Vault, base, name, version string) (KeyBundle, error) {
	sc, err := newScope(v, base)
	if err != nil {
		return KeyBundle{}, err
	}
	meta, ver, err := s.resolveShared(ctx, sc, name, version)
	if err != nil {
		return KeyBundle{}, err
	}
	return sc.bundle(meta, ver), nil // bundle copies: nothing it returns aliases the records
}

// Update changes the mutable fields of a version (UpdateKey): enabled, nbf, exp, key_ops,
// tags and the release policy. exportable cannot change, exp must stay after nbf, and an
// immutable release policy cannot change at all.
func (s *Service) Update(ctx context.Context, v tenancy.Vault, base, name, version string, p UpdateParams) (KeyBundle, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return KeyBundle{}, err
	}
	if version, err = checkVersion(version); err != nil {
		return KeyBundle{}, err
	}
	ops, err := checkOps(p.KeyOps)
	if err != nil {
		return KeyBundle{}, err
	}
	if err := checkTags(p.Tags); err != nil {
		return KeyBundle{}, err
	}
	policy, err := checkReleasePolicy(p.ReleasePolicy)
	if err != nil {
		return KeyBundle{}, err
	}
	if a := p.Attributes; a != nil {
		if err := checkWindow(a.NotBefore, a.Expires); err != nil {
			return KeyBundle{}, err
		}
	}
	now := s.clock().Unix()
	var out KeyBundle
	err = s.store.Txn(ctx, func(tx storage.Tx) error {
		meta, err := readLive(ctx, tx, sc, lc, name)
		if err != nil {
			return err
		}
		if meta.Managed {
			return managedRefused("update", meta.Name)
		}
		ver, err := readVersion(ctx, tx, sc, lc, meta, version)
		if err != nil {
			return err
		}
		if a := p.Attributes; a != nil {
			if a.Exportable != nil && *a.Exportable != ver.Exportable {
				return badParam("attribute exportable cannot be changed after the key is created")
			}
			if a.Enabled != nil {
				ver.Enabled = *a.Enabled
			}
			if a.NotBefore != nil {
				ver.NotBefore = cloneI64(a.NotBefore)
			}
			if a.Expires != nil {
				ver.Expires = cloneI64(a.Expires)
			}
		}
		if err := checkWindow(ver.NotBefore, ver.Expires); err != nil {
			return err
		}
		if err := checkKEKUpdate(ver, ops); err != nil {
			return err
		}
		if ops != nil {
			ver.KeyOps = ops
		}
		if p.Tags != nil {
			ver.Tags = copyTags(p.Tags)
		}
		if policy != nil && !samePolicy(policy, ver.ReleasePolicy) {
			if ver.ReleasePolicy != nil && ver.ReleasePolicy.Immutable {
				return badParam("the release policy of this key version is immutable and cannot be changed")
			}
			ver.ReleasePolicy = policy
		}
		ver.Updated = now
		if err := records.Put(ctx, tx, sc.versionPath(lc, ver.Version), ver); err != nil {
			return err
		}
		if ver.Version == meta.Latest {
			if err := reschedule(ctx, tx, sc, lc, meta, ver); err != nil {
				return err
			}
			if err := records.Put(ctx, tx, sc.metaPath(lc), meta); err != nil {
				return err
			}
		}
		out = sc.bundle(meta, ver)
		return nil
	})
	return out, err
}

// page makes a listing's items a Page, reporting a bad listing request as BadParameter.
func page[T any](items []T, next string, err error) (Page[T], error) {
	if errors.Is(err, records.ErrPage) {
		return Page[T]{}, badParam("%s", records.PageMessage(err))
	}
	if err != nil {
		return Page[T]{}, err
	}
	return Page[T]{Value: items, NextToken: next}, nil
}

// validVersion accepts a version id.
func validVersion(s string) bool { return names.Version(s) }

// List returns one page of the vault's keys (GetKeys), each as its latest version with a
// versionless kid. Deleted keys are not listed.
func (s *Service) List(ctx context.Context, v tenancy.Vault, base string, opts ListOptions) (Page[KeyItem], error) {
	sc, err := newScope(v, base)
	if err != nil {
		return Page[KeyItem]{}, err
	}
	return page(records.ListLive(ctx, s.store, sc.keys(), opts.MaxResults, opts.SkipToken, func(meta *keyRecord, ver *versionRecord) KeyItem {
		return sc.item(meta, ver, false)
	}))
}

// ListVersions returns one page of a key's versions (GetKeyVersions), each with its
// versioned kid, in no particular order.
func (s *Service) ListVersions(ctx context.Context, v tenancy.Vault, base, name string, opts ListOptions) (Page[KeyItem], error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return Page[KeyItem]{}, err
	}
	meta, err := readLive(ctx, s.store, sc, lc, name)
	if err != nil {
		return Page[KeyItem]{}, err
	}
	return page(records.ListVersions(ctx, s.store, sc.keys(), lc, opts.MaxResults, opts.SkipToken, func(ver *versionRecord) KeyItem {
		return sc.item(meta, ver, true)
	}))
}
