package certificates

import (
	"context"
	"errors"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Limits on contacts and issuers.
const (
	maxContacts   = 32
	maxFieldChars = 256
	maxAdmins     = 16
)

// issuerRecord is an issuer object at certissuers/<name>. Password is kept sealed (the
// barrier) and never rendered.
type issuerRecord struct {
	Name      string      `json:"name"`
	Provider  string      `json:"provider"`
	AccountID string      `json:"accountId,omitempty"`
	Password  string      `json:"password,omitempty"`
	Org       *OrgDetails `json:"org,omitempty"`
	Enabled   bool        `json:"enabled"`
	Created   int64       `json:"created"`
	Updated   int64       `json:"updated"`
}

// checkText bounds a text field an issuer or a contact carries and refuses control
// characters in it (a NUL or a line break in a provider name is never meant, and would be
// handed on to whatever reads it).
func checkText(field, v string) error {
	if err := checkLen(field, v); err != nil {
		return err
	}
	if strings.ContainsFunc(v, unicode.IsControl) {
		return badParam("%s must not contain control characters.", field)
	}
	return nil
}

// checkLen bounds a field whose content is opaque (a password).
func checkLen(field, v string) error {
	if utf8.RuneCountInString(v) > maxFieldChars {
		return badParam("%s is longer than %d characters.", field, maxFieldChars)
	}
	return nil
}

// render is the issuer as returned: without the password.
func (sc scope) issuer(rec *issuerRecord) Issuer {
	out := Issuer{
		ID:         sc.base + "/certificates/issuers/" + rec.Name,
		Provider:   rec.Provider,
		Attributes: &IssuerAttributes{Enabled: boolp(rec.Enabled), Created: i64(rec.Created), Updated: i64(rec.Updated)},
	}
	if rec.AccountID != "" {
		out.Credentials = &IssuerCredentials{AccountID: rec.AccountID}
	}
	if rec.Org != nil {
		org := *rec.Org
		org.AdminDetails = append([]AdminContact(nil), rec.Org.AdminDetails...)
		out.OrgDetails = &org
	}
	return out
}

// readIssuer reads an issuer object; ErrIssuerNotFound if there is none.
func readIssuer(ctx context.Context, r storage.Reader, sc scope, name string) (*issuerRecord, error) {
	lc, err := checkName(name)
	if err != nil {
		return nil, err
	}
	var rec issuerRecord
	found, err := records.Get(ctx, r, sc.issuersPrefix()+lc, &rec)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errorf(ErrIssuerNotFound, "Issuer not found: %s", name)
	}
	return &rec, nil
}

// applyIssuer validates and applies the fields of a set or update to rec.
func applyIssuer(rec *issuerRecord, in Issuer, set bool) error {
	if set || in.Provider != "" {
		if in.Provider == "" {
			return badParam("provider is missing: an issuer needs a provider (%s for the tenant's certificate authority).", ProviderTenantCA)
		}
		if err := checkText("provider", in.Provider); err != nil {
			return err
		}
		rec.Provider = in.Provider
	}
	if c := in.Credentials; c != nil {
		if err := checkText("credentials.account_id", c.AccountID); err != nil {
			return err
		}
		if err := checkLen("credentials.pwd", c.Password); err != nil {
			return err
		}
		rec.AccountID, rec.Password = c.AccountID, c.Password
	} else if set {
		rec.AccountID, rec.Password = "", ""
	}
	if o := in.OrgDetails; o != nil {
		if len(o.AdminDetails) > maxAdmins {
			return badParam("org_details has %d administrators: at most %d are accepted.", len(o.AdminDetails), maxAdmins)
		}
		if err := checkText("org_details.id", o.ID); err != nil { // checked with no administrator too
			return err
		}
		for _, a := range o.AdminDetails {
			for _, f := range []string{a.FirstName, a.LastName, a.Email, a.Phone} {
				if err := checkText("org_details", f); err != nil {
					return err
				}
			}
		}
		org := *o
		org.AdminDetails = append([]AdminContact(nil), o.AdminDetails...)
		rec.Org = &org
	} else if set {
		rec.Org = nil
	}
	if a := in.Attributes; a != nil && a.Enabled != nil {
		rec.Enabled = *a.Enabled
	} else if set {
		rec.Enabled = true
	}
	return nil
}

// SetIssuer creates or replaces an issuer object (SetCertificateIssuer).
func (s *Service) SetIssuer(ctx context.Context, v tenancy.Vault, base, name string, in Issuer) (Issuer, error) {
	return s.writeIssuer(ctx, v, base, name, in, true)
}

// UpdateIssuer changes the fields an update carries (UpdateCertificateIssuer).
func (s *Service) UpdateIssuer(ctx context.Context, v tenancy.Vault, base, name string, in Issuer) (Issuer, error) {
	return s.writeIssuer(ctx, v, base, name, in, false)
}

