package mgmt

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// mapStoreError is the one table from tenancy errors to wire errors. Handlers answer the
// cases whose message must name the resource themselves; this is the fallback.
func mapStoreError(err error) *api.Error {
	switch {
	case errors.Is(err, tenancy.ErrInvalidName):
		return api.Errorf(http.StatusBadRequest, "BadParameter", strings.TrimPrefix(err.Error(), tenancy.ErrInvalidName.Error()+": "))
	case errors.Is(err, tenancy.ErrExists):
		return api.Errorf(http.StatusConflict, "Conflict", "the resource already exists")
	case errors.Is(err, tenancy.ErrNotFound):
		return api.ErrNotFound
	}
	return nil
}

func badParameter(msg string) error { return api.Errorf(http.StatusBadRequest, "BadParameter", msg) }

func notFound(what, name string) error {
	return api.Errorf(http.StatusNotFound, "NotFound", what+" "+name+" was not found in this tenant")
}

// decodeOptional decodes a JSON object body into v like api.DecodeJSON (unknown fields and
// trailing data rejected), but accepts an empty body, leaving v as it is.
func decodeOptional(r *http.Request, v any) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return api.ErrRequestTooLarge
		}
		return badParameter("the request body could not be read")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return api.DecodeJSON(r, v)
}

// checkQuery rejects query parameters other than allowed, and repeated ones.
func checkQuery(r *http.Request, allowed ...string) error {
	for k, v := range r.URL.Query() {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok && len(allowed) == 0 {
			return badParameter("unknown query parameter " + quoteShort(k) + "; this endpoint takes none")
		}
		if !ok {
			return badParameter("unknown query parameter " + quoteShort(k) + "; this endpoint accepts " + strings.Join(allowed, ", "))
		}
		if len(v) != 1 {
			return badParameter("query parameter " + k + " is repeated")
		}
	}
	return nil
}

// quoteShort quotes a client-supplied string for a message, cut to 40 bytes.
func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return `"` + strings.ToValidUTF8(s, "?") + `"`
}
