package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/certificates"
	"github.com/coffer-kms/coffer/internal/keys"
	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/secrets"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Certificates serves the Key Vault certificates API (certificates.json) over a
// certificates.Service. Only vaults hold certificates.
type Certificates struct {
	// Svc returns the certificates service; it exists only while the server is unsealed.
	Svc func() (*certificates.Service, error)
}

type certsHandler func(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error

// Body caps of the certificates routes: import carries up to 64 KiB of content as base64
// (and JSON escapes), restore the largest backup blob as base64url.
const (
	certPolicyMaxBody  = 64 << 10
	certImportMaxBody  = 512 << 10
	certMergeMaxBody   = 512 << 10
	certRestoreMaxBody = certificates.MaxBackupBytes*4/3 + 4<<10
)

func (cs *Certificates) with(h certsHandler) func(http.ResponseWriter, *http.Request, *Call) error {
	return func(w http.ResponseWriter, r *http.Request, c *Call) error {
		svc, err := cs.Svc()
		if err != nil {
			return err
		}
		return h(w, r, c, svc)
	}
}

// issuersPath is the internal path the certificate issuers routes are registered under: the
// wire paths /certificates/issuers[/{name}] would collide in the mux with
// /certificates/{name}/pending and the like, so the data plane rewrites them (see
// routePath) and keeps the wire path for links and the audit log.
const issuersPath = "/certificateissuers"

// routePath maps a wire path to the path the mux routes on.
func routePath(p string) string {
	if p == "/certificates/issuers" || strings.HasPrefix(p, "/certificates/issuers/") {
		return issuersPath + strings.TrimPrefix(p, "/certificates/issuers")
	}
	return p
}

type wirePathKey struct{}

// withWirePath remembers the path the client sent when routing rewrote it.
func withWirePath(r *http.Request, p string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), wirePathKey{}, p))
}

// wirePath is the path the client sent.
func wirePath(r *http.Request) string {
	if p, ok := r.Context().Value(wirePathKey{}).(string); ok {
		return p
	}
	return r.URL.Path
}

