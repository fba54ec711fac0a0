package server

import (
	"crypto/elliptic"
	"encoding/pem"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// The identity provider's, the management API's and the operator API's cases, and the raw
// HTTP/1.1 requests. See barrage_gen_test.go for what is left out and why.

func (b *barrage) generate() {
	b.genKeys()
	b.genSecrets()
	b.genCerts()
	b.genIdentity()
	b.genAdmin()
	b.genRaw()
}

// requiredOps are the operations the brief names: each must have cases.
func (b *barrage) requiredOps() []string {
	var out []string
	for _, op := range []string{"create", "import", "get", "list", "versions", "update", "delete", "deleted-get", "deleted-list", "recover", "purge",
		"backup", "restore", "rotate", "rotationpolicy-get", "rotationpolicy-put", "encrypt", "decrypt", "sign", "verify", "wrap", "unwrap", "release", "random"} {
		out = append(out, "keys/"+op)
	}
	for _, op := range []string{"set", "get", "update", "list", "versions", "delete", "deleted-get", "deleted-list", "purge", "recover", "backup", "restore"} {
		out = append(out, "secrets/"+op)
	}
	for _, op := range []string{"create", "import", "get", "update", "list", "versions", "policy-get", "policy-update", "pending-get", "pending-update",
		"pending-delete", "merge", "delete", "deleted-list", "deleted-get", "purge", "recover", "backup", "restore", "contacts-get", "contacts-set",
		"contacts-delete", "issuers-list", "issuer-get", "issuer-set", "issuer-update", "issuer-delete"} {
		out = append(out, "certificates/"+op)
	}
	for _, op := range []string{"token", "discovery", "jwks", "instance-discovery"} {
		out = append(out, "identity/"+op)
	}
	return out
}

func pemToDER(s string) []byte {
	blk, _ := pem.Decode([]byte(s))
	if blk == nil {
		return nil
	}
	return blk.Bytes
}

// ---- identity (A14–A16 and the discovery documents) ----

// form encodes key/value pairs in the given order.
func form(kv ...string) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, url.QueryEscape(kv[i])+"="+url.QueryEscape(kv[i+1]))
	}
	return strings.Join(parts, "&")
}

