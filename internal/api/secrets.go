package api

import (
	"errors"
	"net/http"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/keys"
	"github.com/coffer-kms/coffer/internal/secrets"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Secrets serves the Key Vault secrets API (secrets.json) over a secrets.Service. Only vaults
// hold secrets: on a managed HSM pool every secrets route answers 404.
type Secrets struct {
	// Svc returns the secrets service; it exists only while the server is unsealed.
	Svc func() (*secrets.Service, error)
}

type secretsHandler func(w http.ResponseWriter, r *http.Request, c *Call, svc *secrets.Service) error

// Body caps of the secrets routes. A set body must admit every valid request however its
// client escapes JSON: encoding/json (the Go SDK) writes '<', '>' and '&' as \u003c (six
// bytes), so a 25 KiB value can take 150 KiB on the wire, and 15 tags up to 69 KiB more. A
// value over 25 KiB inside the cap is a 400 BadParameter from the domain; a body over the cap
// is a 413.
const (
	setSecretMaxBody     = 256 << 10
	updateSecretMaxBody  = 128 << 10
	restoreSecretMaxBody = secrets.MaxBackupBytes*4/3 + 4<<10 // base64url of the largest blob
)

// with adapts a handler that needs the secrets service.
func (s *Secrets) with(h secretsHandler) func(http.ResponseWriter, *http.Request, *Call) error {
	return func(w http.ResponseWriter, r *http.Request, c *Call) error {
		svc, err := s.Svc()
		if err != nil {
			return err
		}
		return h(w, r, c, svc)
	}
}

// Routes are the secrets endpoints (secrets.json), for vaults only. Paths reach the mux
// already normalised: a trailing slash and an empty version segment ("latest", as the SDKs
// send it) are removed by the data plane. Reading a value needs getSecret; listings, deleted
// secrets and versions need readMetadata only, and never carry values.
func (s *Secrets) Routes() []Route {
	vault := []tenancy.Kind{tenancy.KindVault}
	act := func(a authz.Action) map[tenancy.Kind]string {
		return map[tenancy.Kind]string{tenancy.KindVault: string(a)}
	}
	return []Route{
		{Pattern: "PUT /secrets/{name}", Kinds: vault, Operation: "SecretSet", Object: "secrets", Action: act(authz.SecretsSetSecret), MaxBody: setSecretMaxBody, Handle: s.with(s.set)},
		{Pattern: "GET /secrets/{name}", Kinds: vault, Operation: "SecretGet", Object: "secrets", Action: act(authz.SecretsGetSecret), Handle: s.with(s.get)},
		{Pattern: "GET /secrets/{name}/{version}", Kinds: vault, Operation: "SecretGet", Object: "secrets", Action: act(authz.SecretsGetSecret), Handle: s.with(s.get)},
		{Pattern: "PATCH /secrets/{name}", Kinds: vault, Operation: "SecretUpdate", Object: "secrets", Action: act(authz.SecretsUpdate), MaxBody: updateSecretMaxBody, Handle: s.with(s.update)},
		{Pattern: "PATCH /secrets/{name}/{version}", Kinds: vault, Operation: "SecretUpdate", Object: "secrets", Action: act(authz.SecretsUpdate), MaxBody: updateSecretMaxBody, Handle: s.with(s.update)},
		{Pattern: "GET /secrets", Kinds: vault, Operation: "SecretList", Action: act(authz.SecretsReadMetadata), Handle: s.with(s.list)},
		{Pattern: "GET /secrets/{name}/versions", Kinds: vault, Operation: "SecretListVersions", Object: "secrets", Action: act(authz.SecretsReadMetadata), Handle: s.with(s.listVersions)},
		{Pattern: "DELETE /secrets/{name}", Kinds: vault, Operation: "SecretDelete", Object: "secrets", Action: act(authz.SecretsDelete), Handle: s.with(s.delete)},
		{Pattern: "GET /deletedsecrets", Kinds: vault, Operation: "DeletedSecretList", Action: act(authz.SecretsReadMetadata), Handle: s.with(s.listDeleted)},
		{Pattern: "GET /deletedsecrets/{name}", Kinds: vault, Operation: "DeletedSecretGet", Object: "secrets", Action: act(authz.SecretsReadMetadata), Handle: s.with(s.getDeleted)},
		{Pattern: "DELETE /deletedsecrets/{name}", Kinds: vault, Operation: "DeletedSecretPurge", Object: "secrets", Action: act(authz.SecretsPurge), Handle: s.with(s.purge)},
		{Pattern: "POST /deletedsecrets/{name}/recover", Kinds: vault, Operation: "DeletedSecretRecover", Object: "secrets", Action: act(authz.SecretsRecover), Handle: s.with(s.recover)},
		{Pattern: "POST /secrets/{name}/backup", Kinds: vault, Operation: "SecretBackup", Object: "secrets", Action: act(authz.SecretsBackup), Handle: s.with(s.backup)},
		{Pattern: "POST /secrets/restore", Kinds: vault, Operation: "SecretRestore", Action: act(authz.SecretsRestore), MaxBody: restoreSecretMaxBody, Handle: s.with(s.restore)},
	}
}

func (s *Secrets) set(w http.ResponseWriter, r *http.Request, c *Call, svc *secrets.Service) error {
	var p secrets.SetParams
	if err := DecodeJSON(r, &p); err != nil {
		return err
	}
	b, err := svc.Set(r.Context(), c.Store, c.StoreURL, r.PathValue("name"), p)
	return respondSecrets(w, b, err)
}

// outContentTypes are the values GetSecret's outContentType may take (secrets.json
// ContentType). The conversion applies to certificate-backed secrets only.
var outContentTypes = map[string]bool{"": true, "application/x-pkcs12": true, "application/x-pem-file": true}

func (s *Secrets) get(w http.ResponseWriter, r *http.Request, c *Call, svc *secrets.Service) error {
	out := queryValue(r, "outContentType")
	if !outContentTypes[out] {
		return Errorf(http.StatusBadRequest, "BadParameter", "outContentType must be application/x-pkcs12 or application/x-pem-file")
	}
	b, err := svc.GetAs(r.Context(), c.Store, c.StoreURL, r.PathValue("name"), r.PathValue("version"), out)
	return respondSecrets(w, b, err)
}

func (s *Secrets) update(w http.ResponseWriter, r *http.Request, c *Call, svc *secrets.Service) error {
	var p secrets.UpdateParams
	if err := DecodeJSON(r, &p); err != nil {
		return err
	}
	b, err := svc.Update(r.Context(), c.Store, c.StoreURL, r.PathValue("name"), r.PathValue("version"), p)
	return respondSecrets(w, b, err)
}

// secretListOptions reads maxresults (1–25) and $skiptoken as the keys listings do.
func secretListOptions(r *http.Request) (secrets.ListOptions, error) {
	o, err := listOptions(r)
	return secrets.ListOptions{MaxResults: o.MaxResults, SkipToken: o.SkipToken}, err
}

// writeSecretsPage answers one page with the same {"value","nextLink"} shape and nextLink
// rule as the keys listings.
func writeSecretsPage[T any](w http.ResponseWriter, r *http.Request, c *Call, p secrets.Page[T], o secrets.ListOptions) error {
	return writePage(w, r, c, keys.Page[T]{Value: p.Value, NextToken: p.NextToken}, keys.ListOptions{MaxResults: o.MaxResults, SkipToken: o.SkipToken})
}

func (s *Secrets) list(w http.ResponseWriter, r *http.Request, c *Call, svc *secrets.Service) error {
	o, err := secretListOptions(r)
	if err != nil {
		return err
	}
	p, err := svc.List(r.Context(), c.Store, c.StoreURL, o)
	if err != nil {
		return mapSecretsError(err)
	}
	return writeSecretsPage(w, r, c, p, o)
}

func (s *Secrets) listVersions(w http.ResponseWriter, r *http.Request, c *Call, svc *secrets.Service) error {
	o, err := secretListOptions(r)
	if err != nil {
		return err
	}
	p, err := svc.ListVersions(r.Context(), c.Store, c.StoreURL, r.PathValue("name"), o)
	if err != nil {
		return mapSecretsError(err)
	}
	return writeSecretsPage(w, r, c, p, o)
}

func (s *Secrets) listDeleted(w http.ResponseWriter, r *http.Request, c *Call, svc *secrets.Service) error {
	o, err := secretListOptions(r)
	if err != nil {
		return err
	}
	p, err := svc.ListDeleted(r.Context(), c.Store, c.StoreURL, o)
	if err != nil {
		return mapSecretsError(err)
	}
	return writeSecretsPage(w, r, c, p, o)
}

func (s *Secrets) delete(w http.ResponseWriter, r *http.Request, c *Call, svc *secrets.Service) error {
	b, err := svc.Delete(r.Context(), c.Store, c.StoreURL, r.PathValue("name"))
	return respondSecrets(w, b, err)
}

func (s *Secrets) getDeleted(w http.ResponseWriter, r *http.Request, c *Call, svc *secrets.Service) error {
	b, err := svc.GetDeleted(r.Context(), c.Store, c.StoreURL, r.PathValue("name"))
	return respondSecrets(w, b, err)
}

func (s *Secrets) purge(w http.ResponseWriter, r *http.Request, c *Call, svc *secrets.Service) error {
	if err := svc.Purge(r.Context(), c.Store, c.StoreURL, r.PathValue("name")); err != nil {
		return mapSecretsError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Secrets) recover(w http.ResponseWriter, r *http.Request, c *Call, svc *secrets.Service) error {
	b, err := svc.Recover(r.Context(), c.Store, c.StoreURL, r.PathValue("name"))
	return respondSecrets(w, b, err)
}

func (s *Secrets) backup(w http.ResponseWriter, r *http.Request, c *Call, svc *secrets.Service) error {
	b, err := svc.Backup(r.Context(), c.Store, c.StoreURL, r.PathValue("name"))
	return respondSecrets(w, b, err)
}

func (s *Secrets) restore(w http.ResponseWriter, r *http.Request, c *Call, svc *secrets.Service) error {
	var p secrets.BackupResult
	if err := DecodeJSON(r, &p); err != nil {
		return err
	}
	if len(p.Value) == 0 {
		return Errorf(http.StatusBadRequest, "BadParameter", "value is missing: pass the value of a secret backup")
	}
	b, err := svc.Restore(r.Context(), c.Store, c.StoreURL, p.Value)
	return respondSecrets(w, b, err)
}

// respondSecrets writes v as the 200 answer, or maps err.
func respondSecrets(w http.ResponseWriter, v any, err error) error {
	if err != nil {
		return mapSecretsError(err)
	}
	WriteJSON(w, http.StatusOK, v)
	return nil
}

// secretErrors is the one table from secrets errors to Key Vault's answers.
var secretErrors = []struct {
	err    error
	status int
	code   string
	inner  string
}{
	{secrets.ErrSecretNotFound, http.StatusNotFound, "SecretNotFound", ""},
	{secrets.ErrDeletedButRecoverable, http.StatusConflict, "Conflict", "ObjectIsDeletedButRecoverable"},
	{secrets.ErrConflict, http.StatusConflict, "Conflict", ""},
	{secrets.ErrPurgeProtected, http.StatusForbidden, "Forbidden", ""},
	{secrets.ErrSecretDisabled, http.StatusForbidden, "Forbidden", "SecretDisabled"},
	{secrets.ErrManaged, http.StatusForbidden, "Forbidden", ""},
	{secrets.ErrBadParameter, http.StatusBadRequest, "BadParameter", ""},
}

// mapSecretsError turns a secrets error into an *Error; its message is the domain's, which
// never holds a secret value. Unknown errors stay as they are (a 500 without their text).
func mapSecretsError(err error) error {
	for _, e := range secretErrors {
		if errors.Is(err, e.err) {
			return &Error{Status: e.status, Code: e.code, Inner: e.inner, Message: publicMessage(err)}
		}
	}
	return err
}