// Routes are the certificates endpoints, for vaults only.
func (cs *Certificates) Routes() []Route {
	vault := []tenancy.Kind{tenancy.KindVault}
	act := func(a authz.Action) map[tenancy.Kind]string {
		return map[tenancy.Kind]string{tenancy.KindVault: string(a)}
	}
	rt := func(pattern, op string, a authz.Action, object bool, maxBody int64, h certsHandler) Route {
		r := Route{Pattern: pattern, Kinds: vault, Operation: op, Action: act(a), MaxBody: maxBody, Handle: cs.with(h)}
		if object {
			r.Object = "certificates"
		}
		return r
	}
	return []Route{
		rt("POST /certificates/{name}/create", "CertificateCreate", authz.CertificatesCreate, true, certPolicyMaxBody, cs.create),
		rt("POST /certificates/{name}/import", "CertificateImport", authz.CertificatesImport, true, certImportMaxBody, cs.importCert),
		rt("GET /certificates/{name}", "CertificateGet", authz.CertificatesRead, true, 0, cs.get),
		rt("GET /certificates/{name}/{version}", "CertificateGet", authz.CertificatesRead, true, 0, cs.get),
		rt("PATCH /certificates/{name}", "CertificateUpdate", authz.CertificatesUpdate, true, certPolicyMaxBody, cs.update),
		rt("PATCH /certificates/{name}/{version}", "CertificateUpdate", authz.CertificatesUpdate, true, certPolicyMaxBody, cs.update),
		rt("GET /certificates", "CertificateList", authz.CertificatesRead, false, 0, cs.list),
		rt("GET /certificates/{name}/versions", "CertificateListVersions", authz.CertificatesRead, true, 0, cs.listVersions),
		rt("GET /certificates/{name}/policy", "CertificatePolicyGet", authz.CertificatesRead, true, 0, cs.getPolicy),
		rt("PATCH /certificates/{name}/policy", "CertificatePolicyUpdate", authz.CertificatesUpdate, true, certPolicyMaxBody, cs.updatePolicy),
		rt("GET /certificates/{name}/pending", "CertificateOperationGet", authz.CertificatesRead, true, 0, cs.getOperation),
		rt("PATCH /certificates/{name}/pending", "CertificateOperationUpdate", authz.CertificatesUpdate, true, 4<<10, cs.updateOperation),
		rt("DELETE /certificates/{name}/pending", "CertificateOperationDelete", authz.CertificatesUpdate, true, 0, cs.deleteOperation),
		rt("POST /certificates/{name}/pending/merge", "CertificateMerge", authz.CertificatesCreate, true, certMergeMaxBody, cs.merge),
		rt("DELETE /certificates/{name}", "CertificateDelete", authz.CertificatesDelete, true, 0, cs.delete),
		rt("GET /deletedcertificates", "DeletedCertificateList", authz.CertificatesRead, false, 0, cs.listDeleted),
		rt("GET /deletedcertificates/{name}", "DeletedCertificateGet", authz.CertificatesRead, true, 0, cs.getDeleted),
		rt("DELETE /deletedcertificates/{name}", "DeletedCertificatePurge", authz.CertificatesPurge, true, 0, cs.purge),
		rt("POST /deletedcertificates/{name}/recover", "DeletedCertificateRecover", authz.CertificatesRecover, true, 0, cs.recover),
		rt("POST /certificates/{name}/backup", "CertificateBackup", authz.CertificatesBackup, true, 0, cs.backup),
		rt("POST /certificates/restore", "CertificateRestore", authz.CertificatesRestore, false, certRestoreMaxBody, cs.restore),
		rt("GET /certificates/contacts", "CertificateContactsGet", authz.CertificatesRead, false, 0, cs.getContacts),
		rt("PUT /certificates/contacts", "CertificateContactsSet", authz.CertificateContactsWrite, false, 64<<10, cs.setContacts),
		rt("DELETE /certificates/contacts", "CertificateContactsDelete", authz.CertificateContactsWrite, false, 0, cs.deleteContacts),
		rt("GET "+issuersPath, "CertificateIssuerList", authz.CertificateIssuersRead, false, 0, cs.listIssuers),
		rt("GET "+issuersPath+"/{name}", "CertificateIssuerGet", authz.CertificateIssuersRead, false, 0, cs.getIssuer),
		rt("PUT "+issuersPath+"/{name}", "CertificateIssuerSet", authz.CertificateIssuersWrite, false, 64<<10, cs.setIssuer),
		rt("PATCH "+issuersPath+"/{name}", "CertificateIssuerUpdate", authz.CertificateIssuersWrite, false, 64<<10, cs.updateIssuer),
		rt("DELETE "+issuersPath+"/{name}", "CertificateIssuerDelete", authz.CertificateIssuersDelete, false, 0, cs.deleteIssuer),
	}
}

func (cs *Certificates) create(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	var p certificates.CreateParams
	if err := DecodeJSON(r, &p); err != nil {
		return err
	}
	op, err := svc.Create(r.Context(), c.Store, c.StoreURL, r.PathValue("name"), p)
	if err != nil {
		return mapCertsError(err)
	}
	WriteJSON(w, http.StatusAccepted, op)
	return nil
}

func (cs *Certificates) importCert(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	var p certificates.ImportParams
	if err := DecodeJSON(r, &p); err != nil {
		return err
	}
	b, err := svc.Import(r.Context(), c.Store, c.StoreURL, r.PathValue("name"), p)
	return respondCerts(w, http.StatusOK, b, err)
}

func (cs *Certificates) get(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	b, err := svc.Get(r.Context(), c.Store, c.StoreURL, r.PathValue("name"), r.PathValue("version"))
	return respondCerts(w, http.StatusOK, b, err)
}

func (cs *Certificates) update(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	var p certificates.UpdateParams
	if err := DecodeJSON(r, &p); err != nil {
		return err
	}
	b, err := svc.Update(r.Context(), c.Store, c.StoreURL, r.PathValue("name"), r.PathValue("version"), p)
	return respondCerts(w, http.StatusOK, b, err)
}

// certListOptions reads maxresults, $skiptoken and includePending.
func certListOptions(r *http.Request) (certificates.ListOptions, error) {
	o, err := listOptions(r)
	if err != nil {
		return certificates.ListOptions{}, err
	}
	out := certificates.ListOptions{MaxResults: o.MaxResults, SkipToken: o.SkipToken}
	switch v := r.URL.Query().Get("includePending"); v {
	case "", "false":
	case "true":
		out.IncludePending = true
	default:
		return out, Errorf(http.StatusBadRequest, "BadParameter", "includePending must be true or false")
	}
	return out, nil
}