// badTenants are tenant path segments that name no tenant of this server.
func (b *barrage) badTenants() []string {
	ts := []string{"common", "organizations", "consumers", "x", "00000000-0000-0000-0000-000000000000", strings.ToUpper(b.tid),
		"%7B" + b.tid + "%7D", strings.ReplaceAll(b.tid, "-", ""), b.tid + "x", b.tid[:35], b.tid + "%00", "a%2Fb", "%3Cscript%3E",
		strings.Repeat("t", 1000), "%E2%80%8B" + b.tid, "%20", "null", "undefined", "-1", "0", "%27%20OR%201=1", "admin", "v1", "sys",
		"tenant", b.tid[:8], "ffffffff-ffff-ffff-ffff-ffffffffffff", "00000000-0000-4000-8000-00000000c0fe", "00000000-0000-4000-8000-00000000c0ff%20",
		"00000000_0000_4000_8000_00000000c0ff", "g0000000-0000-4000-8000-00000000c0ff", "00000000-0000-4000-8000-00000000c0ff-", "%2500", "~", "a;b",
		"00000000-0000-4000-8000-00000000c0f", "%F0%9F%94%91", "%C0%AF", "..%2F", "a%5Cb"}
	for i := 0; i < 12; i++ {
		ts = append(ts, fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", 0xdead0000+i, i, i, i, i*7919))
	}
	return ts
}

func (b *barrage) genIdentity() {
	bare := b.bare
	T := func(tenant string) string { return "/" + tenant + "/oauth2/v2.0/token" }
	scope := b.base + "/.default"
	valid := []string{"grant_type", "client_credentials", "client_id", b.clientID, "client_secret", b.secret, "scope", scope}
	replace := func(k, v string) []string {
		out := append([]string(nil), valid...)
		for i := 0; i < len(out); i += 2 {
			if out[i] == k {
				out[i+1] = v
			}
		}
		return out
	}
	drop := func(k string) []string {
		var out []string
		for i := 0; i < len(valid); i += 2 {
			if valid[i] != k {
				out = append(out, valid[i], valid[i+1])
			}
		}
		return out
	}
	add := func(class, path, body string, ct []string, hdr ...hdrKV) {
		c := &bcase{family: "identity", op: "token", class: class, method: "POST", host: bare, path: path, body: []byte(body), oauth: true}
		for _, v := range ct {
			c.hdr = append(c.hdr, hdrKV{"Content-Type", v})
		}
		c.hdr = append(c.hdr, hdr...)
		b.add(c)
	}
	formCT := []string{"application/x-www-form-urlencoded"}
	// A client id no principal has: with it, a request that passed the grant, scope and
	// tenant checks would count as a failed sign-in; none of these is meant to get there.
	const unknownClient = "0badc0de-0000-4000-8000-000000000000"
	// A16: grant types other than client_credentials (checked before the credentials).
	for _, g := range []string{"", "password", "authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:jwt-bearer",
		"client_credentials ", " client_credentials", "CLIENT_CREDENTIALS", "client-credentials", "client_credentials\x00", "implicit",
		"device_code", "urn:ietf:params:oauth:grant-type:token-exchange", strings.Repeat("g", 1000), "client_credentials,password",
		"urn:ietf:params:oauth:grant-type:device_code", "saml2-bearer", "on_behalf_of", "client_credential", "client_credentialsx",
		"%", "null", "[]", "client_credentials;password", "client_credentials\n"} {
		add("grant-type", T(b.tid), form(replace("grant_type", g)...), formCT)
		add("grant-type", T(b.tid), form(append(replace("grant_type", g)[:2:2], "client_id", unknownClient, "client_secret", "x", "scope", scope)...), formCT)
	}
	add("grant-type", T(b.tid), form(drop("grant_type")...), formCT)
	// A5, A16: scopes of other resources, or not "<resource>/.default".
	for _, s := range []string{"", "https://vault.azure.net/.default", b.base, b.base + "/.default extra/.default", b.base + "/.DEFAULT",
		"openid", "openid profile offline_access", "https://localhost:1/.default", b.base + "/.default/x", "api://x/.default",
		b.base + "/.default " + "https://managedhsm.localhost:" + b.port + "/.default", "https://managedhsm.azure.net/.default",
		"https://evil.example/.default", b.base + "x/.default", "http://localhost:" + b.port + "/.default", "/.default", ".default",
		"https://localhost/.default", b.base + "/user_impersonation", "https://graph.microsoft.com/.default", b.base + "/.default\x00",
		strings.Repeat("s", 5000), b.base + "/.default," + b.base + "/.default", "https://localhost:" + b.port + ":1/.default",
		"https://" + b.vault + "/.default", "https://dev.localhost/.default", "00000000-0000-0000-0000-000000000000/.default",
		b.base + "/keys/.default", b.base + "/%2e%2e/.default", "https://localhost:" + b.port + "@evil.example/.default"} {
		add("scope", T(b.tid), form(replace("scope", s)...), formCT)
		add("scope", T(b.tid), form("grant_type", "client_credentials", "client_id", unknownClient, "client_secret", "x", "scope", s), formCT)
	}
	add("scope", T(b.tid), form(drop("scope")...), formCT)
	// A6: tenants that do not exist (checked before the credentials).
	for _, t := range b.badTenants() {
		add("tenant", T(t), form(valid...), formCT)
		add("tenant", T(t), form("grant_type", "client_credentials", "client_id", unknownClient, "client_secret", "x", "scope", scope), formCT)
	}
	// Duplicated parameters.
	for i := 0; i < len(valid); i += 2 {
		add("duplicate", T(b.tid), form(append(append([]string(nil), valid...), valid[i], valid[i+1])...), formCT)
		add("duplicate", T(b.tid), form(append(append([]string(nil), valid...), valid[i], "x")...), formCT)
	}
	// Content types and bodies the form parser does not read.
	for _, ct := range [][]string{{"application/json"}, {"text/plain"}, {"multipart/form-data; boundary=x"}, {}, {"application/xml"},
		{"application/x-www-form-urlencodedx"}, {"text/plain", "application/x-www-form-urlencoded"}, {"application/octet-stream"}, {"form"}} {
		add("content-type", T(b.tid), form(valid...), ct)
	}
	add("body", T(b.tid), `{"grant_type":"client_credentials","client_id":"`+b.clientID+`","client_secret":"`+b.secret+`","scope":"`+scope+`"}`, []string{"application/json"})
	for _, body := range []string{"", "%zz", form(valid...) + "&%", "a=%", form(valid...) + ";x=1", strings.ReplaceAll(form(valid...), "&", ";"),
		form(valid...) + "&x=" + strings.Repeat("a", 65<<10), "grant_type", "\x00", strings.Repeat("&", 1000), form(valid...) + "%"} {
		add("body", T(b.tid), body, formCT)
	}
	for _, q := range []string{form(valid...), "grant_type=client_credentials"} {
		c := &bcase{family: "identity", op: "token", class: "query", method: "POST", host: bare, path: T(b.tid), query: q, oauth: true,
			hdr: []hdrKV{{"Content-Type", "application/x-www-form-urlencoded"}}, body: []byte{}}
		b.add(c)
	}
	// Credentials that fail (A16): kept under the endpoint's failure limits (20 per client,
	// 100 per source address a minute) so that no answer is a 429.
	for _, s := range []string{"", "x", b.secret + "x", b.secret[:len(b.secret)-1], strings.ToUpper(b.secret), strings.Repeat("s", 60<<10), b.secret + "\x00", " " + b.secret} {
		add("credentials", T(b.tid), form(replace("client_secret", s)...), formCT)
	}
	add("credentials", T(b.tid), form(append(drop("client_secret"), "client_assertion", "a.b.c", "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")...), formCT)
	add("credentials", T(b.tid), form(append(valid, "client_assertion", "a.b.c", "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")...), formCT)
	add("credentials", T(b.tid), form(append(drop("client_secret"), "client_assertion", b.tokV, "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")...), formCT)
	add("credentials", T(b.tid), form(append(drop("client_secret"), "client_assertion", "a.b.c", "client_assertion_type", "x")...), formCT)
	add("credentials", T(b.tid), form(drop("client_secret")...), formCT)
	assertion := func(clientID, a, typ string) string {
		return form("grant_type", "client_credentials", "client_id", clientID, "client_assertion", a, "client_assertion_type", typ, "scope", scope)
	}
	const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("%08x-0000-4000-8000-%012x", 0xbad00000+i, i)
		add("credentials", T(b.tid), form(replace("client_id", id)...), formCT)
		if i < 10 {
			add("credentials", T(b.tid), assertion(id, forgeNone(nil, b.tokV), jwtBearer), formCT)
		}
	}
	for _, id := range []string{"", "x", "../..", strings.Repeat("c", 1000), "' OR 1=1", "%00"} {
		add("credentials", T(b.tid), form(replace("client_id", id)...), formCT)
	}
	// Methods the endpoint does not serve.
	for _, m := range methods {
		if m != "POST" {
			b.add(&bcase{family: "identity", op: "token", class: "method", method: m, host: bare, path: T(b.tid), oauth: true})
		}
	}

	// Discovery documents: tenants that do not exist, methods, paths.
	meta := func(op, suffix string) {
		for _, t := range b.badTenants() {
			for _, q := range []string{"", "appid=x", "p=B2C_1_signin", "api-version=1.0", "x-client-SKU=MSAL.Go"} {
				c := &bcase{family: "identity", op: op, class: "tenant", method: "GET", host: bare, path: "/" + t + suffix, query: q, oauth: true}
				b.add(c)
			}
		}
		for _, m := range methods {
			if m == "GET" {
				continue
			}
			for _, t := range []string{b.tid, "x", b.tidB} {
				b.add(&bcase{family: "identity", op: op, class: "method", method: m, host: bare, path: "/" + t + suffix, oauth: true})
			}
		}
		for _, p := range []string{suffix + "/x", strings.ToUpper(suffix), suffix + "%00", suffix + ".json", suffix + "%2F", strings.Replace(suffix, "v2.0", "v1.0", 1),
			strings.Replace(suffix, "/v2.0", "", 1), suffix + ";x", strings.Replace(suffix, "/", "%2F", 2)} {
			b.add(&bcase{family: "identity", op: op, class: "path", method: "GET", host: bare, path: "/" + b.tid + p, oauth: true})
		}
	}
	meta("discovery", "/v2.0/.well-known/openid-configuration")
	meta("jwks", "/discovery/v2.0/keys")
	// Instance discovery takes any query (the answer names this host, or is invalid_instance
	// for an authorization_endpoint elsewhere): only methods and paths.
	for _, m := range methods {
		if m == "GET" {
			continue
		}
		for _, q := range []string{"", "api-version=1.1", "api-version=1.1&authorization_endpoint=" + url.QueryEscape(b.base+"/"+b.tid+"/oauth2/v2.0/authorize"),
			"authorization_endpoint=https%3A%2F%2Fevil.example%2Fx", "x=" + strings.Repeat("a", 2000), "api-version=1.0", "%zz", "a=1&a=2",
			"authorization_endpoint=", "api-version=" + strings.Repeat("9", 100), "x=%00", "x=1", "y=2", "x=1&y=2", "api-version=1.1&x=1", "z=%27"} {
			b.add(&bcase{family: "identity", op: "instance-discovery", class: "method", method: m, host: bare, path: "/common/discovery/instance", query: q, oauth: true})
		}
	}
	for _, p := range []string{"/common/discovery/instance/x", "/COMMON/discovery/instance", "/common/discovery/Instance", "/common/discovery/instance%00",
		"/common/discovery/instances", "/common/discovery", "/common/discovery/instance.json", "/organizations/discovery/instance", "/common/discovery/instance;x",
		"/common%2Fdiscovery%2Finstance", "/common/discovery/instance%20", "/Common/Discovery/Instance", "/common/discovery/%69nstance-x",
		"/common/discovery/v2.0/instance", "/" + b.tid + "/discovery/instance"} {
		for _, q := range []string{"", "api-version=1.1"} {
			b.add(&bcase{family: "identity", op: "instance-discovery", class: "path", method: "GET", host: bare, path: p, query: q, oauth: true})
		}
	}
}

