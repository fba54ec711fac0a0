package certificates

import (
	"context"
	"errors"

	"github.com/coffer-kms/coffer/internal/attrs"
	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Get returns a certificate version (GetCertificate); version "" is the latest.
func (s *Service) Get(ctx context.Context, v tenancy.Vault, base, name, version string) (CertificateBundle, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return CertificateBundle{}, err
	}
	if version, err = checkVersion(version); err != nil {
		return CertificateBundle{}, err
	}
	meta, err := readLive(ctx, s.store, sc, lc, name)
	if err != nil {
		return CertificateBundle{}, err
	}
	ver, err := readVersion(ctx, s.store, sc, lc, meta, version)
	if err != nil {
		return CertificateBundle{}, err
	}
	return sc.bundle(meta, ver), nil
}

// Update changes a version's enabled flag and tags, and the certificate's policy
// (UpdateCertificate). The key and secret versions follow the enabled flag.
func (s *Service) Update(ctx context.Context, v tenancy.Vault, base, name, version string, p UpdateParams) (CertificateBundle, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return CertificateBundle{}, err
	}
	if version, err = checkVersion(version); err != nil {
		return CertificateBundle{}, err
	}
	if err := checkTags(p.Tags); err != nil {
		return CertificateBundle{}, err
	}
	now := s.clock().Unix()
	var out CertificateBundle
	err = s.store.Txn(ctx, func(tx storage.Tx) error {
		meta, err := readLive(ctx, tx, sc, lc, name)
		if err != nil {
			return err
		}
		ver, err := readVersion(ctx, tx, sc, lc, meta, version)
		if err != nil {
			return err
		}
		if p.Policy != nil {
			np, err := mergePolicy(meta.Policy, p.Policy)
			if err != nil {
				return err
			}
			meta.Policy, meta.PolicyUpdated = np, now
		}
		if a := p.Attributes; a != nil && a.Enabled != nil && *a.Enabled != ver.Enabled {
			ver.Enabled = *a.Enabled
			nbf, exp := i64(ver.NotBefore), i64(ver.Expires)
			if err := s.keys.UpdateManaged(ctx, tx, sc.vault, meta.Name, ver.Version, ver.Enabled, nbf, exp); err != nil {
				return err
			}
			if err := s.secrets.UpdateManaged(ctx, tx, sc.vault, meta.Name, ver.Version, ver.Enabled, nbf, exp); err != nil {
				return err
			}
		}
		if p.Tags != nil {
			ver.Tags = attrs.CopyTags(p.Tags)
		}
		ver.Updated = now
		if err := records.Put(ctx, tx, sc.versionPath(lc, ver.Version), ver); err != nil {
			return err
		}
		if ver.Version == meta.Latest {
			if err := scheduleRenewal(ctx, tx, sc, lc, meta, ver); err != nil {
				return err
			}
		}
		if err := records.Put(ctx, tx, sc.metaPath(lc), meta); err != nil {
			return err
		}
		out = sc.bundle(meta, ver)
		return nil
	})
	return out, err
}

// GetPolicy returns a certificate's policy (GetCertificatePolicy), also while its first
// version is still pending.
func (s *Service) GetPolicy(ctx context.Context, v tenancy.Vault, base, name string) (Policy, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return Policy{}, err
	}
	meta, err := readCert(ctx, s.store, sc, lc, name)
	if err != nil {
		return Policy{}, err
	}
	if meta.Deleted != nil {
		return Policy{}, lifecycle.Missing(name, "")
	}
	return *sc.policy(meta, s.latestEnabled(ctx, sc, lc, meta)), nil
}

// latestEnabled is the enabled flag of the latest version (true while none exists).
func (s *Service) latestEnabled(ctx context.Context, sc scope, lc string, meta *certRecord) bool {
	if meta.Latest == "" {
		return true
	}
	ver, err := readVersion(ctx, s.store, sc, lc, meta, "")
	return err != nil || ver.Enabled
}