func writeCertsPage[T any](w http.ResponseWriter, r *http.Request, c *Call, p certificates.Page[T], o certificates.ListOptions) error {
	return writePage(w, r, c, keys.Page[T]{Value: p.Value, NextToken: p.NextToken}, keys.ListOptions{MaxResults: o.MaxResults, SkipToken: o.SkipToken})
}

// listed answers one page of a listing, or maps err.
func listed[T any](w http.ResponseWriter, r *http.Request, c *Call, o certificates.ListOptions, p certificates.Page[T], err error) error {
	if err != nil {
		return mapCertsError(err)
	}
	return writeCertsPage(w, r, c, p, o)
}

func (cs *Certificates) list(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	o, err := certListOptions(r)
	if err != nil {
		return err
	}
	p, err := svc.List(r.Context(), c.Store, c.StoreURL, o)
	return listed(w, r, c, o, p, err)
}

func (cs *Certificates) listVersions(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	o, err := certListOptions(r)
	if err != nil {
		return err
	}
	p, err := svc.ListVersions(r.Context(), c.Store, c.StoreURL, r.PathValue("name"), o)
	return listed(w, r, c, o, p, err)
}

func (cs *Certificates) listDeleted(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	o, err := certListOptions(r)
	if err != nil {
		return err
	}
	p, err := svc.ListDeleted(r.Context(), c.Store, c.StoreURL, o)
	return listed(w, r, c, o, p, err)
}

func (cs *Certificates) listIssuers(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	o, err := certListOptions(r)
	if err != nil {
		return err
	}
	p, err := svc.ListIssuers(r.Context(), c.Store, c.StoreURL, o)
	return listed(w, r, c, o, p, err)
}

func (cs *Certificates) getPolicy(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	p, err := svc.GetPolicy(r.Context(), c.Store, c.StoreURL, r.PathValue("name"))
	return respondCerts(w, http.StatusOK, p, err)
}

func (cs *Certificates) updatePolicy(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	var p certificates.Policy
	if err := DecodeJSON(r, &p); err != nil {
		return err
	}
	out, err := svc.UpdatePolicy(r.Context(), c.Store, c.StoreURL, r.PathValue("name"), p)
	return respondCerts(w, http.StatusOK, out, err)
}

func (cs *Certificates) getOperation(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	op, err := svc.GetOperation(r.Context(), c.Store, c.StoreURL, r.PathValue("name"))
	return respondCerts(w, http.StatusOK, op, err)
}

func (cs *Certificates) updateOperation(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	var p certificates.OperationUpdate
	if err := DecodeJSON(r, &p); err != nil {
		return err
	}
	op, err := svc.UpdateOperation(r.Context(), c.Store, c.StoreURL, r.PathValue("name"), p)
	return respondCerts(w, http.StatusOK, op, err)
}

func (cs *Certificates) deleteOperation(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	op, err := svc.DeleteOperation(r.Context(), c.Store, c.StoreURL, r.PathValue("name"))
	return respondCerts(w, http.StatusOK, op, err)
}

func (cs *Certificates) merge(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	var p certificates.MergeParams
	if err := DecodeJSON(r, &p); err != nil {
		return err
	}
	b, err := svc.Merge(r.Context(), c.Store, c.StoreURL, r.PathValue("name"), p)
	return respondCerts(w, http.StatusCreated, b, err)
}

func (cs *Certificates) delete(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	b, err := svc.Delete(r.Context(), c.Store, c.StoreURL, r.PathValue("name"))
	return respondCerts(w, http.StatusOK, b, err)
}

func (cs *Certificates) getDeleted(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	b, err := svc.GetDeleted(r.Context(), c.Store, c.StoreURL, r.PathValue("name"))
	return respondCerts(w, http.StatusOK, b, err)
}