// ---- admin: the management API (/v1) and the operator API (/v1/sys) ----

type mgmtOp struct {
	op, method, tmpl string
	who              string // "operator", "tenant" or "either"
	ids              map[string]string
	body             jtmpl
	optional         bool // an empty body is valid
	semantic         []string
	query            []string // invalid queries
}

func (b *barrage) genAdmin() {
	s := b.seeded
	newRA, newRole := "0b0b0b0b-0000-4000-8000-000000000003", "0b0b0b0b-0000-4000-8000-000000000004"
	pemCert, _ := ecPEM(b.t, elliptic.P256())
	certOnly := pemCert[strings.Index(pemCert, "-----BEGIN CERTIFICATE"):]
	tn := "/tenants/" + b.tid
	ops := []mgmtOp{
		{op: "tenant-create", method: "POST", tmpl: "/v1/tenants", who: "operator", body: jtmpl{{name: "name", raw: `"Barrage C"`, kind: jStr, req: true, alt: `"Barrage D"`}},
			semantic: []string{`{"name":""}`, `{"name":" "}`, `{"name":"` + strings.Repeat("n", 65) + `"}`, `{"name":"a/b"}`, `{"name":"a\u0007b"}`, `{"name":"a\nb"}`}},
		{op: "tenant-list", method: "GET", tmpl: "/v1/tenants", who: "operator"},
		{op: "tenant-get", method: "GET", tmpl: "/v1/tenants/{tenant}", who: "either"},
		{op: "audit-public-key", method: "GET", tmpl: "/v1/audit/public-key", who: "operator"},
		{op: "vault-create", method: "PUT", tmpl: "/v1/tenants/{tenant}/vaults/{name}", who: "tenant", ids: map[string]string{"name": "bvnew"}, optional: true,
			body:     jtmpl{{name: "softDeleteRetentionInDays", raw: `30`, kind: jInt, alt: `60`}, {name: "enablePurgeProtection", raw: `false`, kind: jBool, alt: `true`}},
			semantic: []string{`{"softDeleteRetentionInDays":6}`, `{"softDeleteRetentionInDays":91}`, `{"softDeleteRetentionInDays":0}`, `{"softDeleteRetentionInDays":-1}`, `{"sku":"premium"}`}},
		{op: "vault-get", method: "GET", tmpl: "/v1/tenants/{tenant}/vaults/{name}", who: "tenant", ids: map[string]string{"name": "dev"}},
		{op: "vault-list", method: "GET", tmpl: "/v1/tenants/{tenant}/vaults", who: "tenant"},
		{op: "hsm-create", method: "PUT", tmpl: "/v1/tenants/{tenant}/managedHsms/{name}", who: "tenant", ids: map[string]string{"name": "bhnew"}, optional: true,
			body:     jtmpl{{name: "softDeleteRetentionInDays", raw: `30`, kind: jInt, alt: `60`}, {name: "enablePurgeProtection", raw: `false`, kind: jBool, alt: `true`}},
			semantic: []string{`{"softDeleteRetentionInDays":6}`, `{"softDeleteRetentionInDays":91}`, `{"softDeleteRetentionInDays":-7}`}},
		{op: "hsm-get", method: "GET", tmpl: "/v1/tenants/{tenant}/managedHsms/{name}", who: "tenant", ids: map[string]string{"name": "devhsm"}},
		{op: "hsm-list", method: "GET", tmpl: "/v1/tenants/{tenant}/managedHsms", who: "tenant"},
		{op: "principal-create", method: "POST", tmpl: "/v1/tenants/{tenant}/principals", who: "tenant", body: jtmpl{{name: "displayName", raw: `"app"`, kind: jStr, req: true, alt: `"app2"`}},
			semantic: []string{`{"displayName":""}`, `{"displayName":" "}`, `{"displayName":"` + strings.Repeat("d", 121) + `"}`, `{"displayName":"a\u0007b"}`, `{"displayName":"a\u0000b"}`}},
		{op: "principal-list", method: "GET", tmpl: "/v1/tenants/{tenant}/principals", who: "tenant"},
		{op: "principal-get", method: "GET", tmpl: "/v1/tenants/{tenant}/principals/{oid}", who: "tenant", ids: map[string]string{"oid": s.principalID}},
		{op: "principal-secret-add", method: "POST", tmpl: "/v1/tenants/{tenant}/principals/{oid}/secrets", who: "tenant", ids: map[string]string{"oid": s.principalID},
			optional: true, body: jtmpl{}, semantic: []string{`{"expires":"never"}`, `{"endDateTime":"2030-01-01"}`, `{"value":"mine"}`}},
		{op: "principal-certificate-add", method: "POST", tmpl: "/v1/tenants/{tenant}/principals/{oid}/certificates", who: "tenant", ids: map[string]string{"oid": s.principalID},
			body: jtmpl{{name: "certificate", raw: jstr(certOnly), kind: jStr, req: true, alt: jstr(b64s(pemToDER(certOnly)))}},
			semantic: []string{`{"certificate":"not base64!"}`, `{"certificate":"aGVsbG8="}`, `{"certificate":""}`, `{"certificate":` + jstr(pemCert[:strings.Index(pemCert, "-----BEGIN CERTIFICATE")]) + `}`,
				`{"certificate":"` + b64s(randBytes(400)) + `"}`, `{"certificate":"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}`}},
		{op: "role-assignment-create", method: "PUT", tmpl: "/v1/tenants/{tenant}/roleAssignments/{id}", who: "tenant", ids: map[string]string{"id": newRA},
			body: jtmpl{{name: "principalId", raw: jstr(s.principalID), kind: jStr, req: true}, {name: "roleDefinitionId", raw: jstr(mustRole("Key Vault Reader")), kind: jStr, req: true, alt: jstr(mustRole("Key Vault Secrets User"))},
				{name: "scope", raw: jstr(tn + "/vaults/dev"), kind: jStr, alt: jstr(tn)}},
			semantic: []string{
				`{"principalId":"` + s.principalID + `","roleDefinitionId":"` + mustRole("Key Vault Reader") + `","scope":"/"}`,
				`{"principalId":"` + s.principalID + `","roleDefinitionId":"` + mustRole("Key Vault Reader") + `","scope":"/tenants/` + b.tidB + `"}`,
				`{"principalId":"` + s.principalID + `","roleDefinitionId":"` + mustRole("Key Vault Reader") + `","scope":"tenants//x"}`,
				`{"principalId":"` + s.principalID + `","roleDefinitionId":"` + mustRole("Key Vault Reader") + `","scope":"` + tn + `/vaults/../../x"}`,
				`{"principalId":"` + s.principalID + `","roleDefinitionId":"00000000-0000-4000-8000-00000000dead"}`,
				`{"principalId":"00000000-0000-4000-8000-00000000dead","roleDefinitionId":"` + mustRole("Key Vault Reader") + `"}`,
				`{"principalId":"x","roleDefinitionId":"` + mustRole("Key Vault Reader") + `"}`,
				`{"principalId":"` + s.principalID + `","roleDefinitionId":"` + mustRole("Key Vault Reader") + `","condition":"x"}`}},
		{op: "role-assignment-get", method: "GET", tmpl: "/v1/tenants/{tenant}/roleAssignments/{id}", who: "tenant", ids: map[string]string{"id": s.assignmentID}},
		{op: "role-assignment-delete", method: "DELETE", tmpl: "/v1/tenants/{tenant}/roleAssignments/{id}", who: "tenant", ids: map[string]string{"id": s.assignmentID}},
		{op: "role-assignment-list", method: "GET", tmpl: "/v1/tenants/{tenant}/roleAssignments", who: "tenant"},
		{op: "role-definition-list", method: "GET", tmpl: "/v1/tenants/{tenant}/roleDefinitions", who: "tenant"},
		{op: "role-definition-create", method: "PUT", tmpl: "/v1/tenants/{tenant}/roleDefinitions/{id}", who: "tenant", ids: map[string]string{"id": newRole},
			body: jtmpl{{name: "roleName", raw: `"Barrage role"`, kind: jStr, req: true, alt: `"Other role"`}, {name: "description", raw: `"d"`, kind: jStr},
				{name: "permissions", raw: `[{"actions":["Coffer/vaults/read"]}]`, kind: jArr, req: true, alt: `[{"actions":["Coffer/principals/read"]}]`}},
			semantic: []string{`{"roleName":"r","permissions":[{"actions":["Coffer/vaults/read!"]}]}`, `{"roleName":"r","permissions":[{"actions":["Coffer/vaults/read"]}],"assignableScopes":["/"]}`,
				`{"roleName":"Key Vault Reader","permissions":[{"actions":["Coffer/vaults/read"]}]}`, `{"roleName":"r","permissions":[]}`, `{"roleName":"r","permissions":[{}]}`,
				`{"roleName":"r","permissions":[{"actions":[""]}]}`, `{"roleName":"","permissions":[{"actions":["Coffer/vaults/read"]}]}`,
				`{"roleName":"Barrage reader","permissions":[{"actions":["Coffer/vaults/read"]}]}`,
				`{"roleName":"r","permissions":[{"actions":["Coffer/vaults/read"]}],"assignableScopes":["/tenants/` + b.tidB + `"]}`}},
		{op: "role-definition-delete", method: "DELETE", tmpl: "/v1/tenants/{tenant}/roleDefinitions/{id}", who: "tenant", ids: map[string]string{"id": s.customRoleID}},
		{op: "audit-query", method: "GET", tmpl: "/v1/tenants/{tenant}/audit", who: "tenant",
			query: []string{"since=yesterday", "limit=0", "limit=5000", "limit=-1", "limit=abc", "tenant=" + b.tidB, "limit=1&limit=2", "operation=a%20b",
				"since=2020-01-01", "until=x", "result=maybe", "x=1", "limit=1e3", "operation=" + strings.Repeat("o", 300)}},
		{op: "ca-rotate", method: "POST", tmpl: "/v1/tenants/{tenant}/ca", who: "tenant", optional: true,
			body:     jtmpl{{name: "subject", raw: `"CN=Barrage CA"`, kind: jStr, alt: `"CN=Other"`}, {name: "validityMonths", raw: `12`, kind: jInt, alt: `24`}},
			semantic: []string{`{"validityMonths":-1}`, `{"validityMonths":1201}`, `{"subject":"not a DN"}`, `{"subject":"CN=` + strings.Repeat("x", 5000) + `"}`}},
		{op: "ca-get", method: "GET", tmpl: "/v1/tenants/{tenant}/ca", who: "tenant"},
		{op: "issuer-create", method: "POST", tmpl: "/v1/tenants/{tenant}/issuers", who: "tenant",
			body: jtmpl{{name: "issuer", raw: `"https://idp.example/tenant"`, kind: jStr, req: true, alt: `"https://idp2.example"`}, {name: "audience", raw: `"api://coffer"`, kind: jStr, req: true, alt: `"api://x"`}},
			semantic: []string{`{"issuer":"http://idp.example","audience":"a"}`, `{"issuer":"","audience":"a"}`, `{"issuer":"not a url","audience":"a"}`, `{"issuer":"https://idp.example","audience":""}`,
				`{"issuer":"https://` + strings.Repeat("i", 3000) + `","audience":"a"}`, `{"issuer":"https://user:pw@idp.example","audience":"a"}`, `{"issuer":"file:///etc/passwd","audience":"a"}`}},
		{op: "issuer-list", method: "GET", tmpl: "/v1/tenants/{tenant}/issuers", who: "tenant"},
		{op: "user-create", method: "POST", tmpl: "/v1/tenants/{tenant}/issuers/{id}/users", who: "tenant", ids: map[string]string{"id": "00000000-0000-4000-8000-0000000155e4"},
			body: jtmpl{{name: "subject", raw: `"alice"`, kind: jStr, req: true, alt: `"bob"`}, {name: "displayName", raw: `"Alice"`, kind: jStr}}},
		{op: "access-request-create", method: "POST", tmpl: "/v1/tenants/{tenant}/accessRequests", who: "operator",
			body: jtmpl{{name: "scope", raw: jstr(tn + "/vaults/dev"), kind: jStr, req: true, alt: jstr(tn)}, {name: "roleDefinitionId", raw: jstr(mustRole("Key Vault Reader")), kind: jStr, req: true},
				{name: "duration", raw: `"1h"`, kind: jStr, req: true, alt: `"2h"`}, {name: "justification", raw: `"barrage test access"`, kind: jStr, req: true}},
			semantic: []string{
				`{"scope":"` + tn + `/vaults/dev","roleDefinitionId":"` + mustRole("Key Vault Reader") + `","duration":"9h","justification":"x"}`,
				`{"scope":"` + tn + `/vaults/dev","roleDefinitionId":"` + mustRole("Key Vault Reader") + `","duration":"x","justification":"x"}`,
				`{"scope":"` + tn + `/vaults/dev","roleDefinitionId":"` + mustRole("Key Vault Reader") + `","duration":"-1h","justification":"x"}`,
				`{"scope":"/tenants/` + b.tidB + `","roleDefinitionId":"` + mustRole("Key Vault Reader") + `","duration":"1h","justification":"x"}`,
				`{"scope":"` + tn + `/vaults/dev","roleDefinitionId":"00000000-0000-4000-8000-00000000dead","duration":"1h","justification":"x"}`,
				`{"scope":"/","roleDefinitionId":"` + mustRole("Key Vault Reader") + `","duration":"1h","justification":"x"}`}},
		{op: "access-request-list", method: "GET", tmpl: "/v1/tenants/{tenant}/accessRequests", who: "either"},
		{op: "access-request-approve", method: "POST", tmpl: "/v1/tenants/{tenant}/accessRequests/{id}/approve", who: "tenant", ids: map[string]string{"id": s.accessRequestID}},
		{op: "access-request-deny", method: "POST", tmpl: "/v1/tenants/{tenant}/accessRequests/{id}/deny", who: "tenant", ids: map[string]string{"id": s.accessRequestID}},
		{op: "access-request-revoke", method: "POST", tmpl: "/v1/tenants/{tenant}/accessRequests/{id}/revoke", who: "either", ids: map[string]string{"id": s.accessRequestID}},
		{op: "access-request-credential", method: "POST", tmpl: "/v1/tenants/{tenant}/accessRequests/{id}/credential", who: "operator", ids: map[string]string{"id": s.accessRequestID}},
		{op: "attestation-provider-put", method: "PUT", tmpl: "/v1/tenants/{tenant}/attestationProviders/{name}", who: "tenant", ids: map[string]string{"name": "bapnew"},
			optional: true, body: jtmpl{{name: "policy", raw: `{"types":["sim"]}`, kind: jObj, alt: `{"types":["sevsnpvm"]}`}},
			semantic: []string{`{"policy":{"types":["nope"]}}`, `{"policy":"x"}`, `{"policy":{"types":["sim"],"fly":1}}`, `{"policy":{"measurements":["xyz"]}}`,
				`{"policy":{"minimumTcb":{"snp":-1}}}`, `{"policy":{"allowDebug":"yes"}}`}},
		{op: "attestation-provider-get", method: "GET", tmpl: "/v1/tenants/{tenant}/attestationProviders/{name}", who: "tenant", ids: map[string]string{"name": "nosuchprov"}},
		{op: "attestation-provider-list", method: "GET", tmpl: "/v1/tenants/{tenant}/attestationProviders", who: "tenant"},
	}
	for i := range ops {
		b.genMgmt(&ops[i])
	}
	b.genSys()
}

