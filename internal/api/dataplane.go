package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coffer-kms/coffer/internal/failcount"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Caller is an authenticated principal.
type Caller struct {
	TenantID string
	ObjectID string
	AppID    string
}

// Authenticator validates a bearer token presented to a key store whose audience is resource.
// Any failure is reported as ErrUnauthenticated (the reason goes to the log only).
type Authenticator interface {
	Authenticate(ctx context.Context, raw string, store tenancy.Vault, resource string) (Caller, error)
}

// Authorizer decides whether caller may perform action on scope. A refusal is an *Error
// (403 ForbiddenByRbac naming the action).
type Authorizer interface {
	Authorize(ctx context.Context, caller Caller, action, scope string) error
}

// StoreResolver finds a vault or managed HSM pool by kind and name.
type StoreResolver interface {
	Vault(ctx context.Context, kind tenancy.Kind, name string) (tenancy.Vault, error)
}

// AuditRecord is what the data plane reports about every request.
type AuditRecord struct {
	Time                           time.Time
	Operation, Action, ObjectID    string
	Tenant, Vault                  string
	CallerOID, CallerApp, CallerTn string
	Status                         int
	Result, Reason, ClientAddr     string
	// ReadOnly says the request cannot change stored state (a GET, a Route marked ReadOnly,
	// or a request refused with 429 Throttled), so its record may be synced after the
	// response (Auditor's choice).
	ReadOnly bool
}

// Auditor writes one record per request; if it fails the request fails (no unaudited
// operation).
type Auditor interface {
	Record(ctx context.Context, rec AuditRecord) error
}

// ErrUnauthenticated is returned by an Authenticator for any unusable token.
var ErrUnauthenticated = errors.New("the bearer token is not valid for this key store")

// DataPlane serves the Key Vault data-plane API of vaults and managed HSM pools.
type DataPlane struct {
	Stores    StoreResolver
	Authn     Authenticator
	Authz     Authorizer
	Audit     Auditor
	Sealed    func() bool
	Authority string // identity provider base URL, e.g. https://localhost:8443
	DNSSuffix string
	// TenantSecret keys the stand-in tenant id named in challenges for stores that do not
	// exist, so that "no such vault" and "another tenant's vault" look alike.
	TenantSecret []byte
	MaxBody      int64
	Log          func(msg string, args ...any)
	// LogError, if set, logs what the operator must act on: a request answered 5xx for a
	// failure below the wire layer (a full disk; an internal error, whose cause the answer
	// hides) and an audit record that could not be written.
	LogError func(msg string, args ...any)
	// Limits throttles each tenant's requests (nil: no limit).
	Limits *Limiter
	// AuthFailures, if set, counts the bearer tokens refused per source address; a source
	// with MaxAuthFailures of them within the counter's window is answered 429 before its
	// tokens are checked (SECURITY-NOTES R3), until the window ends.
	AuthFailures    *failcount.Counter
	MaxAuthFailures int
}

// Call is one authenticated, authorised data-plane request.
type Call struct {
	Store    tenancy.Vault
	Caller   Caller
	StoreURL string // https://<store host>[:port], as the client addressed it
	// AuditReason, if a handler sets it, is added to the request's audit record (e.g. the
	// policy decision of a key release); it must never hold secrets or claim values.
	AuditReason string
	// AuditDenied marks a handler's refusal as a denial (not an error) in the audit record.
	AuditDenied bool
}

// Route is one data-plane endpoint, declared as data. The pipeline is: api-version → sealed
// → body limit → authenticate (401 challenge) → authorise → handler → audit.
type Route struct {
	Pattern   string
	Kinds     []tenancy.Kind
	Operation string
	// Action is the RBAC data action, by the kind of store.
	Action map[tenancy.Kind]string
	// Object, if set ("keys", "secrets", "certificates"), narrows the RBAC scope to the object
	// named by the {name} path value, so object-scope role assignments apply.
	Object  string
	MaxBody int64
	// ReadOnly marks a POST that changes nothing stored (sign, verify, encrypt, decrypt,
	// wrapKey, unwrapKey); GET routes are read-only anyway. See AuditRecord.ReadOnly.
	ReadOnly bool
	Handle   func(w http.ResponseWriter, r *http.Request, c *Call) error
}

