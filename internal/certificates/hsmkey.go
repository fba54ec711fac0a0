package certificates

import (
	"context"
	"crypto"
	"strings"

	"github.com/coffer-kms/coffer/internal/keys"
	"github.com/coffer-kms/coffer/internal/pki"
	"github.com/coffer-kms/coffer/internal/provider"
)

// Certificates whose policy asks for an HSM key (RSA-HSM, EC-HSM). The key is made in the
// PKCS#11 token by the keys service (keys.PrepareManagedGenerate), or, for an imported
// certificate, put there from the PFX or PEM content (keys.PrepareManaged with the HSM key
// type: importHSM), and never leaves it in clear: the certificate version record holds no
// private key (versionRecord.Key is empty), only the managed key version refers to the
// token object. It signs the self-signed
// certificate or the CSR through a crypto.Signer over the token. With reuse_key a new
// version shares the latest version's object (keys.PrepareManagedReuse); for the Unknown
// issuer the pending operation keeps the object's handle until the merge, and destroys the
// object when it is cancelled or dropped (unless it was reused: then it is its version's).

// prepareKey hands d's private key (d.key, a software key) to the keys service as the key
// of version d.version: with kty "" as the software key it is, with kty RSA-HSM or EC-HSM
// into the vault's token (the provider wraps it there, it never leaves in clear). The JWK
// made for it is cleared afterwards; the key's operations follow the leaf's key usage.
func (s *Service) prepareKey(ctx context.Context, sc scope, name string, d newVersionDraft, kty provider.KeyType, nbf, exp *int64) (*keys.PreparedKey, error) {
	jwk, err := provider.PrivateJWK(d.key)
	if err != nil {
		return nil, badParam("The certificate's key cannot be stored: %s", err.Error())
	}
	defer jwk.Wipe()
	if kty != "" {
		jwk.Kty = kty
	}
	return s.keys.PrepareManaged(ctx, sc.vault, sc.base, name, keys.ManagedKey{
		Version: d.version, Key: jwk, KeyOps: keyOpsFor(d.chain[0].KeyUsage), Enabled: d.enabled, NotBefore: nbf, Expires: exp,
	})
}

// importHSM puts an imported certificate's private key (d.key, checked against the
// certificate and the policy) into the vault's token as d's key, of the policy's HSM key
// type: from then on the version is an HSM version like a generated one (no private key in
// its record; reuse_key, backups and purge treat it the same).
func (s *Service) importHSM(ctx context.Context, sc scope, name string, p *Policy, d *newVersionDraft) error {
	prepared, err := s.prepareKey(ctx, sc, name, *d, provider.KeyType(p.KeyProps.Kty), nil, nil)
	if err != nil {
		return err
	}
	d.prepared = prepared
	return nil
}

// isHSM reports whether a policy's key type is an HSM one.
func isHSM(kp *KeyProps) bool { return strings.HasSuffix(kp.Kty, "-HSM") }

// hsmKeyFor is the provider spec and managed key of a new HSM version under p.
func hsmKeyFor(p *Policy, version string, enabled bool) (provider.KeySpec, keys.ManagedKey, error) {
	kp := p.KeyProps
	spec := provider.KeySpec{Type: provider.KeyType(kp.Kty), Curve: provider.Curve(kp.Crv)}
	if kp.KeySize != nil && kp.Crv == "" {
		spec.Size = *kp.KeySize
	}
	ku, err := pki.KeyUsageBits(p.X509Props.KeyUsage)
	if err != nil {
		return spec, keys.ManagedKey{}, badParam("key_usage: %s", err.Error())
	}
	return spec, keys.ManagedKey{Version: version, KeyOps: keyOpsFor(ku), Enabled: enabled}, nil
}

// generateHSM makes d's key in the token.
func (s *Service) generateHSM(ctx context.Context, sc scope, name string, p *Policy, d *newVersionDraft) error {
	spec, mk, err := hsmKeyFor(p, d.version, d.enabled)
	if err != nil {
		return err
	}
	if d.prepared, err = s.keys.PrepareManagedGenerate(ctx, sc.vault, sc.base, name, mk, spec); err != nil {
		return err
	}
	return s.signThrough(ctx, d)
}

// signThrough makes d's key the signer over its prepared HSM key, dropping that key (if it
// owns it) on failure.
func (s *Service) signThrough(ctx context.Context, d *newVersionDraft) error {
	var err error
	if d.key, err = d.prepared.Signer(ctx); err != nil {
		s.keys.DiscardManaged(ctx, d.prepared)
		d.prepared = nil
	}
	return err
}

// reuseKey gives d the key of ver (the latest version) when the policy reuses keys and it
// fits the policy; ok is false when it does not (nothing is set: the caller makes a new
// key). A software key never moves into the HSM, nor an HSM key out of it.
func (s *Service) reuseKey(ctx context.Context, sc scope, name string, p *Policy, ver *versionRecord, d *newVersionDraft) (bool, error) {
	kp := p.KeyProps
	if !isHSM(kp) {
		if len(ver.Key) == 0 {
			return false, nil
		}
		key, err := parseKey(ver.Key)
		if err != nil || !keyMatchesPolicy(key, kp) {
			return false, err
		}
		d.key = key
		return true, nil
	}
	if len(ver.Key) > 0 {
		return false, nil
	}
	spec, mk, err := hsmKeyFor(p, d.version, d.enabled)
	if err != nil {
		return false, err
	}
	prepared, ok, err := s.keys.PrepareManagedReuse(ctx, sc.vault, sc.base, name, mk, ver.Version, spec)
	if err != nil || !ok {
		return false, err
	}
	d.prepared = prepared
	return true, s.signThrough(ctx, d)
}

// pendingKey is the private key of a pending CSR, for the merge: the software key, or a
// signer over the HSM key (prepared, which the operation keeps owning until the version is
// committed).
func (s *Service) pendingKey(ctx context.Context, sc scope, name string, pending *pendingRecord, version string, enabled bool) (crypto.Signer, *keys.PreparedKey, error) {
	if len(pending.KeyHandle) == 0 {
		key, err := parseKey(pending.Key)
		return key, nil, err
	}
	prepared, err := s.keys.PrepareManagedPending(ctx, sc.vault, sc.base, name, keys.ManagedKey{Version: version, Enabled: enabled}, pending.KeyHandle, pending.KeyReused)
	if err != nil {
		return nil, nil, err
	}
	signer, err := prepared.Signer(ctx)
	if err != nil {
		return nil, nil, err
	}
	return signer, prepared, nil
}

// dropPendingKey clears a pending operation's key and returns the handle of an HSM key that
// was made for it, which discardPending destroys once the change is committed; nil for a
// software key (gone with the record) or a reused one (its version's).
func dropPendingKey(p *pendingRecord) []byte {
	if p == nil {
		return nil
	}
	h := p.KeyHandle
	if p.KeyReused != "" {
		h = nil
	}
	p.Key, p.KeyHandle, p.KeyReused = nil, nil, ""
	return h
}

// discardPending destroys a dropped CSR's HSM key (dropPendingKey); a failure leaves an
// orphan object in the token, never a record that names a missing one.
func (s *Service) discardPending(ctx context.Context, sc scope, name string, handle []byte) {
	if handle == nil {
		return
	}
	if err := s.keys.DiscardPending(context.WithoutCancel(ctx), handle); err != nil {
		s.log.Error("the HSM key of a dropped certificate request could not be destroyed; it stays in the token unused",
			"tenant", sc.vault.TenantID, "vault", sc.vault.Name, "certificate", name, "err", err)
	}
}