func (b *barrage) mgmtBase(o *mgmtOp, class string) *bcase {
	p := strings.ReplaceAll(o.tmpl, "{tenant}", b.tid)
	for k, v := range o.ids {
		p = strings.ReplaceAll(p, "{"+k+"}", v)
	}
	tok := b.tokV
	if o.who == "operator" {
		tok = b.op
	}
	c := &bcase{family: "admin", op: o.op, class: class, method: o.method, host: b.bare, path: p, hdr: []hdrKV{{"Authorization", "Bearer " + tok}}}
	if o.body != nil {
		c.body = []byte(o.body.json())
		c.hdr = append(c.hdr, hdrKV{"Content-Type", "application/json"})
	}
	return c
}

func (b *barrage) genMgmt(o *mgmtOp) {
	b.turn++
	var own []*bcase
	mk := func(class string) *bcase {
		c := b.mgmtBase(o, class)
		own = append(own, c)
		return c
	}
	// Names and ids.
	for k, v := range o.ids {
		var bad []string
		switch {
		case k == "name":
			bad = []string{"kv_1", "1kv", "-kv", "kv-", strings.Repeat("v", 25), "a%2Fb", "kv.1", "k%20v", "%E2%80%8Bkv", "kv%00", "kv;1",
				"%C0%AF", v + "%2F..%2F" + v, "a@b", "%3Cs%3E"}
			if strings.Contains(o.tmpl, "/vaults/") || strings.Contains(o.tmpl, "/managedHsms/") {
				bad = append(bad, "managedhsm") // reserved: pools are served under managedhsm.<suffix>
			}
		default:
			bad = []string{"not-a-uuid", v + "x", v[:35], "%7B" + v + "%7D", strings.ReplaceAll(v, "-", ""),
				"a%2Fb", v + "%00", "%2e%2e%2F" + v, strings.Repeat("9", 1000), "' OR 1=1", "g" + v[1:]}
			if o.op != "role-definition-delete" {
				bad = append(bad, strings.ToUpper(v))
			}
		}
		for _, x := range bad {
			c := mk("id")
			c.path = strings.Replace(c.path, "/"+v, "/"+x, 1)
		}
	}
	// Methods (that name no other route).
	for _, m := range methods {
		if p := b.mgmtBase(o, "").path; m != o.method && !routed(b.bareRoute, m, p) {
			mk("method").method = m
		}
	}
	for _, q := range o.query {
		mk("query").query = q
	}
	if o.body != nil {
		for _, m := range bodyMutations(o.body) {
			if o.optional && strings.TrimSpace(m[1]) == "" || len(o.body) == 0 && m[0] == "json/missing" {
				continue // an empty body means "no options"
			}
			mk(m[0]).body = []byte(m[1])
		}
		for _, sem := range o.semantic {
			mk("semantic").body = []byte(sem)
		}
		for _, ct := range [][]string{{"text/plain"}, {"application/x-www-form-urlencoded"}, {"application/xml"}, {}, {"application/json; charset=utf-16"}, {"application/json", "text/plain"}} {
			c := mk("content-type")
			if len(o.body) == 0 {
				c.body = []byte("{}")
			}
			c.setHeader("Content-Type", ct...)
		}
		for _, n := range []int{64<<10 + 1, 2 << 20} {
			mk("size").body = []byte(`{"zzz":"` + strings.Repeat("A", n) + `"}`)
		}
	}

	// Credentials (A1–A13, A16, T5, T8): a core for every route, the rest in turn.
	coreAuth := [][]string{nil, {"Bearer "}, {"Bearer"}, {"Basic dXNlcjpwYXNz"}, {"Bearer abc"}, {"Bearer a.b.c"}, {"Bearer cof.wrong"},
		{"Bearer cof." + strings.Repeat("x", 2000)}, {"Bearer " + b.op + "x"}, {"Bearer " + b.op, "Bearer " + b.op}, {"Bearer " + b.tokV, "Bearer " + b.tokV},
		{"Bearer " + b.tokH}, {"Bearer " + b.tokNoRole}, {"Bearer " + b.tokB}, {"Bearer " + b.secret}, {"PoP " + b.tokV}, {"Bearer " + strings.Repeat("a", 20<<10)},
		{"Bearer " + b.tokV + "x"}, {"Bearer " + b.tokB + "x"}}
	switch o.who {
	case "operator":
		coreAuth = append(coreAuth, []string{"Bearer " + b.tokV}, []string{"Bearer " + b.tokSecretsOff}) // OperatorOnly
	case "tenant":
		coreAuth = append(coreAuth, []string{"Bearer " + b.op}, []string{"Bearer " + b.tokSecretsOff}) // OperatorNotAllowed; no management role
	default:
		coreAuth = append(coreAuth, []string{"Bearer " + b.tokSecretsOff})
	}
	var extraAuth [][]string
	forged := forgedTokens(b.tokV, b.signingKey)
	for _, n := range sortedKeys(forged) { // A2–A13 on the management audience
		extraAuth = append(extraAuth, []string{"Bearer " + forged[n]})
	}
	if o.who != "tenant" {
		// A16: guesses at the operator token, one character off in turn.
		for i := 4; i < len(b.op); i += max(1, len(b.op)/30) {
			t := []byte(b.op)
			t[i] ^= 0x01
			extraAuth = append(extraAuth, []string{"Bearer " + string(t)})
		}
	}
	// Tenants in the path that are not the caller's (T1) or are malformed.
	var coreTenants, extraTenants []string
	if strings.Contains(o.tmpl, "{tenant}") {
		all := b.badTenants()
		coreTenants, extraTenants = append(all[:10:10], b.tidB), all[10:]
	}
	fill := max(0, opTarget-len(own)-len(coreAuth)-len(coreTenants))
	nTenants := min(len(extraTenants), fill/2)
	nAuth := min(len(extraAuth), fill-nTenants)
	if short := fill - nTenants - nAuth; short > 0 {
		nTenants = min(len(extraTenants), nTenants+short)
	}
	for _, a := range append(coreAuth, rotating(extraAuth, nAuth, b.turn)...) {
		c := mk("auth")
		c.setHeader("Authorization", a...)
		switch {
		case a == nil:
			c.want = 401 // no token
		case len(a) == 1 && (a[0] == "Bearer "+b.tokSecretsOff || a[0] == "Bearer "+b.tokNoRole):
			c.want = 403 // a principal of the tenant without a management role
		}
	}
	for _, t := range append(coreTenants, rotating(extraTenants, nTenants, b.turn)...) {
		c := mk("tenant")
		c.path = strings.Replace(c.path, "/tenants/"+b.tid, "/tenants/"+t, 1)
	}
	for _, c := range own {
		b.add(c)
	}
}

