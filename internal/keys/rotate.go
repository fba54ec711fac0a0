package keys

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Rotation policy limits (KEYVAULT-NOTES §1.7.4: expiry at least 28 days, rotation at least
// 7 days after creation and 7 days before expiry).
const (
	minExpiryDays   = 28
	minRotationDays = 7
	// defaultNotifyBefore is the Notify trigger of the policy a key has until one is set.
	defaultNotifyBefore = "P30D"
)

// Rotate creates a new version of a key with new material of the same type, size, curve and
// public exponent (RotateKey). The new version keeps the latest version's key_ops, tags,
// exportable flag and release policy, is enabled, and expires after the rotation policy's
// expiryTime if the policy has one. Older versions stay usable.
func (s *Service) Rotate(ctx context.Context, v tenancy.Vault, base, name string) (KeyBundle, error) {
	sc, err := newScope(v, base)
	if err != nil {
		return KeyBundle{}, err
	}
	meta, latest, err := s.resolve(ctx, sc, name, "")
	if err != nil {
		return KeyBundle{}, err
	}
	if err := s.AdmitCreate(sc.vault, latest.Kty, latest.Size); err != nil {
		return KeyBundle{}, err
	}
	rec, err := s.rotated(ctx, sc, meta, latest, s.clock())
	if err != nil {
		return KeyBundle{}, err
	}
	lc := strings.ToLower(meta.Name)
	return s.commit(ctx, sc, lc, meta.Name, rec, commitRotate, expectation{})
}

// rotated generates the material of the version that succeeds latest.
func (s *Service) rotated(ctx context.Context, sc scope, meta *keyRecord, latest *versionRecord, now time.Time) (*versionRecord, error) {
	spec := provider.KeySpec{Type: latest.Kty, PublicExponent: latest.PublicExponent, Exportable: latest.Exportable, Store: sc.store(), SecurityDomain: sc.pool()}
	switch baseType(latest.Kty) {
	case provider.EC:
		spec.Curve = latest.Curve
	default:
		spec.Size = latest.Size
	}
	key, err := s.generate(ctx, sc.vault, spec)
	if err != nil {
		return nil, provErr("rotate key", err)
	}
	d := draft{
		ops:        append([]string(nil), latest.KeyOps...),
		enabled:    true,
		exportable: latest.Exportable,
		tags:       copyTags(latest.Tags),
		policy:     copyPolicy(latest.ReleasePolicy),
	}
	if meta.Policy != nil && meta.Policy.Attributes != nil && meta.Policy.Attributes.ExpiryTime != "" {
		exp, err := ParseDuration(meta.Policy.Attributes.ExpiryTime)
		if err != nil {
			return nil, err
		}
		d.exp = i64(exp.From(now).Unix())
	}
	return d.record(key, latest.PublicExponent, now.Unix()), nil
}

// defaultPolicy is the policy of a key that has none: notify 30 days before expiry.
func defaultPolicy() *KeyRotationPolicy {
	return &KeyRotationPolicy{
		LifetimeActions: []LifetimeAction{{
			Trigger: LifetimeTrigger{TimeBeforeExpiry: defaultNotifyBefore},
			Action:  LifetimeActionType{Type: ActionNotify},
		}},
		Attributes: &RotationPolicyAttributes{},
	}
}

// renderPolicy returns a copy of a stored policy with its id.
func (sc scope) renderPolicy(name string, p *KeyRotationPolicy) KeyRotationPolicy {
	out := KeyRotationPolicy{
		ID:              sc.kid(name, "") + "/rotationpolicy",
		LifetimeActions: append([]LifetimeAction{}, p.LifetimeActions...),
	}
	if p.Attributes != nil {
		a := *p.Attributes
		a.Created, a.Updated = cloneI64(a.Created), cloneI64(a.Updated)
		out.Attributes = &a
	}
	return out
}

// GetRotationPolicy returns a key's rotation policy (GetKeyRotationPolicy); a key without
// one has Key Vault's default (notify 30 days before expiry, no created/updated).
func (s *Service) GetRotationPolicy(ctx context.Context, v tenancy.Vault, base, name string) (KeyRotationPolicy, error) {
	sc, err := newScope(v, base)
	if err != nil {
		return KeyRotationPolicy{}, err
	}
	meta, _, err := s.resolve(ctx, sc, name, "")
	if err != nil {
		return KeyRotationPolicy{}, err
	}
	p := meta.Policy
	if p == nil {
		p = defaultPolicy()
	}
	return sc.renderPolicy(meta.Name, p), nil
}

// UpdateRotationPolicy validates and sets a key's rotation policy (UpdateKeyRotationPolicy)
// and reschedules its automatic rotation. See CheckRotationPolicy for the rules.
func (s *Service) UpdateRotationPolicy(ctx context.Context, v tenancy.Vault, base, name string, p KeyRotationPolicy) (KeyRotationPolicy, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return KeyRotationPolicy{}, err
	}
	now := s.clock()
	policy, err := CheckRotationPolicy(p, now)
	if err != nil {
		return KeyRotationPolicy{}, err
	}
	var out KeyRotationPolicy
	err = s.store.Txn(ctx, func(tx storage.Tx) error {
		meta, err := readLive(ctx, tx, sc, lc, name)
		if err != nil {
			return err
		}
		if meta.Managed {
			return managedRefused("set the rotation policy of", meta.Name)
		}
		latest, err := readVersion(ctx, tx, sc, lc, meta, "")
		if err != nil {
			return err
		}
		np := *policy
		attrs := *policy.Attributes
		attrs.Created, attrs.Updated = i64(now.Unix()), i64(now.Unix())
		if meta.Policy != nil && meta.Policy.Attributes != nil && meta.Policy.Attributes.Created != nil {
			attrs.Created = cloneI64(meta.Policy.Attributes.Created)
		}
		np.Attributes = &attrs
		meta.Policy = &np
		if err := reschedule(ctx, tx, sc, lc, meta, latest); err != nil {
			return err
		}
		if err := records.Put(ctx, tx, sc.metaPath(lc), meta); err != nil {
			return err
		}
		out = sc.renderPolicy(meta.Name, meta.Policy)
		return nil
	})
	return out, err
}