// queryValues is url.ParseQuery(raw)[name] without building the whole map, for the query
// parameter every request carries; queries with escapes take the general path.
func queryValues(raw, name string) []string {
	if strings.ContainsAny(raw, "%+;") {
		q, _ := url.ParseQuery(raw)
		return q[name]
	}
	var out []string
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if k, v, _ := strings.Cut(kv, "="); k == name {
			out = append(out, v)
		}
	}
	return out
}

// queryValue is r.URL.Query().Get(name) through queryValues.
func queryValue(r *http.Request, name string) string {
	if v := queryValues(r.URL.RawQuery, name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// supportedVersions are the api-versions Coffer answers; the newest stable one is named in
// errors. 2026-01-01-preview is what the current preview SDKs send on every request
// (azkeys v1.6.0-beta.1; azadmin's rbac and backup clients at the source's head): it is
// accepted on the routes Coffer has, which answer as in 2026-04-01; the operations that
// preview adds (securewrapkey, secureunwrapkey, /ekm) stay 404. No other preview is.
var supportedVersions = map[string]bool{
	"7.0": true, "7.1": true, "7.2": true, "7.3": true, "7.4": true, "7.5": true, "7.6": true,
	"2025-07-01": true, "2026-01-01-preview": true, "2026-04-01": true,
}

const latestVersion = "2026-04-01"

// CheckAPIVersion enforces Key Vault's required, known api-version query parameter.
func CheckAPIVersion(r *http.Request) error {
	v := queryValues(r.URL.RawQuery, "api-version")
	if len(v) != 1 || v[0] == "" {
		return Errorf(http.StatusBadRequest, "BadParameter", "The api-version query parameter is required: add ?api-version="+latestVersion+".")
	}
	if !supportedVersions[v[0]] {
		return Errorf(http.StatusBadRequest, "BadParameter", fmt.Sprintf("The specified version (%.20s) is not recognized. Consider using the latest supported version (%s).", v[0], latestVersion))
	}
	return nil
}

// StoreHost parses a request host into the key store it names, if any:
// <vault>.<suffix> or <pool>.managedhsm.<suffix>.
func StoreHost(host, suffix string) (tenancy.Kind, string, bool) {
	h := strings.ToLower(strings.TrimSuffix(hostOnly(host), "."))
	if name, ok := strings.CutSuffix(h, ".managedhsm."+suffix); ok && name != "" && !strings.Contains(name, ".") {
		return tenancy.KindManagedHSM, name, true
	}
	if name, ok := strings.CutSuffix(h, "."+suffix); ok && name != "" && !strings.Contains(name, ".") {
		return tenancy.KindVault, name, true
	}
	return "", "", false
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

func portOf(hostport string) string {
	if _, p, err := net.SplitHostPort(hostport); err == nil {
		return p
	}
	return ""
}

// Resource is the audience of tokens for a store kind, as the SDK's challenge check demands
// (the store host must end with "." + the resource host, ports included).
func (d *DataPlane) Resource(kind tenancy.Kind, host string) string {
	base := d.DNSSuffix
	if kind == tenancy.KindManagedHSM {
		base = "managedhsm." + base
	}
	if p := portOf(host); p != "" && p != "443" {
		return "https://" + base + ":" + p
	}
	return "https://" + base
}

// challengeTenant names the store's tenant, or a stable stand-in for a store that does not
// exist.
func (d *DataPlane) challengeTenant(kind tenancy.Kind, name string, store *tenancy.Vault) string {
	if store != nil {
		return store.TenantID
	}
	m := hmac.New(sha256.New, d.TenantSecret)
	m.Write([]byte(string(kind) + "/" + name))
	b := m.Sum(nil)[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Handler serves the routes for requests whose host names a store (or, with fallback set,
// for every request: dev mode's default vault on the bare host).
func (d *DataPlane) Handler(routes []Route, fallback *tenancy.Vault) http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.Handle(rt.Pattern, d.wrap(rt, fallback))
	}
	mux.Handle("/", d.wrap(Route{Pattern: "/", Operation: "Unknown", Handle: func(http.ResponseWriter, *http.Request, *Call) error {
		return ErrNotFound
	}}, fallback))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if encodedSlash(r.URL) {
			WriteError(w, Errorf(http.StatusBadRequest, "BadParameter", "the request path must not contain an encoded '/' (%2F): names and versions never hold one"))
			return
		}
		p, ok := canonicalPath(r.URL.Path)
		if !ok {
			WriteError(w, Errorf(http.StatusBadRequest, "BadParameter", "the request path must not contain '.' or '..' segments"))
			return
		}
		if rp := routePath(p); rp != p {
			r = withWirePath(r, p)
			p = rp
		}
		r.URL.Path, r.URL.RawPath = p, ""
		mux.ServeHTTP(w, r)
	})
}

// encodedSlash reports whether the path the client sent holds %2F. Routing reads the decoded
// path, in which it would be a separator: GET /keys/k%2Fversions would list k's versions and
// DELETE /certificates/c%2Fpending would delete c's pending operation, behind the back of
// anything (a proxy's rule, an audit reader) that takes k%2Fversions for one name
// (SECURITY-NOTES I1: "/" inside a name is a 400).
func encodedSlash(u *url.URL) bool {
	// RawPath is set only when the path had escapes its decoded form does not reproduce,
	// which %2F always is.
	return strings.Contains(u.RawPath, "%2F") || strings.Contains(u.RawPath, "%2f")
}

// canonicalPath collapses empty segments (the SDKs send /keys/{name}//sign for "latest
// version") and drops a trailing slash, so routing never redirects; "." and ".." segments
// are refused rather than resolved.
func canonicalPath(p string) (string, bool) {
	segs := strings.Split(p, "/")
	out := segs[:0]
	for _, s := range segs {
		switch s {
		case "":
			continue
		case ".", "..":
			return "", false
		}
		out = append(out, s)
	}
	return "/" + strings.Join(out, "/"), true
}

func (d *DataPlane) wrap(rt Route, fallback *tenancy.Vault) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		rec := AuditRecord{Time: time.Now().UTC(), Operation: rt.Operation, ClientAddr: r.RemoteAddr, ObjectID: wirePath(r),
			ReadOnly: rt.ReadOnly || r.Method == http.MethodGet}
		kind, name, ok := StoreHost(r.Host, d.DNSSuffix)
		if !ok && fallback != nil {
			kind, name = fallback.Kind, fallback.Name
		}
		rec.Vault = name
		fail := func(err error) {
			if ctx.Err() != nil && errors.Is(err, context.Canceled) {
				err = ErrClientClosed // the client hung up mid-request: nothing failed here
			}
			var e *Error
			if throttled := (*ThrottleError)(nil); errors.As(err, &throttled) {
				// A key creation over its vault's creation limit (CreateLimiter), refused
				// before anything was made or stored.
				e, rec.Result = throttled.write(w), "denied"
			} else {
				e = WriteError(w, err)
			}
			if e.Status >= 500 && !errors.As(err, new(*Error)) && d.LogError != nil {
				d.LogError("request failed", "operation", rt.Operation, "vault", rec.Vault, "status", e.Status, "err", err)
			}
			rec.Status, rec.Reason = e.Status, joinReason(e.Code, rec.Reason)
			if rec.Result == "" {
				rec.Result = "error"
			}
			// A refused request (no valid token, no permission) changed nothing: its record
			// need not wait for a sync, so a flood of refusals cannot make everyone's
			// requests queue behind audit fsyncs (as a throttled request's, below).
			rec.ReadOnly = rec.ReadOnly || rec.Result == "unauthenticated" || rec.Result == "denied"
			if d.Audit != nil {
				if aerr := d.Audit.Record(ctx, rec); aerr != nil && d.LogError != nil {
					d.LogError("audit write failed after an error response", "err", aerr)
				}
			}
		}
		// Sealed before anything is read, the store's own record included (SECURITY-NOTES D7).
		if d.Sealed() {
			fail(Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "coffer is sealed: unseal it with `coffer operator unseal`"))
			return
		}
		var store *tenancy.Vault
		if ok {
			if v, err := d.Stores.Vault(ctx, kind, name); err == nil {
				store = &v
			}
		} else {
			store = fallback
		}
		if err := CheckAPIVersion(r); err != nil {
			fail(err)
			return
		}
		// Authenticate before anything reveals whether the store or object exists.
		resource := d.Resource(kind, r.Host)
		auth := r.Header.Values("Authorization")
		raw, hasBearer := "", false
		if len(auth) == 1 {
			raw, hasBearer = strings.CutPrefix(auth[0], "Bearer ")
		}
		challenge := func() string { // only refusals carry it
			return fmt.Sprintf(`Bearer authorization="%s/%s", resource="%s"`, d.Authority, d.challengeTenant(kind, name, store), resource)
		}
		if !hasBearer || raw == "" {
			w.Header().Set("WWW-Authenticate", challenge())
			rec.Result = "unauthenticated"
			fail(Errorf(http.StatusUnauthorized, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token."))
			return
		}
		if store == nil {
			w.Header().Set("WWW-Authenticate", challenge())
			rec.Result = "unauthenticated"
			fail(Errorf(http.StatusUnauthorized, "Unauthorized", "AKV10022: The bearer token is not valid for this key store. Get a token for the resource named in WWW-Authenticate."))
			return
		}
		rec.Tenant = store.TenantID
		var source string // the client's address, when refused tokens are counted
		if d.AuthFailures != nil {
			source = failcount.Source(r.RemoteAddr)
			if wait := d.AuthFailures.Blocked(source, d.MaxAuthFailures); wait > 0 {
				e := (&ThrottleError{RetryAfter: wait, Reason: "too many requests with bearer tokens that are not valid came from this address"}).write(w)
				rec.Status, rec.Reason, rec.Result, rec.ReadOnly = e.Status, e.Code, "denied", true
				if d.Audit != nil {
					_ = d.Audit.Record(ctx, rec)
				}
				return
			}
		}
		caller, err := d.Authn.Authenticate(ctx, raw, *store, resource)
		if e := (*Error)(nil); errors.As(err, &e) && e.Status >= 500 {
			fail(err) // the server cannot check tokens now: not the caller's fault
			return
		}
		if err != nil {
			if d.Log != nil {
				d.Log("bearer token refused", "vault", name, "reason", err)
			}
			if d.AuthFailures != nil {
				d.AuthFailures.Fail(source)
			}
			w.Header().Set("WWW-Authenticate", challenge())
			rec.Result = "unauthenticated"
			fail(Errorf(http.StatusUnauthorized, "Unauthorized", "AKV10022: The bearer token is not valid for this key store. Get a token for the resource named in WWW-Authenticate."))
			return
		}
		rec.CallerOID, rec.CallerApp, rec.CallerTn = caller.ObjectID, caller.AppID, caller.TenantID
		release, throttled := d.Limits.Acquire(store.TenantID, time.Now())
		if throttled != nil {
			e := throttled.write(w)
			rec.Status, rec.Reason, rec.Result = e.Status, e.Code, "denied"
			// A throttled request changed nothing, whatever its method: its record need not
			// wait for a sync. Otherwise a tenant flooding writes above its quota would have
			// every one of its 429s wait for an audit fsync, and every other tenant's
			// request queue behind those syncs (BENCHMARKS.md, "Noisy neighbour").
			rec.ReadOnly = true
			if d.Audit != nil {
				_ = d.Audit.Record(ctx, rec)
			}
			return
		}
		defer release()
		if !servesKind(rt, store.Kind) {
			fail(ErrNotFound)
			return
		}
		rec.Action = rt.Action[store.Kind]
		scope := StoreScope(*store)
		if n := r.PathValue("name"); rt.Object != "" && n != "" {
			scope += "/" + rt.Object + "/" + n
		}
		if err := d.Authz.Authorize(ctx, caller, rec.Action, scope); err != nil {
			rec.Result = "denied"
			fail(err)
			return
		}
		limit := rt.MaxBody
		if limit == 0 {
			limit = d.MaxBody
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		call := &Call{Store: *store, Caller: caller, StoreURL: "https://" + strings.ToLower(r.Host)}
		bw := pooledBufferedWriter()
		defer bw.release()
		if err := rt.Handle(bw, r, call); err != nil {
			rec.Reason = call.AuditReason
			if call.AuditDenied {
				rec.Result = "denied"
			}
			fail(err)
			return
		}
		// The audit record is durable before the response leaves.
		rec.Status, rec.Result, rec.Reason = bw.Status(), "success", call.AuditReason
		if d.Audit != nil {
			if err := d.Audit.Record(ctx, rec); err != nil {
				if d.LogError != nil {
					d.LogError("audit write failed: refusing the request", "err", err)
				}
				WriteError(w, Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "the audit log cannot be written, so the result is withheld; a write may have taken effect"))
				return
			}
		}
		bw.Flush(w)
	})
}