// genSys covers /v1/sys: init and unseal (unauthenticated), seal, rotate and the purge clock's
// confirmation (the operator token — never the real one here), and seal-status.
func (b *barrage) genSys() {
	sys := func(op, method, path string, auth []string, body string, class string) {
		c := &bcase{family: "admin", op: op, class: class, method: method, host: b.bare, path: path}
		for _, a := range auth {
			c.hdr = append(c.hdr, hdrKV{"Authorization", a})
		}
		if body != "" || method == "POST" {
			c.body = []byte(body)
			c.hdr = append(c.hdr, hdrKV{"Content-Type", "application/json"})
		}
		if auth == nil && (op == "sys-seal" || op == "sys-rotate" || op == "sys-purge-clock/confirm") {
			c.want = 401 // no operator token
		}
		b.add(c)
	}
	// init: the store is initialised; every body is refused.
	initT := jtmpl{{name: "shares", raw: `5`, kind: jInt, alt: `3`}, {name: "threshold", raw: `3`, kind: jInt, alt: `2`}}
	for _, m := range bodyMutations(initT) {
		sys("sys-init", "POST", "/v1/sys/init", nil, m[1], m[0])
	}
	for _, body := range []string{`{}`, `{"shares":5,"threshold":3}`, `{"shares":0,"threshold":3}`, `{"shares":300,"threshold":3}`, `{"shares":3,"threshold":5}`,
		`{"shares":-1,"threshold":-1}`, `{"shares":1,"threshold":1}`} {
		sys("sys-init", "POST", "/v1/sys/init", nil, body, "semantic")
		sys("sys-init", "POST", "/v1/sys/init", []string{"Bearer " + b.op}, body, "semantic")
	}
	// unseal: malformed bodies and malformed shares are refused even while unsealed.
	unsealT := jtmpl{{name: "share", raw: `"AAAA"`, kind: jStr, req: true, alt: `"BBBB"`}}
	for _, m := range bodyMutations(unsealT) {
		sys("sys-unseal", "POST", "/v1/sys/unseal", nil, m[1], m[0])
	}
	for _, sh := range []string{"", " ", "!!!", "not a share", strings.Repeat("A", 10000), "\x00", "AAAA====", "+/+/", "%zz", "share"} {
		sys("sys-unseal", "POST", "/v1/sys/unseal", nil, `{"share":`+jstr(sh)+`}`, "semantic")
	}
	// The real share with one character changed, truncated or extended: its checksum fails.
	share := b.share
	for i := 0; i < len(share); i += max(1, len(share)/12) {
		t := []byte(share)
		t[i] ^= 0x01
		sys("sys-unseal", "POST", "/v1/sys/unseal", nil, `{"share":`+jstr(string(t))+`}`, "semantic")
	}
	sys("sys-unseal", "POST", "/v1/sys/unseal", nil, `{"share":`+jstr(share[:len(share)-1])+`}`, "semantic")
	sys("sys-unseal", "POST", "/v1/sys/unseal", nil, `{"share":`+jstr(share+"A")+`}`, "semantic")
	// seal and rotate: every credential but the operator token is refused.
	forged := forgedTokens(b.tokV, b.signingKey)
	auths := [][]string{nil, {"Bearer "}, {"Bearer"}, {"Basic dXNlcjpwYXNz"}, {"Bearer abc"}, {"Bearer cof.wrong"}, {"Bearer cof."},
		{"Bearer " + b.op + "x"}, {"Bearer " + b.op[:len(b.op)-1]}, {"Bearer x" + b.op}, {"Bearer " + b.op + ".x"}, {"Bearer " + strings.ToUpper(b.op)},
		{"Bearer " + b.tokV}, {"Bearer " + b.tokB}, {"Bearer " + b.secret}, {"PoP " + b.op}, {"Bearer " + b.op, "Bearer " + b.op}, {"Bearer " + b.op, "Bearer x"},
		{"Bearer " + strings.Repeat("a", 20<<10)}, {"Bearer " + forged["alg-none"]}, {"bearer " + b.op + "x"}, {"Bearer cof." + strings.Repeat("0", 64)},
		{"Bearer " + b.op + "%00"}, {"Token " + b.op}}
	for _, p := range []string{"seal", "rotate", "purge-clock/confirm"} {
		for _, a := range auths {
			for _, body := range []string{"", "{}", `{"force":true}`} {
				sys("sys-"+p, "POST", "/v1/sys/"+p, a, body, "auth")
			}
		}
		for _, n := range sortedKeys(forged) {
			sys("sys-"+p, "POST", "/v1/sys/"+p, []string{"Bearer " + forged[n]}, "", "auth")
		}
		for _, m := range methods {
			if m == "POST" {
				continue
			}
			c := &bcase{family: "admin", op: "sys-" + p, class: "method", method: m, host: b.bare, path: "/v1/sys/" + p, hdr: []hdrKV{{"Authorization", "Bearer " + b.op}}}
			b.add(c)
		}
	}
	// seal-status takes no input: other methods on the sys paths, and paths beside them.
	for _, p := range []string{"/v1/sys/seal-status", "/v1/sys/init", "/v1/sys/unseal", "/v1/sys/seal-status/x", "/v1/sys/SEAL-STATUS",
		"/v1/sys/seal-status%00", "/v1/sys/", "/v1/sys", "/v1/sys/unseal-x", "/v1/sys/seal%2Fx", "/v1/sys/seal-status;x", "/v1/sys/rotate/x",
		"/v1/sys/init/x", "/v1/sys/%73eal-x", "/v1/system/seal", "/v2/sys/seal", "/v1/sys/seal-status.json", "/v1/sys/Seal",
		"/v1/sys/seal%20", "/v1/sys/%2e%2e%2fseal", "/v1/sys/seal/..%2Frotate", "/v1/SYS/seal-status", "/v1/sys/health", "/v1/sys/leader",
		"/v1/sys/step-down", "/v1/sys/generate-root/attempt", "/v1/sys/rekey/init", "/v1/sys/unseal%00"} {
		for _, m := range []string{"GET", "POST", "PUT", "DELETE", "PATCH"} {
			if routed(b.bareRoute, m, p) {
				continue
			}
			c := &bcase{family: "admin", op: "sys-status-and-paths", class: "method", method: m, host: b.bare, path: p}
			if m != "GET" {
				c.hdr = []hdrKV{{"Authorization", "Bearer " + b.op}}
			}
			b.add(c)
		}
	}
}

