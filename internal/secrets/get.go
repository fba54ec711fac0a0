package secrets

import (
	"context"
	"errors"

	"github.com/coffer-kms/coffer/internal/pki"
	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// resolve validates name and version and reads a live secret's version. The records may be
// the caches' own (records.GetShared): the caller reads them and renders a fresh bundle
// (bundle copies the tags; the strings are immutable), never changes them.
func (s *Service) resolve(ctx context.Context, sc scope, name, version string) (*secretRecord, *versionRecord, error) {
	lc, err := checkName(name)
	if err != nil {
		return nil, nil, err
	}
	if version, err = checkVersion(version); err != nil {
		return nil, nil, err
	}
	meta, found, err := s.metas.GetShared(ctx, s.store, sc.metaPath(lc))
	if err != nil {
		return nil, nil, err
	}
	if !found || meta.Deleted != nil {
		return nil, nil, lifecycle.Missing(name, "")
	}
	if version == "" {
		version = meta.Latest
	}
	ver, found, err := s.versions.GetShared(ctx, s.store, sc.versionPath(lc, version))
	if err != nil {
		return nil, nil, err
	}
	if !found {
		return nil, nil, lifecycle.Missing(meta.Name, version)
	}
	return meta, ver, nil
}

// Get returns a version of a secret with its value (GetSecret); version "" is the latest. A
// disabled version is refused with ErrSecretDisabled. As on Key Vault, nbf and exp do not
// stop a get: about-secrets.md, "Date-time controlled operations": "A secret's get
// operation will work for not-yet-valid and expired secrets, outside the nbf / exp window".
// A deleted secret is ErrSecretNotFound (GetDeleted reads it, without the value).
func (s *Service) Get(ctx context.Context, v tenancy.Vault, base, name, version string) (SecretBundle, error) {
	b, _, err := s.get(ctx, v, base, name, version)
	return b, err
}

// get is Get that also returns the version's record (the caches' own: read it, never
// change it).
func (s *Service) get(ctx context.Context, v tenancy.Vault, base, name, version string) (SecretBundle, *versionRecord, error) {
	sc, err := newScope(v, base)
	if err != nil {
		return SecretBundle{}, nil, err
	}
	meta, ver, err := s.resolve(ctx, sc, name, version)
	if err != nil {
		return SecretBundle{}, nil, err
	}
	if !ver.Enabled {
		return SecretBundle{}, nil, disabled("get")
	}
	return sc.bundle(meta, ver, true), ver, nil
}

// GetAs is Get with Key Vault's outContentType: a certificate-backed secret stored as
// PKCS#12 can be read as PEM (and the reverse). Other secrets, and an empty or equal content
// type, are returned as stored. Converting needs the private key in the content, so the
// secrets of non-exportable certificates are refused. The certificates keep their order:
// the leaf goes where the certificate's preserveCertOrder put it (the version's LeafAt,
// which a PKCS#12 content with its key cannot hold: that always starts with the leaf), else
// where the stored content has it; PKCS#12 output with the key still starts with the leaf
// (pki.EncodeAt).
func (s *Service) GetAs(ctx context.Context, v tenancy.Vault, base, name, version, outContentType string) (SecretBundle, error) {
	b, ver, err := s.get(ctx, v, base, name, version)
	if err != nil || outContentType == "" || !b.Managed || b.ContentType == outContentType || b.Value == nil {
		return b, err
	}
	key, chain, leafAt, _, err := pki.DecodeAt(string(*b.Value), "")
	if err != nil {
		return SecretBundle{}, badParam("The secret cannot be converted to %s: %s", outContentType, err.Error())
	}
	if ver.LeafAt > 0 && ver.LeafAt < len(chain) {
		leafAt = ver.LeafAt
	}
	out, err := pki.EncodeAt(outContentType, key, chain, leafAt)
	if err != nil {
		return SecretBundle{}, badParam("The secret cannot be converted to %s: %s", outContentType, err.Error())
	}
	v2 := Value(out)
	b.Value, b.ContentType = &v2, outContentType
	return b, nil
}

// Update changes the mutable fields of a version (UpdateSecret): enabled, nbf, exp, tags and
// contentType; version "" is the latest. exp must stay after nbf. The answer has no value.
// A disabled version can be updated (that is how it is enabled again).
func (s *Service) Update(ctx context.Context, v tenancy.Vault, base, name, version string, p UpdateParams) (SecretBundle, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return SecretBundle{}, err
	}
	if version, err = checkVersion(version); err != nil {
		return SecretBundle{}, err
	}
	if p.ContentType != nil {
		if err := checkContentType(*p.ContentType); err != nil {
			return SecretBundle{}, err
		}
	}
	if err := checkTags(p.Tags); err != nil {
		return SecretBundle{}, err
	}
	if a := p.Attributes; a != nil {
		if err := checkWindow(a.NotBefore, a.Expires); err != nil {
			return SecretBundle{}, err
		}
	}
	now := s.clock().Unix()
	var out SecretBundle
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
		if p.ContentType != nil {
			ver.ContentType = *p.ContentType
		}
		if p.Tags != nil {
			ver.Tags = copyTags(p.Tags)
		}
		ver.Updated = now
		if err := records.Put(ctx, tx, sc.versionPath(lc, ver.Version), ver); err != nil {
			return err
		}
		out = sc.bundle(meta, ver, false)
		return nil
	})
	if err != nil {
		return SecretBundle{}, err
	}
	return out, nil
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

// List returns one page of the vault's secrets (GetSecrets), each as its latest version with
// a versionless id and no value. Deleted secrets are not listed; disabled ones are.
func (s *Service) List(ctx context.Context, v tenancy.Vault, base string, opts ListOptions) (Page[SecretItem], error) {
	sc, err := newScope(v, base)
	if err != nil {
		return Page[SecretItem]{}, err
	}
	return page(records.ListLive(ctx, s.store, sc.secrets(), opts.MaxResults, opts.SkipToken, func(meta *secretRecord, ver *versionRecord) SecretItem {
		return sc.item(meta, ver, false)
	}))
}

// ListVersions returns one page of a secret's versions (GetSecretVersions), each with its
// versioned id and no value, in no particular order.
func (s *Service) ListVersions(ctx context.Context, v tenancy.Vault, base, name string, opts ListOptions) (Page[SecretItem], error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return Page[SecretItem]{}, err
	}
	meta, err := readLive(ctx, s.store, sc, lc, name)
	if err != nil {
		return Page[SecretItem]{}, err
	}
	return page(records.ListVersions(ctx, s.store, sc.secrets(), lc, opts.MaxResults, opts.SkipToken, func(ver *versionRecord) SecretItem {
		return sc.item(meta, ver, true)
	}))
}
