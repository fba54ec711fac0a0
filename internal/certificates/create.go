package certificates

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/coffer-kms/coffer/internal/attrs"
	"github.com/coffer-kms/coffer/internal/keys"
	"github.com/coffer-kms/coffer/internal/pki"
	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/secrets"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// generateKey makes the private key a policy asks for.
func generateKey(kp *KeyProps) (crypto.Signer, error) {
	switch kp.Kty {
	case "RSA":
		return rsa.GenerateKey(rand.Reader, *kp.KeySize)
	case "EC":
		curve := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}[kp.Crv]
		if curve == nil {
			return nil, badParam("Curve %.20q is not supported for certificate keys.", kp.Crv)
		}
		return ecdsa.GenerateKey(curve, rand.Reader)
	}
	return nil, badParam("Key type %.20q is not valid for a certificate.", kp.Kty)
}

// parseKey reads a stored PKCS#8 private key.
func parseKey(der []byte) (crypto.Signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, errors.New("certificates: a stored private key is damaged")
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("certificates: a stored private key is not a signing key")
	}
	return signer, nil
}

// keyMatchesPolicy reports whether a key (reused or imported) has the type and size the
// policy asks for.
func keyMatchesPolicy(key crypto.Signer, kp *KeyProps) bool {
	base := strings.TrimSuffix(kp.Kty, "-HSM")
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		return base == "RSA" && kp.KeySize != nil && k.N.BitLen() == *kp.KeySize
	case *ecdsa.PublicKey:
		return base == "EC" && k.Curve.Params().Name == kp.Crv
	}
	return false
}

// keyOpsFor maps a certificate's key usage to the operations its key allows, as Key Vault
// does: digitalSignature and nonRepudiation sign and verify, keyEncipherment wraps and
// unwraps, dataEncipherment encrypts and decrypts. A certificate without a key usage
// extension restricts nothing (nil).
func keyOpsFor(ku x509.KeyUsage) []string {
	if ku == 0 {
		return nil
	}
	ops := []string{}
	if ku&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) != 0 {
		ops = append(ops, "sign", "verify")
	}
	if ku&x509.KeyUsageKeyEncipherment != 0 {
		ops = append(ops, "wrapKey", "unwrapKey")
	}
	if ku&x509.KeyUsageDataEncipherment != 0 {
		ops = append(ops, "encrypt", "decrypt")
	}
	return ops
}

