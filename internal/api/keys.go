package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/keys"
	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Keys serves the Key Vault keys API over a keys.Service.
type Keys struct {
	// Svc returns the keys service of a kind of store (vaults and managed HSM pools may use
	// different crypto providers); it exists only while the server is unsealed.
	Svc func(kind tenancy.Kind) (*keys.Service, error)
}

type keysHandler func(w http.ResponseWriter, r *http.Request, c *Call, svc *keys.Service) error

// with adapts a handler that needs the keys service.
func (k *Keys) with(h keysHandler) func(http.ResponseWriter, *http.Request, *Call) error {
	return func(w http.ResponseWriter, r *http.Request, c *Call) error {
		svc, err := k.Svc(c.Store.Kind)
		if err != nil {
			return err
		}
		return h(w, r, c, svc)
	}
}

// actions builds the vault and managed HSM data action of a route.
func actions(vault, hsm authz.Action) map[tenancy.Kind]string {
	return map[tenancy.Kind]string{tenancy.KindVault: string(vault), tenancy.KindManagedHSM: string(hsm)}
}

// Routes are the keys endpoints (keys.json), for vaults and managed HSM pools alike. Paths
// reach the mux already normalised: a trailing slash and an empty version segment ("latest",
// as the SDKs send it) are removed by the data plane.
func (k *Keys) Routes() []Route {
	// op is a key operation: it uses a key and changes nothing stored.
	op := func(name string, vault, hsm authz.Action, kh keysHandler) []Route {
		h := k.with(kh)
		return []Route{
			{Pattern: "POST /keys/{name}/{version}/" + strings.ToLower(name), Operation: "Key" + name, Object: "keys", Action: actions(vault, hsm), MaxBody: 64 << 10, ReadOnly: true, Handle: h},
			{Pattern: "POST /keys/{name}/" + strings.ToLower(name), Operation: "Key" + name, Object: "keys", Action: actions(vault, hsm), MaxBody: 64 << 10, ReadOnly: true, Handle: h},
		}
	}
	rs := []Route{
		{Pattern: "POST /keys/{name}/create", Operation: "KeyCreate", Object: "keys", Action: actions(authz.KeysCreate, authz.HSMKeysCreate), MaxBody: 64 << 10, Handle: k.with(k.create)},
		{Pattern: "PUT /keys/{name}", Operation: "KeyImport", Object: "keys", Action: actions(authz.KeysImport, authz.HSMKeysImport), MaxBody: 256 << 10, Handle: k.with(k.importKey)},
		{Pattern: "GET /keys/{name}", Operation: "KeyGet", Object: "keys", Action: actions(authz.KeysRead, authz.HSMKeysRead), Handle: k.with(k.get)},
		{Pattern: "GET /keys/{name}/{version}", Operation: "KeyGet", Object: "keys", Action: actions(authz.KeysRead, authz.HSMKeysRead), Handle: k.with(k.get)},
		{Pattern: "PATCH /keys/{name}", Operation: "KeyUpdate", Object: "keys", Action: actions(authz.KeysUpdate, authz.HSMKeysWrite), MaxBody: 64 << 10, Handle: k.with(k.update)},
		{Pattern: "PATCH /keys/{name}/{version}", Operation: "KeyUpdate", Object: "keys", Action: actions(authz.KeysUpdate, authz.HSMKeysWrite), MaxBody: 64 << 10, Handle: k.with(k.update)},
		{Pattern: "GET /keys", Operation: "KeyList", Action: actions(authz.KeysRead, authz.HSMKeysRead), Handle: k.with(k.list)},
		{Pattern: "GET /keys/{name}/versions", Operation: "KeyListVersions", Object: "keys", Action: actions(authz.KeysRead, authz.HSMKeysRead), Handle: k.with(k.listVersions)},
		{Pattern: "DELETE /keys/{name}", Operation: "KeyDelete", Object: "keys", Action: actions(authz.KeysDelete, authz.HSMKeysDelete), Handle: k.with(k.delete)},
		{Pattern: "GET /deletedkeys", Operation: "DeletedKeyList", Action: actions(authz.KeysRead, authz.HSMDeletedKeysRead), Handle: k.with(k.listDeleted)},
		{Pattern: "GET /deletedkeys/{name}", Operation: "DeletedKeyGet", Object: "keys", Action: actions(authz.KeysRead, authz.HSMDeletedKeysRead), Handle: k.with(k.getDeleted)},
		{Pattern: "DELETE /deletedkeys/{name}", Operation: "DeletedKeyPurge", Object: "keys", Action: actions(authz.KeysPurge, authz.HSMDeletedKeysPurge), Handle: k.with(k.purge)},
		{Pattern: "POST /deletedkeys/{name}/recover", Operation: "DeletedKeyRecover", Object: "keys", Action: actions(authz.KeysRecover, authz.HSMDeletedKeysRecover), Handle: k.with(k.recover)},
		{Pattern: "POST /keys/{name}/backup", Operation: "KeyBackup", Object: "keys", Action: actions(authz.KeysBackup, authz.HSMKeysBackup), Handle: k.with(k.backup)},
		{Pattern: "POST /keys/restore", Operation: "KeyRestore", Action: actions(authz.KeysRestore, authz.HSMKeysRestore), MaxBody: 1 << 20, Handle: k.with(k.restore)},
		{Pattern: "POST /keys/{name}/rotate", Operation: "KeyRotate", Object: "keys", Action: actions(authz.KeysRotate, authz.HSMKeysRotate), Handle: k.with(k.rotate)},
		{Pattern: "GET /keys/{name}/rotationpolicy", Operation: "KeyRotationPolicyGet", Object: "keys", Action: actions(authz.KeyRotationPolicyRead, authz.HSMKeysRead), Handle: k.with(k.getPolicy)},
		{Pattern: "PUT /keys/{name}/rotationpolicy", Operation: "KeyRotationPolicyUpdate", Object: "keys", Action: actions(authz.KeyRotationPolicyWrite, authz.HSMKeysWrite), MaxBody: 64 << 10, Handle: k.with(k.putPolicy)},
	}
	rs = append(rs, op("Sign", authz.KeysSign, authz.HSMKeysSign, k.sign)...)
	rs = append(rs, op("Verify", authz.KeysVerify, authz.HSMKeysVerify, k.verify)...)
	rs = append(rs, op("Encrypt", authz.KeysEncrypt, authz.HSMKeysEncrypt, k.crypt((*keys.Service).Encrypt))...)
	rs = append(rs, op("Decrypt", authz.KeysDecrypt, authz.HSMKeysDecrypt, k.crypt((*keys.Service).Decrypt))...)
	rs = append(rs, op("WrapKey", authz.KeysWrap, authz.HSMKeysWrap, k.crypt((*keys.Service).WrapKey))...)
	rs = append(rs, op("UnwrapKey", authz.KeysUnwrap, authz.HSMKeysUnwrap, k.crypt((*keys.Service).UnwrapKey))...)
	return rs
}