func (s *Service) writeIssuer(ctx context.Context, v tenancy.Vault, base, name string, in Issuer, set bool) (Issuer, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return Issuer{}, err
	}
	if strings.EqualFold(name, IssuerSelf) || strings.EqualFold(name, IssuerUnknown) {
		return Issuer{}, badParam("Issuer names Self and Unknown are reserved.")
	}
	now := s.clock().Unix()
	var out Issuer
	err = s.store.Txn(ctx, func(tx storage.Tx) error {
		rec, err := readIssuer(ctx, tx, sc, name)
		switch {
		case err == nil:
		case set && errors.Is(err, ErrIssuerNotFound):
			rec = &issuerRecord{Name: name, Created: now}
		default:
			return err
		}
		if err := applyIssuer(rec, in, set); err != nil {
			return err
		}
		rec.Updated = now
		if err := records.Put(ctx, tx, sc.issuersPrefix()+lc, rec); err != nil {
			return err
		}
		out = sc.issuer(rec)
		return nil
	})
	return out, err
}

// GetIssuer returns an issuer object (GetCertificateIssuer).
func (s *Service) GetIssuer(ctx context.Context, v tenancy.Vault, base, name string) (Issuer, error) {
	sc, err := newScope(v, base)
	if err != nil {
		return Issuer{}, err
	}
	rec, err := readIssuer(ctx, s.store, sc, name)
	if err != nil {
		return Issuer{}, err
	}
	return sc.issuer(rec), nil
}

// DeleteIssuer removes an issuer object and returns it (DeleteCertificateIssuer).
func (s *Service) DeleteIssuer(ctx context.Context, v tenancy.Vault, base, name string) (Issuer, error) {
	sc, err := newScope(v, base)
	if err != nil {
		return Issuer{}, err
	}
	var out Issuer
	err = s.store.Txn(ctx, func(tx storage.Tx) error {
		rec, err := readIssuer(ctx, tx, sc, name)
		if err != nil {
			return err
		}
		out = sc.issuer(rec)
		return tx.Delete(ctx, sc.issuersPrefix()+strings.ToLower(rec.Name))
	})
	return out, err
}

// ListIssuers returns one page of the vault's issuers (GetCertificateIssuers).
func (s *Service) ListIssuers(ctx context.Context, v tenancy.Vault, base string, opts ListOptions) (Page[IssuerItem], error) {
	sc, err := newScope(v, base)
	if err != nil {
		return Page[IssuerItem]{}, err
	}
	return page(records.PageItems(ctx, s.store, sc.issuersPrefix(), opts.MaxResults, opts.SkipToken, records.ValidName, func(lc string) (IssuerItem, bool, error) {
		rec, err := readIssuer(ctx, s.store, sc, lc)
		if errors.Is(err, ErrIssuerNotFound) {
			return IssuerItem{}, false, nil
		}
		if err != nil {
			return IssuerItem{}, false, err
		}
		return IssuerItem{ID: sc.issuer(rec).ID, Provider: rec.Provider}, true, nil
	}))
}

// SetContacts replaces the vault's certificate contacts (SetCertificateContacts).
func (s *Service) SetContacts(ctx context.Context, v tenancy.Vault, base string, c Contacts) (Contacts, error) {
	sc, err := newScope(v, base)
	if err != nil {
		return Contacts{}, err
	}
	if len(c.Contacts) == 0 {
		return Contacts{}, badParam("contacts is empty: set at least one contact, or delete the contacts.")
	}
	if len(c.Contacts) > maxContacts {
		return Contacts{}, badParam("%d contacts given: at most %d are accepted.", len(c.Contacts), maxContacts)
	}
	stored := Contacts{Contacts: make([]Contact, 0, len(c.Contacts))}
	for i, ct := range c.Contacts {
		if ct.Email == "" {
			return Contacts{}, badParam("contacts[%d] has no email.", i)
		}
		if _, err := mail.ParseAddress(ct.Email); err != nil || strings.ContainsAny(ct.Email, "<> ") {
			return Contacts{}, badParam("contacts[%d].email %.80q is not an email address.", i, ct.Email)
		}
		for _, f := range []string{ct.Email, ct.Name, ct.Phone} {
			if err := checkText("a contact field", f); err != nil {
				return Contacts{}, err
			}
		}
		stored.Contacts = append(stored.Contacts, ct)
	}
	err = s.store.Txn(ctx, func(tx storage.Tx) error { return records.Put(ctx, tx, sc.contactsPath(), stored) })
	if err != nil {
		return Contacts{}, err
	}
	stored.ID = sc.base + "/certificates/contacts"
	return stored, nil
}

// GetContacts returns the vault's certificate contacts (GetCertificateContacts).
func (s *Service) GetContacts(ctx context.Context, v tenancy.Vault, base string) (Contacts, error) {
	sc, err := newScope(v, base)
	if err != nil {
		return Contacts{}, err
	}
	var c Contacts
	found, err := records.Get(ctx, s.store, sc.contactsPath(), &c)
	if err != nil {
		return Contacts{}, err
	}
	if !found {
		return Contacts{}, errorf(ErrContactsNotFound, "Contacts not found")
	}
	c.ID = sc.base + "/certificates/contacts"
	return c, nil
}

// DeleteContacts removes the vault's certificate contacts and returns them
// (DeleteCertificateContacts).
func (s *Service) DeleteContacts(ctx context.Context, v tenancy.Vault, base string) (Contacts, error) {
	c, err := s.GetContacts(ctx, v, base)
	if err != nil {
		return Contacts{}, err
	}
	sc, _ := newScope(v, base)
	if err := s.store.Txn(ctx, func(tx storage.Tx) error { return tx.Delete(ctx, sc.contactsPath()) }); err != nil {
		return Contacts{}, err
	}
	return c, nil
}