// samePublic reports whether two public keys are equal.
func samePublic(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

// newVersionDraft is a certificate version about to be committed with its key.
type newVersionDraft struct {
	version string
	key     crypto.Signer
	// prepared is the HSM key the provider generated for this version (key then signs
	// through it); nil for software keys, which commitVersion imports.
	prepared *keys.PreparedKey
	chain    []*x509.Certificate
	enabled  bool
	tags     map[string]string
	// preserve is preserveCertOrder; leafAt is where the leaf was in the chain as given.
	preserve bool
	leafAt   int
}

// commitVersion stores a new certificate version with its managed key and secret in one
// transaction. update may change the certificate record before it is written (set the
// policy, complete the pending operation); it runs inside the transaction after the record
// is read (nil meta: the name is new) and must return the record to write.
func (s *Service) commitVersion(ctx context.Context, sc scope, lc, name string, d newVersionDraft, contentType string, exportable bool,
	update func(meta *certRecord) (*certRecord, error)) (CertificateBundle, error) {
	leaf := d.chain[0]
	nbf, exp := leaf.NotBefore.Unix(), leaf.NotAfter.Unix()
	var pkcs8 []byte
	var contentKey crypto.PrivateKey
	prepared := d.prepared
	if prepared != nil {
		prepared.SetAttributes(d.enabled, i64(nbf), i64(exp))
	} else {
		var err error
		if pkcs8, err = x509.MarshalPKCS8PrivateKey(d.key); err != nil {
			return CertificateBundle{}, fmt.Errorf("certificates: encode the private key: %w", err)
		}
		defer clear(pkcs8)
		if exportable {
			contentKey = d.key
		}
		if prepared, err = s.prepareKey(ctx, sc, name, d, "", i64(nbf), i64(exp)); err != nil {
			return CertificateBundle{}, err
		}
	}
	value, err := pki.EncodeAt(contentType, contentKey, d.chain, d.leafAt)
	if err != nil {
		s.keys.DiscardManaged(ctx, prepared)
		return CertificateBundle{}, fmt.Errorf("certificates: encode the certificate content: %w", err)
	}
	now := s.clock().Unix()
	chain := make([][]byte, len(d.chain))
	for i, c := range d.chain {
		chain[i] = c.Raw
	}
	ver := versionRecord{
		Version: d.version, Chain: chain, Key: pkcs8, ContentType: contentType, PreserveOrder: d.preserve, LeafAt: d.leafAt,
		Enabled: d.enabled, NotBefore: nbf, Expires: exp, Created: now, Updated: now, Tags: attrs.CopyTags(d.tags),
	}
	var out CertificateBundle
	err = s.store.Txn(ctx, func(tx storage.Tx) error {
		var meta *certRecord
		m, err := readCert(ctx, tx, sc, lc, name)
		switch {
		case isNotFound(err):
		case err != nil:
			return err
		case m.Deleted != nil:
			return lifecycle.Deleted(m.Name)
		default:
			meta = m
		}
		if meta, err = update(meta); err != nil {
			return err
		}
		if err := records.Put(ctx, tx, sc.versionPath(lc, ver.Version), &ver); err != nil {
			return err
		}
		meta.Latest = ver.Version
		if err := s.keys.CommitManaged(ctx, tx, prepared); err != nil {
			return err
		}
		if err := s.secrets.PutManaged(ctx, tx, sc.vault, name, secrets.ManagedVersion{
			Version: ver.Version, Value: secrets.Value(value), ContentType: contentType, KID: prepared.KID(),
			Enabled: d.enabled, NotBefore: i64(nbf), Expires: i64(exp), LeafAt: ver.LeafAt,
		}); err != nil {
			return err
		}
		if err := tx.Put(ctx, sc.liveIndex()+lc, nil); err != nil {
			return err
		}
		if err := scheduleRenewal(ctx, tx, sc, lc, meta, &ver); err != nil {
			return err
		}
		if err := records.Put(ctx, tx, sc.metaPath(lc), meta); err != nil {
			return err
		}
		out = sc.bundle(meta, &ver)
		return nil
	})
	if err != nil {
		s.keys.DiscardManaged(ctx, prepared)
		return CertificateBundle{}, mapManaged(err)
	}
	return out, nil
}

// mapManaged turns the keys' and secrets' refusals of a taken name into the certificate's.
func mapManaged(err error) error {
	switch {
	case errors.Is(err, keys.ErrConflict), errors.Is(err, secrets.ErrConflict),
		errors.Is(err, keys.ErrDeletedButRecoverable), errors.Is(err, secrets.ErrDeletedButRecoverable):
		return errorf(ErrConflict, "%s", err.Error())
	}
	return err
}

// signerFor resolves a policy's issuer to the parent certificate and signing key: nil, nil
// for Self. A named issuer must exist in the vault, be enabled and have the TenantCA
// provider; the tenant must have a certificate authority.
func (s *Service) signerFor(ctx context.Context, r storage.Reader, sc scope, issuer string) (*x509.Certificate, crypto.Signer, []*x509.Certificate, error) {
	if issuer == IssuerSelf {
		return nil, nil, nil, nil
	}
	rec, err := readIssuer(ctx, r, sc, issuer)
	if err != nil {
		return nil, nil, nil, err
	}
	if !rec.Enabled {
		return nil, nil, nil, badParam("Issuer %s is disabled.", rec.Name)
	}
	if rec.Provider != ProviderTenantCA {
		return nil, nil, nil, badParam("Issuer %s has provider %.60q, which Coffer cannot issue with: use Self, Unknown, or an issuer whose provider is %s.", rec.Name, rec.Provider, ProviderTenantCA)
	}
	ca, err := s.loadCA(ctx, r, sc.vault.TenantID)
	if err != nil {
		return nil, nil, nil, err
	}
	return ca.cert, ca.key, []*x509.Certificate{ca.cert}, nil
}

// issue makes a certificate for key under the policy, signed as the issuer says.
func (s *Service) issue(ctx context.Context, sc scope, p *Policy, key crypto.Signer) ([]*x509.Certificate, error) {
	parent, caKey, caChain, err := s.signerFor(ctx, s.store, sc, p.Issuer.Name)
	if err != nil {
		return nil, err
	}
	tmpl, err := pki.Template(profile(p), key.Public(), s.clock())
	if err != nil {
		return nil, badParam("The certificate cannot be built from the policy: %s", err.Error())
	}
	signer := key
	if parent != nil {
		signer = caKey
		if tmpl.NotAfter.After(parent.NotAfter) {
			tmpl.NotAfter = parent.NotAfter
		}
	}
	der, err := pki.Issue(tmpl, key.Public(), parent, signer)
	if err != nil {
		return nil, fmt.Errorf("certificates: issue: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certificates: the issued certificate does not parse: %w", err)
	}
	return append([]*x509.Certificate{leaf}, caChain...), nil
}

// Create starts a certificate, or a new version of one (CreateCertificate). With the Self
// issuer or a TenantCA issuer the certificate is issued at once and the operation returned
// is completed; with Unknown the operation stays inProgress and carries a CSR to be signed
// elsewhere and merged.
func (s *Service) Create(ctx context.Context, v tenancy.Vault, base, name string, p CreateParams) (Operation, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return Operation{}, err
	}
	policy, err := normalizePolicy(p.Policy)
	if err != nil {
		return Operation{}, err
	}
	if err := checkTags(p.Tags); err != nil {
		return Operation{}, err
	}
	enabled := p.Attributes == nil || p.Attributes.Enabled == nil || *p.Attributes.Enabled
	meta, err := readCert(ctx, s.store, sc, lc, name)
	if err != nil && !isNotFound(err) {
		return Operation{}, err
	}
	if meta != nil && meta.Deleted != nil {
		return Operation{}, lifecycle.Deleted(meta.Name)
	}
	if meta != nil && meta.Pending != nil && meta.Pending.Status == statusInProgress {
		return Operation{}, errorf(ErrConflict, "Certificate %s has an operation in progress: merge, cancel or delete it first.", meta.Name)
	}
	d, err := s.draftFor(ctx, sc, lc, name, meta, policy, enabled, p.Tags, true)
	if err != nil {
		return Operation{}, err
	}
	d.preserve = p.PreserveCertOrder != nil && *p.PreserveCertOrder
	pending := &pendingRecord{RequestID: records.NewVersion(), Issuer: *policy.Issuer, Enabled: enabled, Tags: attrs.CopyTags(p.Tags), PreserveOrder: d.preserve}
	now := s.clock().Unix()
	if policy.Issuer.Name == IssuerUnknown {
		out, err := s.startCSR(ctx, sc, lc, name, policy, &d, pending)
		if err != nil {
			s.keys.DiscardManaged(ctx, d.prepared)
		}
		return out, err
	}
	if err := s.issueDraft(ctx, sc, policy, &d); err != nil {
		return Operation{}, err
	}
	pending.Status, pending.StatusDetails, pending.Target = statusCompleted, "", sc.id(name, "")
	var meta2 *certRecord
	_, err = s.commitVersion(ctx, sc, lc, name, d,
		policy.SecretProps.ContentType, *policy.KeyProps.Exportable, func(m *certRecord) (*certRecord, error) {
			if m == nil {
				m = &certRecord{Name: name, PolicyCreated: now}
			}
			m.Policy, m.PolicyUpdated, m.Pending = policy, now, pending
			meta2 = m
			return m, nil
		})
	if err != nil {
		return Operation{}, err
	}
	return sc.operation(meta2), nil
}

