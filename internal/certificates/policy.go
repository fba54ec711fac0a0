package certificates

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"strings"

	"github.com/coffer-kms/coffer/internal/pki"
)

// Issuer names with a fixed meaning, and the provider of an issuer object that stands for
// the tenant's certificate authority.
const (
	IssuerSelf       = "Self"
	IssuerUnknown    = "Unknown"
	ProviderTenantCA = "TenantCA"
)

// Lifetime action types.
const (
	ActionAutoRenew     = "AutoRenew"
	ActionEmailContacts = "EmailContacts"
)

// Key Vault's policy defaults.
const (
	defaultValidityMonths = 12
	defaultPercentage     = 80
	maxValidityMonths     = 1200
)

var (
	defaultEKUs = []string{"1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"}
)

// clonePolicy deep-copies a policy (through JSON: policies are small and plain data).
func clonePolicy(p *Policy) *Policy {
	if p == nil {
		return &Policy{}
	}
	b, err := json.Marshal(p)
	if err != nil {
		panic("certificates: a policy does not encode: " + err.Error())
	}
	var out Policy
	if err := json.Unmarshal(b, &out); err != nil {
		panic("certificates: a policy does not decode: " + err.Error())
	}
	return &out
}

func intp(v int) *int { return &v }

// normalizePolicy validates a policy given by a client and fills Key Vault's defaults. The
// result has no id or attributes; every section is present.
func normalizePolicy(in *Policy) (*Policy, error) {
	if in == nil {
		return nil, badParam("The certificate policy is missing: create needs a policy.")
	}
	p := clonePolicy(in)
	p.ID, p.Attributes = "", nil

	if p.Issuer == nil || p.Issuer.Name == "" {
		p.Issuer = &IssuerParams{Name: IssuerSelf}
	}
	switch {
	case strings.EqualFold(p.Issuer.Name, IssuerSelf):
		p.Issuer.Name = IssuerSelf
	case strings.EqualFold(p.Issuer.Name, IssuerUnknown):
		p.Issuer.Name = IssuerUnknown
	default:
		if _, err := checkName(p.Issuer.Name); err != nil {
			return nil, badParam("Issuer name %.140q is invalid: use Self, Unknown or the name of an issuer of this vault.", p.Issuer.Name)
		}
	}

	if p.KeyProps == nil {
		p.KeyProps = &KeyProps{}
	}
	kp := p.KeyProps
	if kp.Kty == "" {
		kp.Kty = "RSA"
		if kp.Crv != "" {
			kp.Kty = "EC"
		}
	}
	base, hsm := strings.CutSuffix(kp.Kty, "-HSM")
	switch base {
	case "RSA":
		if kp.KeySize == nil {
			kp.KeySize = intp(2048)
		}
		if s := *kp.KeySize; s != 2048 && s != 3072 && s != 4096 {
			return nil, badParam("Key size %d is not supported for RSA certificate keys: use 2048, 3072 or 4096.", s)
		}
		if kp.Crv != "" {
			return nil, badParam("An RSA certificate key has no curve: remove crv.")
		}
	case "EC":
		if kp.Crv == "" {
			kp.Crv = "P-256"
		}
		switch kp.Crv {
		case "P-256", "P-384", "P-521":
		default:
			return nil, badParam("Curve %.20q is not supported for certificate keys: use P-256, P-384 or P-521.", kp.Crv)
		}
		if kp.KeySize != nil {
			want := map[string]int{"P-256": 256, "P-384": 384, "P-521": 521}[kp.Crv]
			if *kp.KeySize != want {
				return nil, badParam("Key size %d does not match curve %s.", *kp.KeySize, kp.Crv)
			}
		}
	default:
		return nil, badParam("Key type %.20q is not valid for a certificate: use RSA, EC, RSA-HSM or EC-HSM.", kp.Kty)
	}
	if kp.Exportable == nil {
		kp.Exportable = boolp(!hsm)
	}
	if kp.ReuseKey == nil {
		kp.ReuseKey = boolp(false)
	}
	if hsm && *kp.Exportable {
		return nil, badParam("A certificate with an HSM key (%s) cannot be exportable: its private key never leaves the HSM.", kp.Kty)
	}

	if p.SecretProps == nil || p.SecretProps.ContentType == "" {
		p.SecretProps = &SecretProps{ContentType: pki.ContentTypePKCS12}
	}
	if ct := p.SecretProps.ContentType; ct != pki.ContentTypePKCS12 && ct != pki.ContentTypePEM {
		return nil, badParam("Content type %.60q is not supported: use application/x-pkcs12 or application/x-pem-file.", ct)
	}

	if p.X509Props == nil {
		p.X509Props = &X509Props{}
	}
	xp := p.X509Props
	if xp.ValidityMonths == nil {
		xp.ValidityMonths = intp(defaultValidityMonths)
	}
	if m := *xp.ValidityMonths; m < 1 || m > maxValidityMonths {
		return nil, badParam("validity_months %d is outside 1-%d.", m, maxValidityMonths)
	}
	if xp.KeyUsage == nil {
		xp.KeyUsage = []string{"digitalSignature", "keyEncipherment"}
		if base == "EC" {
			xp.KeyUsage = []string{"digitalSignature"}
		}
	}
	if xp.EKUs == nil {
		xp.EKUs = append([]string(nil), defaultEKUs...)
	}
	if err := profile(p).Check(); err != nil {
		return nil, badParam("The certificate policy's x509_props are invalid: %s", err.Error())
	}

	if p.LifetimeActions == nil {
		action := ActionAutoRenew
		if p.Issuer.Name == IssuerUnknown {
			action = ActionEmailContacts
		}
		p.LifetimeActions = []LifetimeAction{{Trigger: Trigger{LifetimePercentage: intp(defaultPercentage)}, Action: Action{ActionType: action}}}
	}
	if len(p.LifetimeActions) > 2 {
		return nil, badParam("A policy has at most one AutoRenew and one EmailContacts lifetime action.")
	}
	seen := map[string]bool{}
	for i := range p.LifetimeActions {
		la := &p.LifetimeActions[i]
		switch {
		case strings.EqualFold(la.Action.ActionType, ActionAutoRenew):
			la.Action.ActionType = ActionAutoRenew
		case strings.EqualFold(la.Action.ActionType, ActionEmailContacts):
			la.Action.ActionType = ActionEmailContacts
		default:
			return nil, badParam("Lifetime action type %.40q is not valid: use AutoRenew or EmailContacts.", la.Action.ActionType)
		}
		if seen[la.Action.ActionType] {
			return nil, badParam("A policy has at most one %s lifetime action.", la.Action.ActionType)
		}
		seen[la.Action.ActionType] = true
		if la.Action.ActionType == ActionAutoRenew && p.Issuer.Name == IssuerUnknown {
			return nil, badParam("AutoRenew is not available with the Unknown issuer: Coffer cannot sign for an outside CA; use EmailContacts.")
		}
		t := la.Trigger
		switch {
		case (t.LifetimePercentage == nil) == (t.DaysBeforeExpiry == nil):
			return nil, badParam("A lifetime action trigger needs exactly one of lifetime_percentage and days_before_expiry.")
		case t.LifetimePercentage != nil && (*t.LifetimePercentage < 1 || *t.LifetimePercentage > 99):
			return nil, badParam("lifetime_percentage %d is outside 1-99.", *t.LifetimePercentage)
		case t.DaysBeforeExpiry != nil && (*t.DaysBeforeExpiry < 1 || *t.DaysBeforeExpiry > *xp.ValidityMonths*27):
			return nil, badParam("days_before_expiry %d is outside 1-%d (validity_months × 27).", *t.DaysBeforeExpiry, *xp.ValidityMonths*27)
		}
	}
	return p, nil
}