// UpdatePolicy replaces the sections of the policy the update carries
// (UpdateCertificatePolicy); the next version (renewal) is made under the new policy. An
// issuer it names must exist in the vault (ErrIssuerNotFound), as at create.
func (s *Service) UpdatePolicy(ctx context.Context, v tenancy.Vault, base, name string, upd Policy) (Policy, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return Policy{}, err
	}
	now := s.clock().Unix()
	var out Policy
	err = s.store.Txn(ctx, func(tx storage.Tx) error {
		meta, err := readCert(ctx, tx, sc, lc, name)
		if err != nil {
			return err
		}
		if meta.Deleted != nil {
			return lifecycle.Missing(name, "")
		}
		np, err := mergePolicy(meta.Policy, &upd)
		if err != nil {
			return err
		}
		// A named issuer must exist, as at create: a policy naming none could never renew.
		if n := np.Issuer.Name; n != IssuerSelf && n != IssuerUnknown {
			if _, err := readIssuer(ctx, tx, sc, n); err != nil {
				return err
			}
		}
		meta.Policy, meta.PolicyUpdated = np, now
		enabled := true
		if meta.Latest != "" {
			ver, err := readVersion(ctx, tx, sc, lc, meta, "")
			if err != nil {
				return err
			}
			enabled = ver.Enabled
			if err := scheduleRenewal(ctx, tx, sc, lc, meta, ver); err != nil {
				return err
			}
		}
		if err := records.Put(ctx, tx, sc.metaPath(lc), meta); err != nil {
			return err
		}
		out = *sc.policy(meta, enabled)
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

// List returns one page of the vault's certificates (GetCertificates), each as its latest
// version with a versionless id; certificates whose first version is still pending are
// listed (without validity) only with IncludePending.
func (s *Service) List(ctx context.Context, v tenancy.Vault, base string, opts ListOptions) (Page[CertificateItem], error) {
	sc, err := newScope(v, base)
	if err != nil {
		return Page[CertificateItem]{}, err
	}
	return page(records.PageItems(ctx, s.store, sc.liveIndex(), opts.MaxResults, opts.SkipToken, records.ValidName, func(lc string) (CertificateItem, bool, error) {
		meta, err := readCert(ctx, s.store, sc, lc, lc)
		if isNotFound(err) || (err == nil && meta.Deleted != nil) {
			return CertificateItem{}, false, nil
		}
		if err != nil {
			return CertificateItem{}, false, err
		}
		if meta.Latest == "" {
			pending := CertificateItem{ID: sc.id(meta.Name, ""), Attributes: Attributes{Enabled: boolp(meta.Pending != nil && meta.Pending.Enabled)}}
			return pending, opts.IncludePending, nil
		}
		ver, err := readVersion(ctx, s.store, sc, lc, meta, "")
		if err != nil {
			return CertificateItem{}, false, err
		}
		return sc.item(meta, ver, false), true, nil
	}))
}

// ListVersions returns one page of a certificate's versions (GetCertificateVersions).
func (s *Service) ListVersions(ctx context.Context, v tenancy.Vault, base, name string, opts ListOptions) (Page[CertificateItem], error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return Page[CertificateItem]{}, err
	}
	meta, err := readLive(ctx, s.store, sc, lc, name)
	if err != nil {
		return Page[CertificateItem]{}, err
	}
	return page(records.ListVersions(ctx, s.store, sc.certs(), lc, opts.MaxResults, opts.SkipToken, func(ver *versionRecord) CertificateItem {
		return sc.item(meta, ver, true)
	}))
}

// GetOperation returns the certificate's operation (GetCertificateOperation).
func (s *Service) GetOperation(ctx context.Context, v tenancy.Vault, base, name string) (Operation, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return Operation{}, err
	}
	meta, err := readCert(ctx, s.store, sc, lc, name)
	if isNotFound(err) {
		return Operation{}, noOperation(name)
	}
	if err != nil {
		return Operation{}, err
	}
	if meta.Deleted != nil || meta.Pending == nil {
		return Operation{}, noOperation(name)
	}
	return sc.operation(meta), nil
}

// UpdateOperation requests cancellation of an operation in progress
// (UpdateCertificateOperation): it becomes cancelled and its CSR key is dropped (an HSM
// key made for it is destroyed in the token).
func (s *Service) UpdateOperation(ctx context.Context, v tenancy.Vault, base, name string, p OperationUpdate) (Operation, error) {
	if p.CancellationRequested == nil {
		return Operation{}, badParam("cancellation_requested is missing.")
	}
	return s.changeOperation(ctx, v, base, name, func(meta *certRecord) error {
		if *p.CancellationRequested && meta.Pending.Status == statusInProgress {
			meta.Pending.Cancel = true
			meta.Pending.Status, meta.Pending.StatusDetails = statusCancelled, "The operation was cancelled."
		}
		return nil
	}, false)
}

// DeleteOperation removes the operation (DeleteCertificateOperation) and returns it; a
// certificate that had no version yet disappears with it, and so does its CSR key.
func (s *Service) DeleteOperation(ctx context.Context, v tenancy.Vault, base, name string) (Operation, error) {
	return s.changeOperation(ctx, v, base, name, func(meta *certRecord) error { return nil }, true)
}

// changeOperation applies change to a certificate's operation in one transaction. An
// operation that is no longer in progress afterwards (or removed) loses its CSR key.
func (s *Service) changeOperation(ctx context.Context, v tenancy.Vault, base, name string, change func(*certRecord) error, remove bool) (Operation, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return Operation{}, err
	}
	var out Operation
	var dropped []byte
	err = s.store.Txn(ctx, func(tx storage.Tx) error {
		dropped = nil
		meta, err := readCert(ctx, tx, sc, lc, name)
		if isNotFound(err) {
			return noOperation(name)
		}
		if err != nil {
			return err
		}
		if meta.Deleted != nil || meta.Pending == nil {
			return noOperation(name)
		}
		if err := change(meta); err != nil {
			return err
		}
		if remove || meta.Pending.Status != statusInProgress {
			dropped = dropPendingKey(meta.Pending)
		}
		out = sc.operation(meta)
		if remove {
			meta.Pending = nil
			if meta.Latest == "" {
				if err := tx.Delete(ctx, sc.liveIndex()+lc); err != nil {
					return err
				}
				return tx.Delete(ctx, sc.metaPath(lc))
			}
		}
		return records.Put(ctx, tx, sc.metaPath(lc), meta)
	})
	if err == nil {
		s.discardPending(ctx, sc, name, dropped)
	}
	return out, err
}