// startCSR stores the pending operation of an Unknown-issuer request for d's key: its CSR
// and the key (PKCS#8, or the handle of the HSM key) until the merge.
func (s *Service) startCSR(ctx context.Context, sc scope, lc, name string, policy *Policy, d *newVersionDraft, pending *pendingRecord) (Operation, error) {
	csr, err := pki.CSR(profile(policy), d.key)
	if err != nil {
		return Operation{}, badParam("The CSR cannot be built from the policy: %s", err.Error())
	}
	if d.prepared != nil {
		pending.KeyHandle, pending.KeyReused = d.prepared.Handle(), d.prepared.ReusedFrom()
	} else {
		pkcs8, err := x509.MarshalPKCS8PrivateKey(d.key)
		if err != nil {
			return Operation{}, fmt.Errorf("certificates: encode the private key: %w", err)
		}
		defer clear(pkcs8)
		pending.Key = pkcs8
	}
	pending.Status, pending.StatusDetails, pending.CSR = statusInProgress, "Pending certificate created. Please Perform Merge to complete the request.", csr
	now := s.clock().Unix()
	var out Operation
	err = s.store.Txn(ctx, func(tx storage.Tx) error {
		m, err := readCert(ctx, tx, sc, lc, name)
		switch {
		case isNotFound(err):
			m = &certRecord{Name: name, PolicyCreated: now}
		case err != nil:
			return err
		case m.Deleted != nil:
			return lifecycle.Deleted(m.Name)
		case m.Pending != nil && m.Pending.Status == statusInProgress:
			return errorf(ErrConflict, "Certificate %s has an operation in progress: merge, cancel or delete it first.", m.Name)
		}
		m.Policy, m.PolicyUpdated, m.Pending = policy, now, pending
		if err := tx.Put(ctx, sc.liveIndex()+lc, nil); err != nil {
			return err
		}
		if err := records.Put(ctx, tx, sc.metaPath(lc), m); err != nil {
			return err
		}
		out = sc.operation(m)
		return nil
	})
	return out, err
}