// sortedKeys returns m's keys in order.
func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// ---- raw HTTP/1.1: what a client library will not send (A11, I2, I3, I4, T2) ----

func (b *barrage) genRaw() {
	tok := b.tokV
	req := func(family, op, class, lines string) {
		b.add(&bcase{family: family, op: op, class: class, host: b.vault, raw: []byte(lines)})
	}
	host := "Host: " + b.vault + "\r\n"
	auth := "Authorization: Bearer " + tok + "\r\n"
	for _, f := range []struct{ family, op, path string }{
		{"keys", "get", "/keys/bk-ec?" + apiV}, {"secrets", "get", "/secrets/bs-1?" + apiV}, {"certificates", "get", "/certificates/bc-self?" + apiV},
	} {
		get := "GET " + f.path + " HTTP/1.1\r\n"
		for class, r := range map[string]string{
			"http/auth-64KB":       get + host + "Authorization: Bearer " + strings.Repeat("a", 64<<10) + "\r\n\r\n",
			"http/auth-1MB":        get + host + "Authorization: Bearer " + strings.Repeat("a", 1<<20) + "\r\n\r\n",
			"http/many-headers":    get + host + auth + strings.Repeat("X-A: b\r\n", 10000) + "\r\n",
			"http/bad-header-name": get + host + auth + "Bad Header: x\r\n\r\n",
			"http/nul-in-header":   get + host + auth + "X-A: a\x00b\r\n\r\n",
			"http/two-hosts":       get + host + "Host: evil.example\r\n" + auth + "\r\n",
			"http/no-host":         get + auth + "\r\n",
			"http/garbage-line":    "GARBAGE\r\n" + host + "\r\n",
			"http/space-in-path":   "GET /keys/a b?" + apiV + " HTTP/1.1\r\n" + host + auth + "\r\n",
			"http/bad-escape":      "GET /keys/%zz?" + apiV + " HTTP/1.1\r\n" + host + auth + "\r\n",
			"http/absolute-uri":    "GET https://evil.example" + f.path + " HTTP/1.1\r\n" + host + auth + "\r\n",
			"http/absolute-other":  "GET https://bkv.localhost:" + b.port + f.path + " HTTP/1.1\r\n" + host + auth + "\r\n",
			"http/http10-no-host":  "GET " + f.path + " HTTP/1.0\r\n" + auth + "\r\n",
			"http/long-uri":        "GET " + f.path + "&x=" + strings.Repeat("u", 70<<10) + " HTTP/1.1\r\n" + host + auth + "\r\n",
			"http/cl-negative":     "POST " + f.path + " HTTP/1.1\r\n" + host + auth + "Content-Length: -1\r\n\r\n",
			"http/cl-garbage":      "POST " + f.path + " HTTP/1.1\r\n" + host + auth + "Content-Length: abc\r\n\r\n",
			"http/cl-twice":        "POST " + f.path + " HTTP/1.1\r\n" + host + auth + "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
			"http/te-and-cl":       "POST " + f.path + " HTTP/1.1\r\n" + host + auth + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n1\r\n{\r\n0\r\n\r\n",
			"http/bad-chunk":       "PUT " + strings.Replace(f.path, "bk-ec", "bk-x", 1) + " HTTP/1.1\r\n" + host + auth + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
			"http/crlf-in-value":   get + host + auth + "X-A: a\rb\r\n\r\n",
			"http/lf-only":         strings.ReplaceAll(get+host+auth+"X-A: \x7f\r\n\r\n", "\r\n", "\n"),
			"http/method-space":    "G ET " + f.path + " HTTP/1.1\r\n" + host + auth + "\r\n",
			"http/dot-segments":    "GET /keys/../secrets/bs-1?" + apiV + " HTTP/1.1\r\n" + host + auth + "\r\n",
			"http/nul-in-path":     "GET /keys/bk\x00ec?" + apiV + " HTTP/1.1\r\n" + host + auth + "\r\n",
			"http/host-port-junk":  get + "Host: " + b.vault + ":1\r\n" + auth + "\r\n",
			"http/host-userinfo":   get + "Host: user@" + b.vault + "\r\n" + auth + "\r\n",
		} {
			req(f.family, f.op, class, r)
		}
	}
	// SNI for one vault, Host for another (T2, N7): 421 in Key Vault's shape.
	for _, h := range []string{"bkv.localhost:" + b.port, "devhsm.managedhsm.localhost:" + b.port, "localhost:" + b.port, "127.0.0.1:" + b.port} {
		b.add(&bcase{family: "keys", op: "get", class: "http/sni-host", host: b.vault, sni: "dev.localhost",
			raw: []byte("GET /keys/bk-ec?" + apiV + " HTTP/1.1\r\nHost: " + h + "\r\n" + auth + "\r\n")})
	}
}