func (k *Keys) create(w http.ResponseWriter, r *http.Request, c *Call, svc *keys.Service) error {
	var p keys.CreateParams
	if err := DecodeJSON(r, &p); err != nil {
		return err
	}
	b, err := svc.Create(r.Context(), c.Store, c.StoreURL, r.PathValue("name"), p)
	return respond(w, b, err)
}

func (k *Keys) importKey(w http.ResponseWriter, r *http.Request, c *Call, svc *keys.Service) error {
	var p keys.ImportParams
	if err := DecodeJSON(r, &p); err != nil {
		return err
	}
	b, err := svc.Import(r.Context(), c.Store, c.StoreURL, r.PathValue("name"), p)
	return respond(w, b, err)
}

func (k *Keys) get(w http.ResponseWriter, r *http.Request, c *Call, svc *keys.Service) error {
	b, err := svc.Get(r.Context(), c.Store, c.StoreURL, r.PathValue("name"), r.PathValue("version"))
	return respond(w, b, err)
}

func (k *Keys) update(w http.ResponseWriter, r *http.Request, c *Call, svc *keys.Service) error {
	var p keys.UpdateParams
	if err := DecodeJSON(r, &p); err != nil {
		return err
	}
	b, err := svc.Update(r.Context(), c.Store, c.StoreURL, r.PathValue("name"), r.PathValue("version"), p)
	return respond(w, b, err)
}

// listOptions reads maxresults (1–25) and $skiptoken.
func listOptions(r *http.Request) (keys.ListOptions, error) {
	q := r.URL.Query()
	var o keys.ListOptions
	if v := q.Get("maxresults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 25 {
			return o, Errorf(http.StatusBadRequest, "BadParameter", "maxresults must be an integer from 1 to 25")
		}
		o.MaxResults = n
	}
	o.SkipToken = q.Get("$skiptoken")
	return o, nil
}

