package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/provider/pkcs11/softhsm"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// isoCall is one request of the isolation matrix and what came back.
type isoCall struct {
	status int
	body   string
	header http.Header
}

// isoClient sends data-plane requests with one bearer token.
type isoClient struct {
	t    *testing.T
	hc   *http.Client
	port string
}

func (c isoClient) do(host, method, path, tok, body string) isoCall {
	c.t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	req, err := http.NewRequest(method, "https://"+host+":"+c.port+path+sep+"api-version=7.6", strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return isoCall{resp.StatusCode, string(b), resp.Header}
}

// must sends a request of the owner's setup and fails unless it answers want.
func (c isoClient) must(host, method, path, tok, body string, want int) map[string]any {
	c.t.Helper()
	r := c.do(host, method, path, tok, body)
	if r.status != want {
		c.t.Fatalf("setup %s %s on %s = %d %s; want %d", method, path, host, r.status, r.body, want)
	}
	var out map[string]any
	json.Unmarshal([]byte(r.body), &out)
	return out
}

// objectVersion is the version of the Key Vault object in a create or set response: of its
// key's kid (field "key") or of its id.
func objectVersion(t *testing.T, obj map[string]any, field string) string {
	t.Helper()
	id, _ := obj["id"].(string)
	if field == "key" {
		id, _ = obj["key"].(map[string]any)["kid"].(string)
	}
	if v := versionOf(id); len(v) == 32 {
		return v
	}
	t.Fatalf("no version in %v", obj)
	return ""
}

// challengeTenant is the tenant id in a WWW-Authenticate challenge's authorization URI.
var challengeTenant = regexp.MustCompile(`(authorization="https://[^/"]+/)[0-9a-f-]{36}"`)

// comparable is a response reduced to what an attacker could compare between two requests:
// status, body and headers, with the request id, the date and the object name (which the
// attacker chose) blanked.
func comparable(r isoCall, name string) string {
	h := r.header.Clone()
	for _, k := range []string{"X-Ms-Request-Id", "X-Ms-Client-Request-Id", "Date"} {
		h.Del(k)
	}
	return comparableHeader(r, name, h)
}

// comparableAcrossVaults is comparable with the tenant of the challenge blanked too: every
// store's challenge names a tenant, a store that does not exist one derived from its name
// (DataPlane.TenantSecret), so the two differ in that id alone.
func comparableAcrossVaults(r isoCall, name string) string {
	h := r.header.Clone()
	for _, k := range []string{"X-Ms-Request-Id", "X-Ms-Client-Request-Id", "Date"} {
		h.Del(k)
	}
	for i, v := range h.Values("Www-Authenticate") {
		h["Www-Authenticate"][i] = challengeTenant.ReplaceAllString(v, `${1}{tenant}"`)
	}
	return comparableHeader(r, name, h)
}

func comparableHeader(r isoCall, name string, h http.Header) string {
	hb, _ := json.Marshal(h)
	s := strings.Join([]string{http.StatusText(r.status), r.body, string(hb)}, "\n")
	if name != "" {
		s = regexp.MustCompile(`(?i)`+regexp.QuoteMeta(name)).ReplaceAllString(s, "{name}")
	}
	return s
}

// TestCrossTenantDataPlane is SECURITY-NOTES T1 and the §4 "tenant isolation" figure: every
// data-plane route of a vault (keys, secrets, certificates, issuers, contacts, deleted*,
// backup/restore, rotate, rotation policy, release) and of a managed HSM pool (keys, release,
// random bytes, role assignments at three scopes and role definitions, full backup/restore,
// security domain) × three attackers — a principal of another tenant who administers its own
// tenant, a principal of the owner's tenant without any role, and one with the strongest
// roles at the wrong scope (a sibling vault or pool, and another object of the same vault or
// pool) — × an object name (or role id) that exists and one that does not. Every answer must
// be 401 (other tenant) or 403 (same tenant), and for each route and attacker the answer for
// the existing object must equal the one for the missing object, but for the name itself
// and the request id. The other tenant's answers must also equal those for a vault or pool
// that does not exist.
func TestCrossTenantDataPlane(t *testing.T) {
	// The pool's keys live in SoftHSM2 (the software provider makes no -HSM keys); without
	// it the pool's routes are still tried, but with no key in the pool.
	ts, hasHSM := startDevSoftHSM(t, "--auth-failure-limit", "0") // its 540 refused tokens come from one address
	ctx := context.Background()
	hc := loopbackClient(t, ts.caFile)
	port := ts.resources().port
	c := isoClient{t, hc, port}
	dev := ts.Dev.Credentials
	tenantA := dev.TenantID
	vaultRes, hsmRes := ts.resources().Base(), "https://managedhsm.localhost:"+port
	const vaultHost, poolHost = "dev.localhost", "devhsm.managedhsm.localhost"

	// The owner's objects: a live and a deleted one in every collection (kx1 and kq1 for
	// keys, sx1/sq1 for secrets, cx1/cq1 for certificates: the collections share names), an
	// issuer ix1, a contact list, and the pool's key x1 and deleted key q1. A missing name is
	// the existing one with its digit changed, so that both answers have the same length.
	_, ownerKV := rawToken(t, ts, hc, tenantA, dev.ClientID, dev.ClientSecret, vaultRes)
	_, ownerHSM := rawToken(t, ts, hc, tenantA, dev.ClientID, dev.ClientSecret, hsmRes)
	version := map[string]string{}
	const missingVersion = "0123456789abcdef0123456789abcdef"
	version["keys"] = objectVersion(t, c.must(vaultHost, "POST", "/keys/kx1/create", ownerKV, `{"kty":"EC","crv":"P-256"}`, 200), "key")
	version["secrets"] = objectVersion(t, c.must(vaultHost, "PUT", "/secrets/sx1", ownerKV, `{"value":"s"}`, 200), "id")
	certPolicy := `{"policy":{"key_props":{"kty":"EC","crv":"P-256"},"x509_props":{"subject":"CN=x"},"issuer":{"name":"Self"}}}`
	c.must(vaultHost, "POST", "/certificates/cx1/create", ownerKV, certPolicy, 202)
	c.must(vaultHost, "POST", "/certificates/cq1/create", ownerKV, certPolicy, 202)
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := c.do(vaultHost, "GET", "/certificates/cx1", ownerKV, "")
		if r.status == 200 {
			var cert map[string]any
			json.Unmarshal([]byte(r.body), &cert)
			version["certificates"] = objectVersion(t, cert, "id")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("certificate cx1 not issued: %d %s", r.status, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for c.do(vaultHost, "GET", "/certificates/cq1", ownerKV, "").status != 200 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	c.must(vaultHost, "POST", "/keys/kq1/create", ownerKV, `{"kty":"EC","crv":"P-256"}`, 200)
	c.must(vaultHost, "PUT", "/secrets/sq1", ownerKV, `{"value":"s"}`, 200)
	for _, coll := range []string{"keys", "secrets", "certificates"} {
		c.must(vaultHost, "DELETE", "/"+coll+"/"+coll[:1]+"q1", ownerKV, "", 200)
	}
	c.must(vaultHost, "PUT", "/certificates/issuers/ix1", ownerKV, `{"provider":"Test"}`, 200)
	c.must(vaultHost, "PUT", "/certificates/contacts", ownerKV, `{"contacts":[{"email":"a@example.com"}]}`, 200)
	version["pool"] = missingVersion
	if hasHSM {
		version["pool"] = objectVersion(t, c.must(poolHost, "POST", "/keys/x1/create", ownerHSM, `{"kty":"EC-HSM","crv":"P-256"}`, 200), "key")
		c.must(poolHost, "POST", "/keys/q1/create", ownerHSM, `{"kty":"EC-HSM","crv":"P-256"}`, 200)
		c.must(poolHost, "DELETE", "/keys/q1", ownerHSM, "", 200)
	}
	poolScope := "/tenants/" + tenantA + "/managedHsms/devhsm"
	// An assignment at the pool's scope and one at key x1's: ids that exist on the pool's
	// role assignment routes at "/" ("/keys" lists the same) and "/keys/x1".
	app, _, err := ts.tenants.CreateServicePrincipal(ctx, tenantA, "assigned")
	if err != nil {
		t.Fatal(err)
	}
	poolAssignment, err := ts.tenants.CreateRoleAssignment(ctx, authz.Assignment{PrincipalID: app.ObjectID, TenantID: tenantA, RoleDefinitionID: mustRole("Managed HSM Crypto User"), Scope: poolScope})
	if err != nil {
		t.Fatal(err)
	}
	keyAssignment, err := ts.tenants.CreateRoleAssignment(ctx, authz.Assignment{PrincipalID: app.ObjectID, TenantID: tenantA, RoleDefinitionID: mustRole("Managed HSM Crypto User"), Scope: poolScope + "/keys/x1"})
	if err != nil {
		t.Fatal(err)
	}

	// The attackers.
	type attacker struct {
		name       string
		kv, hsm    string // tokens
		wantStatus int
	}
	principal := func(tenantID, name string, roles map[string][]string) attacker {
		p, secret, err := ts.tenants.CreateServicePrincipal(ctx, tenantID, name)
		if err != nil {
			t.Fatal(err)
		}
		for role, scopes := range roles {
			for _, sc := range scopes {
				if _, err := ts.tenants.CreateRoleAssignment(ctx, authz.Assignment{PrincipalID: p.ObjectID, TenantID: tenantID, RoleDefinitionID: mustRole(role), Scope: sc}); err != nil {
					t.Fatalf("assign %s at %s: %v", role, sc, err)
				}
			}
		}
		st1, kv := rawToken(t, ts, hc, tenantID, p.AppID, secret, vaultRes)
		st2, hsm := rawToken(t, ts, hc, tenantID, p.AppID, secret, hsmRes)
		if st1 != 200 || st2 != 200 {
			t.Fatalf("tokens for %s = %d, %d", name, st1, st2)
		}
		return attacker{name: name, kv: kv, hsm: hsm, wantStatus: 403}
	}
	tb, _ := ts.tenants.CreateTenant(ctx, "", "Tenant B")
	ts.tenants.CreateVault(ctx, tb.ID, tenancy.KindVault, "bvault", tenancy.VaultOptions{})
	ts.tenants.CreateVault(ctx, tb.ID, tenancy.KindManagedHSM, "bpool", tenancy.VaultOptions{})
	hsmAdmin := []string{"Managed HSM Administrator", "Managed HSM Crypto Officer", "Managed HSM Crypto User"}
	otherRoles := map[string][]string{"Key Vault Administrator": {"/tenants/" + tb.ID}}
	for _, role := range hsmAdmin {
		otherRoles[role] = []string{"/tenants/" + tb.ID + "/managedHsms/bpool"}
	}
	other := principal(tb.ID, "other-tenant", otherRoles)
	other.wantStatus = 401
	ts.tenants.CreateVault(ctx, tenantA, tenancy.KindVault, "sibling", tenancy.VaultOptions{})
	ts.tenants.CreateVault(ctx, tenantA, tenancy.KindManagedHSM, "sibpool", tenancy.VaultOptions{})
	vaultScope := "/tenants/" + tenantA + "/vaults/dev"
	wrongScope := map[string][]string{"Key Vault Administrator": {"/tenants/" + tenantA + "/vaults/sibling",
		vaultScope + "/keys/other", vaultScope + "/secrets/other", vaultScope + "/certificates/other"}}
	for _, role := range hsmAdmin {
		wrongScope[role] = []string{"/tenants/" + tenantA + "/managedHsms/sibpool", poolScope + "/keys/other"}
	}
	attackers := []attacker{other, principal(tenantA, "no-role", nil), principal(tenantA, "wrong-scope", wrongScope)}
	// The attackers' tokens work where they have roles, so the refusals below are about
	// isolation, not about the tokens.
	if r := c.do("bvault.localhost", "GET", "/keys", other.kv, ""); r.status != 200 {
		t.Fatalf("tenant B on its own vault = %d %s", r.status, r.body)
	}
	if r := c.do("sibling.localhost", "GET", "/keys", attackers[2].kv, ""); r.status != 200 {
		t.Fatalf("wrong-scope principal on the vault it administers = %d %s", r.status, r.body)
	}

	const body = `{"kty":"EC","alg":"ES256","value":"AAAA","digest":"AAAA","count":4}`
	type target struct {
		host, method, pattern string
		pool                  bool
	}
	var targets []target
	for _, rt := range ts.dataRoutes() {
		method, pattern, _ := strings.Cut(rt.Pattern, " ")
		pattern = strings.Replace(pattern, "/certificateissuers", "/certificates/issuers", 1)
		for _, k := range []tenancy.Kind{tenancy.KindVault, tenancy.KindManagedHSM} {
			if len(rt.Kinds) == 0 || rt.Kinds[0] == k || len(rt.Kinds) > 1 && rt.Kinds[1] == k {
				host, pool := vaultHost, k == tenancy.KindManagedHSM
				if pool {
					host = poolHost
				}
				targets = append(targets, target{host, method, pattern, pool})
			}
		}
	}
	// path fills a route's pattern for the existing (exists=true) or the missing object.
	path := func(tg target, exists bool) (string, string) {
		name := existing(tg.pattern, tg.pool)
		if !exists {
			name = strings.TrimSuffix(name, "1") + "2"
		}
		ver, id, job := missingVersion, tenancy.NewUUID(), "nosuchjob"
		if exists {
			coll, _, _ := strings.Cut(strings.TrimPrefix(tg.pattern, "/"), "/")
			if tg.pool {
				coll = "pool"
			}
			ver = version[coll]
			switch {
			case strings.Contains(tg.pattern, "roleDefinitions"):
				id = mustRole("Managed HSM Crypto User")
			case strings.HasPrefix(tg.pattern, "/keys/{name}/providers"):
				id = keyAssignment.ID
			default:
				id = poolAssignment.ID
			}
		}
		p := strings.NewReplacer("{name}", name, "{version}", ver, "{id}", id, "{job}", job).Replace(tg.pattern)
		if !strings.Contains(tg.pattern, "{") {
			name = ""
		}
		return p, name
	}

	auditCount := func(result string) int {
		return strings.Count(readAudit(t, ts), `"result":"`+result+`"`)
	}
	deniedBefore, unauthBefore := auditCount("denied"), auditCount("unauthenticated")
	var requests, allowed, differing, refusedInTenant, refusedOtherTenant int
	perAttacker := map[string]int{}
	for _, a := range attackers {
		for _, tg := range targets {
			tok := a.kv
			if tg.pool {
				tok = a.hsm
			}
			var seen [2]string
			for i, exists := range []bool{true, false} {
				p, name := path(tg, exists)
				r := c.do(tg.host, tg.method, p, tok, body)
				requests++
				perAttacker[a.name]++
				if r.status != a.wantStatus {
					if r.status < 400 {
						allowed++
					}
					t.Errorf("%s: %s %s on %s = %d %s; want %d", a.name, tg.method, p, tg.host, r.status, r.body, a.wantStatus)
				}
				if r.status == 403 {
					refusedInTenant++
				} else if r.status == 401 {
					refusedOtherTenant++
				}
				seen[i] = comparable(r, name)
				if a.wantStatus == 401 {
					// The other tenant cannot tell the owner's vault or pool from one that
					// does not exist.
					missingHost := "nosuchvault.localhost"
					if tg.pool {
						missingHost = "nosuchpool.managedhsm.localhost"
					}
					rx := c.do(missingHost, tg.method, p, tok, body)
					requests++
					perAttacker[a.name]++
					if comparableAcrossVaults(rx, name) != comparableAcrossVaults(r, name) {
						differing++
						t.Errorf("%s: %s %s: owner's %s = %d %s; missing %s = %d %s; want identical", a.name, tg.method, p, tg.host, r.status, r.body, missingHost, rx.status, rx.body)
					}
				}
			}
			if seen[0] != seen[1] {
				differing++
				t.Errorf("%s: %s %s on %s: the existing object's answer differs from the missing one's:\n%s\n--- vs ---\n%s", a.name, tg.method, tg.pattern, tg.host, seen[0], seen[1])
			}
		}
	}
	// T1: every refusal on the owner's stores is in the audit log.
	denied, unauth := auditCount("denied")-deniedBefore, auditCount("unauthenticated")-unauthBefore
	if denied < refusedInTenant || unauth < refusedOtherTenant {
		t.Errorf("audit log gained %d denied and %d unauthenticated records; want at least the %d refusals (403) and %d (401) on the owner's vault and pool", denied, unauth, refusedInTenant, refusedOtherTenant)
	}
	t.Logf("audit: %d denied and %d unauthenticated records for %d and %d refusals on the owner's stores", denied, unauth, refusedInTenant, refusedOtherTenant)
	vaultRoutes, poolRoutes := 0, 0
	for _, tg := range targets {
		if tg.pool {
			poolRoutes++
		} else {
			vaultRoutes++
		}
	}
	t.Logf("tenant isolation: %d routes (%d vault, %d pool) × %d attackers %v × {exists, missing}: %d requests, %d allowed, %d exists/missing pairs (or owner/missing-vault pairs) that differ",
		len(targets), vaultRoutes, poolRoutes, len(attackers), perAttacker, requests, allowed, differing)
}

// existing is the name of the owner's object on a route of TestCrossTenantDataPlane: x1 (q1
// on deleted* routes) in the pool, in the vault prefixed by the collection (k, s, c; i for
// issuers). The names have letters outside the hex digits, so that blanking them in an
// answer cannot blank part of an id.
func existing(pattern string, pool bool) string {
	n := "x1"
	if strings.HasPrefix(pattern, "/deleted") {
		n = "q1"
	}
	switch {
	case pool:
		return n
	case strings.HasPrefix(pattern, "/certificates/issuers"):
		return "i" + n
	}
	return strings.TrimPrefix(strings.TrimPrefix(pattern, "/"), "deleted")[:1] + n
}

// startDevSoftHSM starts a dev server whose managed HSM pool keeps its keys in a fresh
// SoftHSM2 token, with extra flags, and reports whether SoftHSM2 is installed; without it the
// server runs with the software provider, which makes no -HSM keys.
func startDevSoftHSM(t *testing.T, extra ...string) (*testServer, bool) {
	t.Helper()
	tok, err := softhsm.Init(t.TempDir(), "4321", "8765", "coffer")
	switch {
	case err == nil:
		t.Setenv("SOFTHSM2_CONF", tok.Conf)
		extra = append(extra, "--pkcs11-library", softhsmLib, "--pkcs11-token-label", "coffer", "--pkcs11-pin-file", tok.PINFile)
	case errors.Is(err, softhsm.ErrNotInstalled):
		t.Logf("%v: the pool has no PKCS#11 token", err)
	default:
		t.Fatal(err)
	}
	return startDev(t, extra...), err == nil
}