// draftFor starts a new version: its id and key — the latest version's when the policy
// reuses keys and it fits the policy (reuseKey), a new one otherwise; HSM key types are
// generated in the provider (and sign through it), software keys here. With admit (a
// request's creation or renewal, not a scheduled one) a new key first passes its vault's
// key-creation limit (keys.Service.AdmitCreate), counted here once for both kinds.
func (s *Service) draftFor(ctx context.Context, sc scope, lc, name string, meta *certRecord, p *Policy, enabled bool, tags map[string]string, admit bool) (newVersionDraft, error) {
	d := newVersionDraft{version: records.NewVersion(), enabled: enabled, tags: tags}
	if *p.KeyProps.ReuseKey && meta != nil && meta.Latest != "" {
		ver, err := readVersion(ctx, s.store, sc, lc, meta, "")
		if err != nil {
			return d, err
		}
		if ok, err := s.reuseKey(ctx, sc, name, p, ver, &d); err != nil || ok {
			return d, err
		}
	}
	if admit {
		size := 0
		if p.KeyProps.KeySize != nil {
			size = *p.KeyProps.KeySize
		}
		if err := s.keys.AdmitCreate(sc.vault, provider.KeyType(p.KeyProps.Kty), size); err != nil {
			return d, err
		}
	}
	if isHSM(p.KeyProps) {
		return d, s.generateHSM(ctx, sc, name, p, &d)
	}
	var err error
	d.key, err = generateKey(p.KeyProps)
	return d, err
}

// issueDraft issues the certificate of a drafted version, dropping an HSM key on failure.
func (s *Service) issueDraft(ctx context.Context, sc scope, p *Policy, d *newVersionDraft) error {
	chain, err := s.issue(ctx, sc, p, d.key)
	if err != nil {
		s.keys.DiscardManaged(ctx, d.prepared)
		return err
	}
	d.chain = chain
	return nil
}

// Merge completes an Unknown-issuer operation with the certificate an outside CA signed
// for its CSR (MergeCertificate); x5c is the certificate, optionally followed by its chain.
func (s *Service) Merge(ctx context.Context, v tenancy.Vault, base, name string, p MergeParams) (CertificateBundle, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return CertificateBundle{}, err
	}
	if len(p.X5C) == 0 {
		return CertificateBundle{}, badParam("x5c is missing: merge needs the signed certificate.")
	}
	if len(p.X5C) > 10 {
		return CertificateBundle{}, badParam("x5c has %d certificates: at most 10 are accepted.", len(p.X5C))
	}
	if err := checkTags(p.Tags); err != nil {
		return CertificateBundle{}, err
	}
	given := make([]*x509.Certificate, 0, len(p.X5C))
	for i, der := range p.X5C {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return CertificateBundle{}, badParam("x5c[%d] is not a DER X.509 certificate.", i)
		}
		given = append(given, c)
	}
	meta, err := readCert(ctx, s.store, sc, lc, name)
	if err != nil {
		return CertificateBundle{}, err
	}
	if meta.Deleted != nil {
		return CertificateBundle{}, lifecycle.Deleted(meta.Name)
	}
	pending := meta.Pending
	if pending == nil || pending.Status != statusInProgress || (len(pending.Key) == 0 && len(pending.KeyHandle) == 0) {
		return CertificateBundle{}, noOperation(meta.Name)
	}
	enabled := pending.Enabled
	if p.Attributes != nil && p.Attributes.Enabled != nil {
		enabled = *p.Attributes.Enabled
	}
	d := newVersionDraft{version: records.NewVersion(), enabled: enabled, tags: pending.Tags, preserve: pending.PreserveOrder}
	if p.Tags != nil {
		d.tags = p.Tags
	}
	if d.key, d.prepared, err = s.pendingKey(ctx, sc, name, pending, d.version, enabled); err != nil {
		return CertificateBundle{}, err
	}
	leafAt := slices.IndexFunc(given, func(c *x509.Certificate) bool { return samePublic(c.PublicKey, d.key.Public()) })
	if leafAt < 0 {
		return CertificateBundle{}, badParam("No certificate in x5c is for the key of the pending request: merge the certificate the CA signed for its CSR.")
	}
	d.chain = pki.LeafFirst(given, leafAt)
	if d.preserve {
		d.leafAt = leafAt
	}
	if d.prepared != nil {
		d.prepared.SetKeyOps(keyOpsFor(d.chain[0].KeyUsage))
	}
	requestID := pending.RequestID
	return s.commitVersion(ctx, sc, lc, name, d, meta.Policy.SecretProps.ContentType, *meta.Policy.KeyProps.Exportable, func(m *certRecord) (*certRecord, error) {
		if m == nil || m.Pending == nil || m.Pending.RequestID != requestID || m.Pending.Status != statusInProgress {
			return nil, noOperation(name)
		}
		m.Pending.Status, m.Pending.StatusDetails, m.Pending.Target = statusCompleted, "", sc.id(m.Name, "")
		m.Pending.Key, m.Pending.KeyHandle, m.Pending.KeyReused = nil, nil, ""
		return m, nil
	})
}