// writePage answers {"value":[...],"nextLink":...} with a nextLink on the store's own URL.
func writePage[T any](w http.ResponseWriter, r *http.Request, c *Call, p keys.Page[T], o keys.ListOptions) error {
	var next *string
	if p.NextToken != "" {
		in := r.URL.Query()
		q := url.Values{"api-version": {in.Get("api-version")}, "$skiptoken": {p.NextToken}}
		if o.MaxResults > 0 {
			q.Set("maxresults", strconv.Itoa(o.MaxResults))
		}
		// The next page is the same query: keep the options that select what is listed.
		for _, k := range []string{"$filter", "includePending"} {
			if v := in.Get(k); v != "" {
				q.Set(k, v)
			}
		}
		s := c.StoreURL + wirePath(r) + "?" + q.Encode()
		next = &s
	}
	if p.Value == nil {
		p.Value = []T{}
	}
	WriteJSON(w, http.StatusOK, struct {
		Value    []T     `json:"value"`
		NextLink *string `json:"nextLink"`
	}{p.Value, next})
	return nil
}

func (k *Keys) list(w http.ResponseWriter, r *http.Request, c *Call, svc *keys.Service) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	p, err := svc.List(r.Context(), c.Store, c.StoreURL, o)
	if err != nil {
		return mapKeysError(err)
	}
	return writePage(w, r, c, p, o)
}

func (k *Keys) listVersions(w http.ResponseWriter, r *http.Request, c *Call, svc *keys.Service) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	p, err := svc.ListVersions(r.Context(), c.Store, c.StoreURL, r.PathValue("name"), o)
	if err != nil {
		return mapKeysError(err)
	}
	return writePage(w, r, c, p, o)
}

func (k *Keys) listDeleted(w http.ResponseWriter, r *http.Request, c *Call, svc *keys.Service) error {
	o, err := listOptions(r)
	if err != nil {
		return err
	}
	p, err := svc.ListDeleted(r.Context(), c.Store, c.StoreURL, o)
	if err != nil {
		return mapKeysError(err)
	}
	return writePage(w, r, c, p, o)
}

func (k *Keys) delete(w http.ResponseWriter, r *http.Request, c *Call, svc *keys.Service) error {
	b, err := svc.Delete(r.Context(), c.Store, c.StoreURL, r.PathValue("name"))
	return respond(w, b, err)
}

func (k *Keys) getDeleted(w http.ResponseWriter, r *http.Request, c *Call, svc *keys.Service) error {
	b, err := svc.GetDeleted(r.Context(), c.Store, c.StoreURL, r.PathValue("name"))
	return respond(w, b, err)
}