func (cs *Certificates) purge(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	if err := svc.Purge(r.Context(), c.Store, c.StoreURL, r.PathValue("name")); err != nil {
		return mapCertsError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (cs *Certificates) recover(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	b, err := svc.Recover(r.Context(), c.Store, c.StoreURL, r.PathValue("name"))
	return respondCerts(w, http.StatusOK, b, err)
}

func (cs *Certificates) backup(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	b, err := svc.Backup(r.Context(), c.Store, r.PathValue("name"))
	return respondCerts(w, http.StatusOK, b, err)
}

func (cs *Certificates) restore(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	var p certificates.BackupResult
	if err := DecodeJSON(r, &p); err != nil {
		return err
	}
	if len(p.Value) == 0 {
		return Errorf(http.StatusBadRequest, "BadParameter", "value is missing: pass the value of a certificate backup")
	}
	b, err := svc.Restore(r.Context(), c.Store, c.StoreURL, p.Value)
	return respondCerts(w, http.StatusOK, b, err)
}

func (cs *Certificates) getContacts(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	out, err := svc.GetContacts(r.Context(), c.Store, c.StoreURL)
	return respondCerts(w, http.StatusOK, out, err)
}

func (cs *Certificates) setContacts(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	var p certificates.Contacts
	if err := DecodeJSON(r, &p); err != nil {
		return err
	}
	out, err := svc.SetContacts(r.Context(), c.Store, c.StoreURL, p)
	return respondCerts(w, http.StatusOK, out, err)
}

func (cs *Certificates) deleteContacts(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	out, err := svc.DeleteContacts(r.Context(), c.Store, c.StoreURL)
	return respondCerts(w, http.StatusOK, out, err)
}

func (cs *Certificates) getIssuer(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	out, err := svc.GetIssuer(r.Context(), c.Store, c.StoreURL, r.PathValue("name"))
	return respondCerts(w, http.StatusOK, out, err)
}

func (cs *Certificates) setIssuer(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	var p certificates.Issuer
	if err := DecodeJSON(r, &p); err != nil {
		return err
	}
	out, err := svc.SetIssuer(r.Context(), c.Store, c.StoreURL, r.PathValue("name"), p)
	return respondCerts(w, http.StatusOK, out, err)
}

func (cs *Certificates) updateIssuer(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	var p certificates.Issuer
	if err := DecodeJSON(r, &p); err != nil {
		return err
	}
	out, err := svc.UpdateIssuer(r.Context(), c.Store, c.StoreURL, r.PathValue("name"), p)
	return respondCerts(w, http.StatusOK, out, err)
}

func (cs *Certificates) deleteIssuer(w http.ResponseWriter, r *http.Request, c *Call, svc *certificates.Service) error {
	out, err := svc.DeleteIssuer(r.Context(), c.Store, c.StoreURL, r.PathValue("name"))
	return respondCerts(w, http.StatusOK, out, err)
}

// respondCerts writes v with status, or maps err.
func respondCerts(w http.ResponseWriter, status int, v any, err error) error {
	if err != nil {
		return mapCertsError(err)
	}
	WriteJSON(w, status, v)
	return nil
}

// certErrors is the one table from certificates errors to Key Vault's answers.
var certErrors = []struct {
	err    error
	status int
	code   string
	inner  string
}{
	{certificates.ErrNotFound, http.StatusNotFound, "CertificateNotFound", ""},
	{certificates.ErrOperationNotFound, http.StatusNotFound, "PendingCertificateNotFound", ""},
	{certificates.ErrIssuerNotFound, http.StatusNotFound, "CertificateIssuerNotFound", ""},
	{certificates.ErrContactsNotFound, http.StatusNotFound, "ContactsNotFound", ""},
	{certificates.ErrDeletedButRecoverable, http.StatusConflict, "Conflict", "ObjectIsDeletedButRecoverable"},
	{certificates.ErrConflict, http.StatusConflict, "Conflict", ""},
	{certificates.ErrPurgeProtected, http.StatusForbidden, "Forbidden", ""},
	{certificates.ErrDisabled, http.StatusForbidden, "Forbidden", "CertificateDisabled"},
	{certificates.ErrBadParameter, http.StatusBadRequest, "BadParameter", ""},
}

// mapCertsError turns a certificates error (or a keys or secrets error from the managed
// key and secret) into an *Error.
func mapCertsError(err error) error {
	for _, e := range certErrors {
		if errors.Is(err, e.err) {
			return &Error{Status: e.status, Code: e.code, Inner: e.inner, Message: publicMessage(err)}
		}
	}
	// The managed key's refusals, and its HSM's: a key whose token object is gone (a reused
	// or pending HSM key), a token that is unavailable (503).
	if errors.Is(err, keys.ErrBadParameter) || errors.Is(err, keys.ErrConflict) || errors.Is(err, keys.ErrKeyMaterialGone) || errors.Is(err, provider.ErrUnavailable) {
		return mapKeysError(err)
	}
	if errors.Is(err, secrets.ErrBadParameter) || errors.Is(err, secrets.ErrConflict) {
		return mapSecretsError(err)
	}
	return err
}
