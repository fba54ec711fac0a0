package keys

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// provErr wraps a provider error with the operation. Errors of the provider's invalid-input
// classes also wrap ErrBadParameter; anything else (a token failure, say) stays internal.
func provErr(op string, err error) error {
	if errors.Is(err, provider.ErrKeyGone) {
		return fmt.Errorf("%w: %s: %s", ErrKeyMaterialGone, op, keyGoneHint)
	}
	for _, e := range []error{provider.ErrUnsupported, provider.ErrInvalidParameter, provider.ErrWrongKeyType, provider.ErrDecrypt, provider.ErrInvalidKey} {
		if errors.Is(err, e) {
			return fmt.Errorf("%w: %s: %w", ErrBadParameter, op, err)
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// checkKty validates a key type for the vault: plain oct keys live only in managed HSM
// pools (SECURITY-NOTES I8); oct-HSM needs a token (Service.checkSymmetric).
func checkKty(sc scope, kty provider.KeyType) error {
	switch kty {
	case provider.RSA, provider.EC, provider.RSAHSM, provider.ECHSM, provider.OctHSM:
		return nil
	case provider.Oct:
		if sc.vault.Kind != tenancy.KindManagedHSM {
			return badParam("key type %s is only offered by managed HSM pools, not by vaults", kty)
		}
		return nil
	}
	return badParam("key type %.20q is not supported: use RSA, EC, RSA-HSM, EC-HSM or oct-HSM", kty)
}

// specFor turns create parameters into a provider KeySpec with Key Vault's defaults.
func specFor(sc scope, p CreateParams) (provider.KeySpec, error) {
	if err := checkKty(sc, p.Kty); err != nil {
		return provider.KeySpec{}, err
	}
	spec := provider.KeySpec{Type: p.Kty, Store: sc.store(), SecurityDomain: sc.pool()}
	switch baseType(p.Kty) {
	case provider.RSA:
		spec.Size, spec.PublicExponent = p.KeySize, p.PublicExponent
		if spec.Size == 0 {
			spec.Size = 2048
		}
		if spec.Size != 2048 && spec.Size != 3072 && spec.Size != 4096 {
			return spec, badParam("RSA key size %d is not supported: use 2048, 3072 or 4096", spec.Size)
		}
	case provider.EC:
		spec.Curve = p.Curve
		if spec.Curve == "" {
			spec.Curve = provider.P256
		}
		switch spec.Curve {
		case provider.P256, provider.P384, provider.P521, provider.P256K:
		default:
			return spec, badParam("curve %.20q is not supported: use P-256, P-384, P-521 or P-256K", spec.Curve)
		}
	case provider.Oct:
		spec.Size = p.KeySize
		if spec.Size == 0 {
			spec.Size = 256
		}
		if spec.Size != 128 && spec.Size != 192 && spec.Size != 256 {
			return spec, badParam("oct key size %d is not supported: use 128, 192 or 256", spec.Size)
		}
	}
	if p.PublicExponent != 0 && baseType(p.Kty) != provider.RSA {
		return spec, badParam("public_exponent applies to RSA keys only")
	}
	return spec, nil
}

// draft is a new version's metadata, validated before any key material is made.
type draft struct {
	ops        []string
	enabled    bool
	nbf, exp   *int64
	exportable bool
	tags       map[string]string
	policy     *ReleasePolicy
}

// newDraft validates the attributes, key_ops, tags and release policy of a new version.
func newDraft(kty provider.KeyType, ops []string, attrs *KeyAttributes, tags map[string]string, rp *ReleasePolicy) (draft, error) {
	d := draft{enabled: true}
	var err error
	if d.ops, err = checkOps(ops); err != nil {
		return d, err
	}
	if d.ops == nil {
		d.ops = defaultOps(kty)
	}
	if attrs != nil {
		if attrs.Enabled != nil {
			d.enabled = *attrs.Enabled
		}
		d.nbf, d.exp = cloneI64(attrs.NotBefore), cloneI64(attrs.Expires)
		d.exportable = attrs.Exportable != nil && *attrs.Exportable
	}
	if err := checkWindow(d.nbf, d.exp); err != nil {
		return d, err
	}
	if err := checkTags(tags); err != nil {
		return d, err
	}
	d.tags = copyTags(tags)
	if d.policy, err = checkReleasePolicy(rp); err != nil {
		return d, err
	}
	return d, nil
}

// record builds the version record of a draft around a provider key.
func (d draft) record(key provider.Key, publicExponent int, now int64) *versionRecord {
	return &versionRecord{
		Version:        records.NewVersion(),
		Kty:            key.Type(),
		Size:           key.Size(),
		Curve:          key.Curve(),
		PublicExponent: publicExponent,
		Handle:         key.Handle(),
		Public:         (*storedJWK)(publicJWK(key.Public())),
		KeyOps:         d.ops,
		Enabled:        d.enabled,
		NotBefore:      d.nbf,
		Expires:        d.exp,
		Exportable:     d.exportable,
		Created:        now,
		Updated:        now,
		Tags:           d.tags,
		ReleasePolicy:  d.policy,
	}
}

// Create creates a key, or a new version of an existing one (CreateKey). Key Vault's
// defaults apply: RSA 2048, EC P-256, oct 256, all key_ops the type supports, enabled. A
// deleted name is refused with ErrDeletedButRecoverable.
func (s *Service) Create(ctx context.Context, v tenancy.Vault, base, name string, p CreateParams) (KeyBundle, error) {
	sc, err := newScope(v, base)
	if err != nil {
		return KeyBundle{}, err
	}
	if s.hsmPools && v.Kind == tenancy.KindManagedHSM {
		p.Kty = hsmType(p.Kty)
	}
	lc, err := checkName(name)
	if err != nil {
		return KeyBundle{}, err
	}
	if err := s.checkSymmetric(sc, p.Kty); err != nil {
		return KeyBundle{}, err
	}
	spec, err := specFor(sc, p)
	if err != nil {
		return KeyBundle{}, err
	}
	d, err := newDraft(p.Kty, p.KeyOps, p.Attributes, p.Tags, p.ReleasePolicy)
	if err != nil {
		return KeyBundle{}, err
	}
	spec.Exportable = d.exportable
	if err := checkKEKOps(spec.Type, d.ops, true); err != nil {
		return KeyBundle{}, err
	}
	if err := s.precheck(ctx, sc, lc, name, d); err != nil {
		return KeyBundle{}, err
	}
	if err := s.AdmitCreate(sc.vault, spec.Type, spec.Size); err != nil {
		return KeyBundle{}, err
	}
	key, err := s.generate(ctx, sc.vault, spec)
	if err != nil {
		return KeyBundle{}, provErr("create key", err)
	}
	rec := d.record(key, spec.PublicExponent, s.clock().Unix())
	return s.commit(ctx, sc, lc, name, rec, commitNew, expectation{})
}

// Import imports a private JWK as a new key or a new version of an existing one
// (ImportKey), or a BYOK transfer blob in key_hsm (byok.go). The provider validates the key
// material; only its public part is kept outside the provider's handle. A deleted name is refused with ErrDeletedButRecoverable.
func (s *Service) Import(ctx context.Context, v tenancy.Vault, base, name string, p ImportParams) (KeyBundle, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return KeyBundle{}, err
	}
	if p.Key == nil {
		return KeyBundle{}, badParam("key is missing: import needs a JSON web key")
	}
	jwk := *p.Key
	jwk.KID = ""
	if (p.HSM || len(jwk.T) > 0) && !strings.HasSuffix(string(jwk.Kty), "-HSM") {
		jwk.Kty += "-HSM"
	}
	if err := s.checkSymmetric(sc, jwk.Kty); err != nil {
		return KeyBundle{}, err
	}
	if err := checkKty(sc, jwk.Kty); err != nil {
		return KeyBundle{}, err
	}
	d, err := newDraft(jwk.Kty, p.Key.KeyOps, p.Attributes, p.Tags, p.ReleasePolicy)
	if err != nil {
		return KeyBundle{}, err
	}
	jwk.KeyOps = d.ops
	jwk.Exportable = d.exportable
	if err := checkKEKOps(jwk.Kty, d.ops, false); err != nil {
		return KeyBundle{}, err
	}
	if err := s.precheck(ctx, sc, lc, name, d); err != nil {
		return KeyBundle{}, err
	}
	var key provider.Key
	if len(jwk.T) > 0 {
		key, err = s.importTransfer(ctx, sc, &jwk)
	} else {
		// A private JWK with hsm true (or an -HSM kty) goes into the token as Key Vault and
		// Managed HSM take it (az keyvault key import --protection hsm; the azkeys client's
		// own TestImportKey): the provider wraps it in, and it never leaves in clear. A
		// pool's key goes to the pool's token, wrappable by its security domain only, like a
		// generated one.
		jwk.Store, jwk.SecurityDomain = sc.store(), isHSM(jwk.Kty) && sc.pool()
		var release func()
		if release, err = s.shareOp(ctx, sc.vault, jwk.Kty); err != nil {
			return KeyBundle{}, err
		}
		key, err = s.prov.Import(ctx, &jwk) // a software key's pairwise check signs
		release()
	}
	if err != nil {
		return KeyBundle{}, provErr("import key", err)
	}
	return s.commit(ctx, sc, lc, name, d.record(key, 0, s.clock().Unix()), commitNew, expectation{})
}

// precheck refuses a new version before any key material is made: the name is deleted, or
// the key is exportable without a release policy to give or inherit. commit checks again.
func (s *Service) precheck(ctx context.Context, sc scope, lc, name string, d draft) error {
	var meta keyRecord
	found, err := records.Get(ctx, s.store, sc.metaPath(lc), &meta)
	if err != nil {
		return err
	}
	if found && meta.Deleted != nil {
		return lifecycle.Deleted(name)
	}
	if d.exportable && d.policy == nil {
		if !found {
			return badParam("an exportable key needs a release_policy on its first version")
		}
		latest, err := readVersion(ctx, s.store, sc, lc, &meta, "")
		if err != nil {
			return err
		}
		if latest.ReleasePolicy == nil {
			return badParam("an exportable key needs a release_policy")
		}
	}
	return nil
}

// commitMode says what commit expects to find under the name.
type commitMode int

const (
	commitNew    commitMode = iota // create or import: live or absent
	commitRotate                   // rotate: live
)

// errStale is returned inside a transaction when a scheduled rotation lost a race.
var errStale = errors.New("keys: the key changed since the rotation was scheduled")

// expectation is what a scheduled rotation expects to find: the latest version and the
// schedule entry it was started from. The zero value expects nothing.
type expectation struct{ latest, index string }

// commit stores a new version as the latest of its key in one transaction, updating the
// listing index and the rotation schedule, and renders it. With an expectation (scheduled
// rotation) it fails with errStale unless the key is still as expected. If the commit fails
// the new key material is destroyed.
func (s *Service) commit(ctx context.Context, sc scope, lc, name string, rec *versionRecord, mode commitMode, expect expectation) (KeyBundle, error) {
	var out KeyBundle
	err := s.store.Txn(ctx, func(tx storage.Tx) error {
		r := *rec
		var meta keyRecord
		found, err := records.Get(ctx, tx, sc.metaPath(lc), &meta)
		if err != nil {
			return err
		}
		switch {
		case found && meta.Deleted != nil && mode == commitNew:
			return lifecycle.Deleted(name)
		case (!found || meta.Deleted != nil) && mode == commitRotate:
			return lifecycle.Missing(name, "")
		case expect.latest != "" && (meta.Latest != expect.latest || meta.RotateIndex != expect.index):
			return errStale
		case found && meta.Managed:
			return managedRefused("create a version of", meta.Name)
		}
		if !found {
			meta = keyRecord{Name: name}
		}
		if r.Exportable && r.ReleasePolicy == nil {
			prev, err := readVersion(ctx, tx, sc, lc, &meta, "")
			if err != nil || prev.ReleasePolicy == nil {
				return errors.Join(err, badParam("an exportable key needs a release_policy"))
			}
			r.ReleasePolicy = copyPolicy(prev.ReleasePolicy)
		}
		if err := records.Put(ctx, tx, sc.versionPath(lc, r.Version), &r); err != nil {
			return err
		}
		meta.Latest = r.Version
		if err := tx.Put(ctx, sc.liveIndex()+lc, nil); err != nil {
			return err
		}
		if err := reschedule(ctx, tx, sc, lc, &meta, &r); err != nil {
			return err
		}
		if err := records.Put(ctx, tx, sc.metaPath(lc), &meta); err != nil {
			return err
		}
		out = sc.bundle(&meta, &r)
		return nil
	})
	if err != nil {
		if derr := s.prov.Destroy(ctx, rec.Handle); derr != nil {
			err = errors.Join(err, fmt.Errorf("destroy the uncommitted key: %w", derr))
		}
		return KeyBundle{}, err
	}
	return out, nil
}

// RequireHSMInPools makes managed HSM pools hold HSM keys only: a request for an RSA, EC or
// oct key there creates RSA-HSM, EC-HSM or oct-HSM, as Managed HSM does. The server calls it
// when a PKCS#11 token is configured.
func (s *Service) RequireHSMInPools() { s.hsmPools = true }

// hsmType is the HSM-protected counterpart of a key type.
func hsmType(t provider.KeyType) provider.KeyType {
	switch t {
	case provider.RSA:
		return provider.RSAHSM
	case provider.EC:
		return provider.ECHSM
	case provider.Oct:
		return provider.OctHSM
	}
	return t
}