func (k *Keys) purge(w http.ResponseWriter, r *http.Request, c *Call, svc *keys.Service) error {
	if err := svc.Purge(r.Context(), c.Store, c.StoreURL, r.PathValue("name")); err != nil {
		return mapKeysError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (k *Keys) recover(w http.ResponseWriter, r *http.Request, c *Call, svc *keys.Service) error {
	b, err := svc.Recover(r.Context(), c.Store, c.StoreURL, r.PathValue("name"))
	return respond(w, b, err)
}

func (k *Keys) backup(w http.ResponseWriter, r *http.Request, c *Call, svc *keys.Service) error {
	b, err := svc.Backup(r.Context(), c.Store, r.PathValue("name"))
	return respond(w, b, err)
}

func (k *Keys) restore(w http.ResponseWriter, r *http.Request, c *Call, svc *keys.Service) error {
	var p keys.BackupResult
	if err := DecodeJSON(r, &p); err != nil {
		return err
	}
	b, err := svc.Restore(r.Context(), c.Store, c.StoreURL, p.Value)
	return respond(w, b, err)
}

func (k *Keys) rotate(w http.ResponseWriter, r *http.Request, c *Call, svc *keys.Service) error {
	b, err := svc.Rotate(r.Context(), c.Store, c.StoreURL, r.PathValue("name"))
	return respond(w, b, err)
}

func (k *Keys) getPolicy(w http.ResponseWriter, r *http.Request, c *Call, svc *keys.Service) error {
	p, err := svc.GetRotationPolicy(r.Context(), c.Store, c.StoreURL, r.PathValue("name"))
	return respond(w, p, err)
}

func (k *Keys) putPolicy(w http.ResponseWriter, r *http.Request, c *Call, svc *keys.Service) error {
	var p keys.KeyRotationPolicy
	if err := DecodeJSON(r, &p); err != nil {
		return err
	}
	out, err := svc.UpdateRotationPolicy(r.Context(), c.Store, c.StoreURL, r.PathValue("name"), p)
	return respond(w, out, err)
}

func (k *Keys) sign(w http.ResponseWriter, r *http.Request, c *Call, svc *keys.Service) error {
	var p keys.SignParams
	if err := decodeSign(r, &p); err != nil {
		return err
	}
	if err := required("value", p.Value); err != nil {
		return err
	}
	out, err := svc.Sign(r.Context(), c.Store, c.StoreURL, r.PathValue("name"), r.PathValue("version"), p)
	return respond(w, out, err)
}

func (k *Keys) verify(w http.ResponseWriter, r *http.Request, c *Call, svc *keys.Service) error {
	var p keys.VerifyParams
	if err := decodeVerify(r, &p); err != nil {
		return err
	}
	if err := required("digest", p.Digest); err != nil {
		return err
	}
	if err := required("value", p.Signature); err != nil {
		return err
	}
	out, err := svc.Verify(r.Context(), c.Store, c.StoreURL, r.PathValue("name"), r.PathValue("version"), p)
	return respond(w, out, err)
}

type cryptFn func(*keys.Service, context.Context, tenancy.Vault, string, string, string, keys.OperationParams) (keys.OperationResult, error)

func (k *Keys) crypt(fn cryptFn) keysHandler {
	return func(w http.ResponseWriter, r *http.Request, c *Call, svc *keys.Service) error {
		var p keys.OperationParams
		if err := decodeOperation(r, &p); err != nil {
			return err
		}
		if err := required("value", p.Value); err != nil {
			return err
		}
		out, err := fn(svc, r.Context(), c.Store, c.StoreURL, r.PathValue("name"), r.PathValue("version"), p)
		if keys.IsDecryptFailure(err) {
			c.AuditReason = DecryptFailedReason // counted by the failure-rate alarm
		}
		return respond(w, out, err)
	}
}

// DecryptFailedReason is the audit reason of a decrypt or unwrapKey whose ciphertext the key
// did not decrypt (after the error code: "BadParameter: decryption failed").
const DecryptFailedReason = "decryption failed"

// required refuses a key operation whose body lacks a member keys.json requires (value,
// digest). A member that is there but empty ("") is the caller's value: an empty plaintext
// encrypts. Without the check a missing value was an empty one, and {"alg":"A256GCM"} was
// answered with a tag.
func required(name string, v provider.B64) error {
	if v == nil {
		return Errorf(http.StatusBadRequest, "BadParameter", "The parameter "+name+" is required.")
	}
	return nil
}

func respond(w http.ResponseWriter, v any, err error) error {
	if err != nil {
		return mapKeysError(err)
	}
	WriteJSON(w, http.StatusOK, v)
	return nil
}

// keyErrors is the one table from keys errors to Key Vault's answers; the more specific
// forbidden errors come before ErrForbiddenOp, which they wrap.
var keyErrors = []struct {
	err    error
	status int
	code   string
	inner  string
}{
	{keys.ErrKeyNotFound, http.StatusNotFound, "KeyNotFound", ""},
	{keys.ErrDeletedButRecoverable, http.StatusConflict, "Conflict", "ObjectIsDeletedButRecoverable"},
	{keys.ErrConflict, http.StatusConflict, "Conflict", ""},
	{keys.ErrPurgeProtected, http.StatusForbidden, "Forbidden", ""},
	{keys.ErrKeyDisabled, http.StatusForbidden, "Forbidden", "KeyDisabled"},
	{keys.ErrKeyNotYetValid, http.StatusForbidden, "Forbidden", "KeyNotYetValid"},
	{keys.ErrKeyExpired, http.StatusForbidden, "Forbidden", "KeyExpired"},
	{keys.ErrGCMLimit, http.StatusForbidden, "Forbidden", "AESGCMLimitReached"},
	{keys.ErrForbiddenOp, http.StatusForbidden, "Forbidden", "KeyOperationForbidden"},
	{keys.ErrManaged, http.StatusForbidden, "Forbidden", ""},
	{keys.ErrKeyMaterialGone, http.StatusNotFound, "KeyNotFound", "KeyMaterialNotFound"},
	{keys.ErrKeyTypeNotSupported, http.StatusBadRequest, "BadParameter", "KeyTypeNotSupported"},
	{keys.ErrBadParameter, http.StatusBadRequest, "BadParameter", ""},
}

// mapKeysError turns a keys error into an *Error; its message is the domain's, which never
// holds key material. Unknown errors stay as they are (a 500 without their text).
func mapKeysError(err error) error {
	if errors.Is(err, provider.ErrUnavailable) {
		return Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "the HSM is unavailable; retry later")
	}
	for _, e := range keyErrors {
		if errors.Is(err, e.err) {
			return &Error{Status: e.status, Code: e.code, Inner: e.inner, Message: publicMessage(err)}
		}
	}
	return err
}

// publicMessage capitalises the domain message as Key Vault's are.
func publicMessage(err error) string {
	m := err.Error()
	if m == "" {
		return m
	}
	return strings.ToUpper(m[:1]) + m[1:]
}