// profile is the pki view of a policy's X.509 properties.
func profile(p *Policy) pki.Profile {
	xp := p.X509Props
	pr := pki.Profile{Subject: xp.Subject, KeyUsage: xp.KeyUsage, EKUs: xp.EKUs}
	if xp.ValidityMonths != nil {
		pr.ValidityMonths = *xp.ValidityMonths
	}
	if s := xp.SANs; s != nil {
		pr.DNSNames, pr.Emails, pr.UPNs, pr.URIs, pr.IPAddresses = s.DNSNames, s.Emails, s.UPNs, s.URIs, s.IPAddresses
	}
	return pr
}

// policyFromCertificate derives the policy of an imported certificate: its key, subject,
// SANs, usages and validity, the detected content type, the Unknown issuer and an
// EmailContacts notice at 80% of the lifetime.
func policyFromCertificate(leaf *x509.Certificate, contentType string) *Policy {
	pr := pki.ProfileOf(leaf)
	kp := &KeyProps{Exportable: boolp(true), ReuseKey: boolp(false)}
	switch k := leaf.PublicKey.(type) {
	case *rsa.PublicKey:
		kp.Kty, kp.KeySize = "RSA", intp(k.N.BitLen())
	case *ecdsa.PublicKey:
		kp.Kty = "EC"
		kp.Crv = map[elliptic.Curve]string{elliptic.P256(): "P-256", elliptic.P384(): "P-384", elliptic.P521(): "P-521"}[k.Curve]
		kp.KeySize = intp(k.Curve.Params().BitSize)
	}
	months := pr.ValidityMonths
	if months < 1 {
		months = 1
	}
	xp := &X509Props{Subject: pr.Subject, EKUs: pr.EKUs, KeyUsage: pr.KeyUsage, ValidityMonths: intp(months)}
	if len(pr.DNSNames)+len(pr.Emails)+len(pr.UPNs)+len(pr.URIs)+len(pr.IPAddresses) > 0 {
		xp.SANs = &SANs{DNSNames: pr.DNSNames, Emails: pr.Emails, UPNs: pr.UPNs, URIs: pr.URIs, IPAddresses: pr.IPAddresses}
	}
	return &Policy{
		KeyProps:        kp,
		SecretProps:     &SecretProps{ContentType: contentType},
		X509Props:       xp,
		Issuer:          &IssuerParams{Name: IssuerUnknown},
		LifetimeActions: []LifetimeAction{{Trigger: Trigger{LifetimePercentage: intp(defaultPercentage)}, Action: Action{ActionType: ActionEmailContacts}}},
	}
}

// mergePolicy applies a policy update: each section the update carries replaces the
// current one; the result is validated again.
func mergePolicy(cur, upd *Policy) (*Policy, error) {
	p := clonePolicy(cur)
	u := clonePolicy(upd)
	if u.KeyProps != nil {
		p.KeyProps = u.KeyProps
	}
	if u.SecretProps != nil {
		p.SecretProps = u.SecretProps
	}
	if u.X509Props != nil {
		p.X509Props = u.X509Props
	}
	if u.LifetimeActions != nil {
		p.LifetimeActions = u.LifetimeActions
	}
	if u.Issuer != nil {
		p.Issuer = u.Issuer
	}
	return normalizePolicy(p)
}
