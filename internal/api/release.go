package api

import (
	"errors"
	"net/http"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/keys"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Release serves Key Vault's secure key release (POST /keys/{name}[/{version}]/release,
// keys.json "release") over a keys.Releaser. Every attempt is audited with the policy
// decision (Call.AuditReason), granted or denied.
type Release struct {
	// Releaser returns the releaser of a kind of store; it exists only while unsealed.
	Releaser func(kind tenancy.Kind) (*keys.Releaser, error)
}

// MaxReleaseBody bounds a release request: the attestation token dominates.
const MaxReleaseBody = keys.MaxReleaseTarget + 4<<10

// Routes are the release endpoints, with and without a version.
func (rl *Release) Routes() []Route {
	act := actions(authz.KeysRelease, authz.HSMKeysRelease)
	return []Route{
		{Pattern: "POST /keys/{name}/{version}/release", Operation: "KeyRelease", Object: "keys", Action: act, MaxBody: MaxReleaseBody, Handle: rl.release},
		{Pattern: "POST /keys/{name}/release", Operation: "KeyRelease", Object: "keys", Action: act, MaxBody: MaxReleaseBody, Handle: rl.release},
	}
}

func (rl *Release) release(w http.ResponseWriter, r *http.Request, c *Call) error {
	rel, err := rl.Releaser(c.Store.Kind)
	if err != nil {
		return err
	}
	var p keys.ReleaseParams
	if err := DecodeJSON(r, &p); err != nil {
		c.AuditReason = "denied: malformed request"
		return err
	}
	p.APIVersion = r.URL.Query().Get("api-version")
	res, reason, err := rel.Release(r.Context(), c.Store, c.StoreURL, r.PathValue("name"), r.PathValue("version"), p)
	c.AuditReason = reason
	c.AuditDenied = errors.Is(err, keys.ErrReleaseDenied)
	if err != nil {
		if c.AuditReason == "" && errors.Is(err, keys.ErrBadParameter) {
			c.AuditReason = "denied: bad request"
		}
		return mapKeysError(err)
	}
	WriteJSON(w, http.StatusOK, res)
	return nil
}