// Import stores a certificate with its private key from PFX or PEM content
// (ImportCertificate). Without a policy, one is derived from the certificate; with one, its
// key properties must fit the imported key and its content type the content, and missing
// x509_props are the certificate's. An RSA-HSM or EC-HSM policy puts the key into the
// vault's token (importHSM): the version is then an HSM version, its key never exportable.
func (s *Service) Import(ctx context.Context, v tenancy.Vault, base, name string, p ImportParams) (CertificateBundle, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return CertificateBundle{}, err
	}
	if p.Value == nil || *p.Value == "" {
		return CertificateBundle{}, badParam("value is missing: import needs the certificate content (base64 PFX or PEM).")
	}
	if err := checkTags(p.Tags); err != nil {
		return CertificateBundle{}, err
	}
	priv, chain, leafAt, contentType, err := pki.DecodeAt(*p.Value, p.Password)
	if err != nil {
		return CertificateBundle{}, badParam("The certificate content cannot be imported: %s", err.Error())
	}
	key, ok := priv.(crypto.Signer)
	if !ok {
		return CertificateBundle{}, badParam("The certificate content's private key is not a signing key.")
	}
	var policy *Policy
	if p.Policy != nil {
		given := *p.Policy // a shallow copy: the defaults below replace whole sections
		if given.X509Props == nil {
			// A policy that names only the key and content type (as az keyvault certificate
			// import --policy often does) takes the certificate's subject, names and usages.
			given.X509Props = policyFromCertificate(chain[0], contentType).X509Props
		}
		if given.Issuer == nil || given.Issuer.Name == "" {
			// An imported certificate comes from somewhere else: its issuer is Unknown (as
			// without a policy), never Self, whose default AutoRenew would later replace
			// a CA-signed certificate with a self-signed one.
			given.Issuer = &IssuerParams{Name: IssuerUnknown}
		}
		if policy, err = normalizePolicy(&given); err != nil {
			return CertificateBundle{}, err
		}
		if !keyMatchesPolicy(key, policy.KeyProps) {
			return CertificateBundle{}, badParam("The policy's key_props (%s) do not match the imported key.", policy.KeyProps.Kty)
		}
		if p.Policy.SecretProps != nil && p.Policy.SecretProps.ContentType != "" && p.Policy.SecretProps.ContentType != contentType {
			return CertificateBundle{}, badParam("The policy's content type %s does not match the imported content (%s).", policy.SecretProps.ContentType, contentType)
		}
		policy.SecretProps.ContentType = contentType
	} else {
		policy = policyFromCertificate(chain[0], contentType)
	}
	enabled := p.Attributes == nil || p.Attributes.Enabled == nil || *p.Attributes.Enabled
	now := s.clock().Unix()
	defer provider.WipePrivate(key)
	d := newVersionDraft{version: records.NewVersion(), key: key, chain: chain, enabled: enabled, tags: p.Tags}
	if p.PreserveCertOrder != nil && *p.PreserveCertOrder {
		d.preserve, d.leafAt = true, leafAt
	}
	if isHSM(policy.KeyProps) {
		if err := s.importHSM(ctx, sc, name, policy, &d); err != nil {
			return CertificateBundle{}, err
		}
	}
	return s.commitVersion(ctx, sc, lc, name, d,
		contentType, *policy.KeyProps.Exportable, func(m *certRecord) (*certRecord, error) {
			if m == nil {
				m = &certRecord{Name: name, PolicyCreated: now}
			}
			if m.Pending != nil && m.Pending.Status == statusInProgress {
				return nil, errorf(ErrConflict, "Certificate %s has an operation in progress: merge, cancel or delete it first.", m.Name)
			}
			m.Policy, m.PolicyUpdated = policy, now
			return m, nil
		})
}