// CheckRotationPolicy validates a rotation policy as Key Vault does and returns its
// normalized form (action types in canonical case, read-only fields dropped). now anchors
// the comparison of calendar durations. The rules: at most one Rotate and one Notify action;
// each trigger sets exactly one of timeAfterCreate and timeBeforeExpiry, as a positive ISO
// 8601 duration; timeAfterCreate applies only to Rotate; expiryTime, if set, is at least 28
// days; a Rotate trigger is at least 7 days, a Rotate timeBeforeExpiry needs expiryTime, and
// either Rotate trigger must fire at least 7 days after creation and 7 days before expiry.
// A Notify timeBeforeExpiry without expiryTime is allowed (it is Key Vault's default
// policy, so a policy read back must be writable). Errors wrap ErrBadParameter.
func CheckRotationPolicy(p KeyRotationPolicy, now time.Time) (*KeyRotationPolicy, error) {
	out := &KeyRotationPolicy{LifetimeActions: []LifetimeAction{}, Attributes: &RotationPolicyAttributes{}}
	var expiry *time.Time
	if p.Attributes != nil && p.Attributes.ExpiryTime != "" {
		d, err := ParseDuration(p.Attributes.ExpiryTime)
		if err != nil {
			return nil, fmt.Errorf("expiryTime: %w", err)
		}
		e := d.From(now)
		if e.Before(now.AddDate(0, 0, minExpiryDays)) {
			return nil, badParam("expiryTime %s is shorter than %d days", p.Attributes.ExpiryTime, minExpiryDays)
		}
		expiry = &e
		out.Attributes.ExpiryTime = p.Attributes.ExpiryTime
	}
	if len(p.LifetimeActions) > 2 {
		return nil, badParam("a rotation policy has at most 2 lifetime actions (one Rotate, one Notify); %d given", len(p.LifetimeActions))
	}
	seen := map[string]bool{}
	for i, a := range p.LifetimeActions {
		var typ string
		switch {
		case strings.EqualFold(a.Action.Type, ActionRotate):
			typ = ActionRotate
		case strings.EqualFold(a.Action.Type, ActionNotify):
			typ = ActionNotify
		default:
			return nil, badParam("lifetimeActions[%d]: action type %.20q is not Rotate or Notify", i, a.Action.Type)
		}
		if seen[typ] {
			return nil, badParam("lifetimeActions[%d]: only one %s action is allowed", i, typ)
		}
		seen[typ] = true
		after, before := a.Trigger.TimeAfterCreate, a.Trigger.TimeBeforeExpiry
		if (after == "") == (before == "") {
			return nil, badParam("lifetimeActions[%d]: set exactly one of timeAfterCreate and timeBeforeExpiry", i)
		}
		raw := after + before
		d, err := ParseDuration(raw)
		if err != nil {
			return nil, fmt.Errorf("lifetimeActions[%d]: %w", i, err)
		}
		if after != "" && typ == ActionNotify {
			return nil, badParam("lifetimeActions[%d]: timeAfterCreate applies only to Rotate; Notify uses timeBeforeExpiry", i)
		}
		if typ == ActionRotate {
			if d.From(now).Before(now.AddDate(0, 0, minRotationDays)) {
				return nil, badParam("lifetimeActions[%d]: the rotation trigger %s is shorter than %d days", i, raw, minRotationDays)
			}
			if before != "" && expiry == nil {
				return nil, badParam("lifetimeActions[%d]: timeBeforeExpiry needs attributes.expiryTime, the expiry of the versions rotation creates", i)
			}
			if expiry != nil {
				fire := d.From(now) // timeAfterCreate
				if before != "" {
					fire = d.Before(*expiry)
				}
				if fire.Before(now.AddDate(0, 0, minRotationDays)) || fire.After(expiry.AddDate(0, 0, -minRotationDays)) {
					return nil, badParam("lifetimeActions[%d]: rotation must happen at least %d days after creation and %d days before expiryTime", i, minRotationDays, minRotationDays)
				}
			}
		}
		out.LifetimeActions = append(out.LifetimeActions, LifetimeAction{
			Trigger: LifetimeTrigger{TimeAfterCreate: after, TimeBeforeExpiry: before},
			Action:  LifetimeActionType{Type: typ},
		})
	}
	return out, nil
}

// rotationDue returns when a policy rotates after latest, if it does.
func rotationDue(p *KeyRotationPolicy, latest *versionRecord) (time.Time, bool) {
	if p == nil {
		return time.Time{}, false
	}
	for _, a := range p.LifetimeActions {
		if a.Action.Type != ActionRotate {
			continue
		}
		if a.Trigger.TimeAfterCreate != "" {
			d, err := ParseDuration(a.Trigger.TimeAfterCreate)
			if err != nil {
				return time.Time{}, false
			}
			return d.From(time.Unix(latest.Created, 0).UTC()), true
		}
		if latest.Expires == nil {
			return time.Time{}, false
		}
		d, err := ParseDuration(a.Trigger.TimeBeforeExpiry)
		if err != nil {
			return time.Time{}, false
		}
		return d.Before(time.Unix(*latest.Expires, 0).UTC()), true
	}
	return time.Time{}, false
}