// joinReason prefixes a handler's audit reason with the error code.
func joinReason(code, reason string) string {
	if reason == "" {
		return code
	}
	return code + ": " + reason
}

func servesKind(rt Route, k tenancy.Kind) bool {
	if len(rt.Kinds) == 0 {
		return true
	}
	for _, kk := range rt.Kinds {
		if kk == k {
			return true
		}
	}
	return false
}

// StoreScope is the RBAC scope of a whole vault or pool.
func StoreScope(v tenancy.Vault) string {
	if v.Kind == tenancy.KindManagedHSM {
		return "/tenants/" + v.TenantID + "/managedHsms/" + v.Name
	}
	return "/tenants/" + v.TenantID + "/vaults/" + v.Name
}

// BufferedWriter holds a handler's response until the request's audit record is written,
// so that nothing leaves for a request that cannot be audited.
type BufferedWriter struct {
	header http.Header
	status int
	body   []byte
}

// NewBufferedWriter returns an empty BufferedWriter.
func NewBufferedWriter() *BufferedWriter { return &BufferedWriter{header: http.Header{}} }

// bufferedWriters recycles the data plane's BufferedWriters: a fresh one per request
// grew its body in several steps and made a header map, ~5 allocations of every read.
var bufferedWriters = sync.Pool{New: func() any {
	return &BufferedWriter{header: http.Header{}, body: make([]byte, 0, 1024)}
}}

// pooledBufferedWriter returns an empty BufferedWriter from the pool; release returns it.
func pooledBufferedWriter() *BufferedWriter { return bufferedWriters.Get().(*BufferedWriter) }

// release wipes b (the body may hold a secret's value) and returns it to the pool. b must
// not be used afterwards; a body grown past 64 KiB is left to the collector.
func (b *BufferedWriter) release() {
	clear(b.body)
	if cap(b.body) > 64<<10 {
		return
	}
	clear(b.header)
	b.status, b.body = 0, b.body[:0]
	bufferedWriters.Put(b)
}

// Header implements http.ResponseWriter.
func (b *BufferedWriter) Header() http.Header { return b.header }

// WriteHeader implements http.ResponseWriter; the first status wins.
func (b *BufferedWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

// Write implements http.ResponseWriter.
func (b *BufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	b.body = append(b.body, p...)
	return len(p), nil
}

// Status is the status the handler set (200 if none).
func (b *BufferedWriter) Status() int {
	if b.status == 0 {
		return http.StatusOK
	}
	return b.status
}

// Flush sends the held response to w.
func (b *BufferedWriter) Flush(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.WriteHeader(b.Status())
	w.Write(b.body)
}
