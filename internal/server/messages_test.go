package server

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// kvCall sends one data-plane request with a bearer token and returns the status and body.
func kvCall(t *testing.T, hc *http.Client, token, method, url, body string) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// devVaultCalls starts a dev server and returns do, which sends a request with the dev principal's
// token to the dev vault (path relative to the vault URL), and must, which also fails the
// test unless the status is want and returns the body.
func devVaultCalls(t *testing.T) (do func(method, path, body string) (int, []byte), must func(method, path, body string, want int) []byte) {
	t.Helper()
	ts := startDev(t)
	dev := ts.Dev.Credentials
	hc := loopbackClient(t, ts.caFile)
	_, tok := rawToken(t, ts, hc, dev.TenantID, dev.ClientID, dev.ClientSecret, ts.resources().Base())
	do = func(method, path, body string) (int, []byte) {
		return kvCall(t, hc, tok, method, dev.VaultURL+path, body)
	}
	must = func(method, path, body string, want int) []byte {
		t.Helper()
		st, raw := do(method, path, body)
		if st != want {
			t.Fatalf("%s %s = %d %s; want %d", method, path, st, raw, want)
		}
		return raw
	}
	return do, must
}

// kvNotFound is Key Vault's message for a name (or name/version) with no live object.
func kvNotFound(noun, id string) string {
	return "A " + noun + " with (name/id) " + id + " was not found in this key vault. If you recently deleted this " + noun +
		" you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
}

// TestErrorMessagesMatchKeyVault pins the status, error code and message of the not-found,
// deleted-but-recoverable and bad-paging answers of keys, secrets and certificates to what
// Key Vault answers (recorded responses quoted in the Azure SDKs' tests; see
// docs/COMPAT.md), so the three kinds cannot drift apart again.
func TestErrorMessagesMatchKeyVault(t *testing.T) {
	do, must := devVaultCalls(t)
	const v = "?api-version=7.6"

	// Each kind: live-<kind> exists, gone-<kind> is soft-deleted, nope-<kind> never existed.
	// (A certificate's key and secret take its name, so the names differ by kind.)
	must("POST", "keys/live-key/create"+v, `{"kty":"EC","crv":"P-256"}`, 200)
	must("POST", "keys/gone-key/create"+v, `{"kty":"EC","crv":"P-256"}`, 200)
	must("DELETE", "keys/gone-key"+v, "", 200)
	must("PUT", "secrets/live-secret"+v, `{"value":"v"}`, 200)
	must("PUT", "secrets/gone-secret"+v, `{"value":"v"}`, 200)
	must("DELETE", "secrets/gone-secret"+v, "", 200)
	policy := `{"policy":{"issuer":{"name":"Self"},"x509_props":{"subject":"CN=t"},"key_props":{"kty":"EC","crv":"P-256"}}}`
	for _, name := range []string{"live-certificate", "gone-certificate"} {
		must("POST", "certificates/"+name+"/create"+v, policy, 202)
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, raw := do("GET", "certificates/"+name+"/pending"+v, "")
			var op struct{ Status string }
			_ = json.Unmarshal(raw, &op)
			if op.Status != "inProgress" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("certificate %s still inProgress after 10s", name)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	must("DELETE", "certificates/gone-certificate"+v, "", 200)

	kinds := []struct {
		noun, Noun, path, deleted, code, create, createBody string
	}{
		{"key", "Key", "keys/", "deletedkeys/", "KeyNotFound", "POST", `{"kty":"EC","crv":"P-256"}`},
		{"secret", "Secret", "secrets/", "deletedsecrets/", "SecretNotFound", "PUT", `{"value":"v"}`},
		{"certificate", "Certificate", "certificates/", "deletedcertificates/", "CertificateNotFound", "POST", policy},
	}
	const pagingMsg = "$skiptoken is invalid: pass the nextLink of the previous page unchanged."
	for _, k := range kinds {
		live, gone, nope := "live-"+k.noun, "gone-"+k.noun, "nope-"+k.noun
		createPath := k.path + gone + v
		if k.noun != "secret" {
			createPath = k.path + gone + "/create" + v
		}
		unknownVersion := live + "/" + strings.Repeat("0", 32)
		tests := []struct {
			name, method, path, body string
			status                   int
			code, msg                string
		}{
			{"get/never-existed", "GET", k.path + nope + v, "", 404, k.code, kvNotFound(k.noun, nope)},
			{"get/unknown-version", "GET", k.path + unknownVersion + v, "", 404, k.code, kvNotFound(k.noun, unknownVersion)},
			{"get/soft-deleted", "GET", k.path + gone + v, "", 404, k.code, kvNotFound(k.noun, gone)},
			{"get-deleted/never-existed", "GET", k.deleted + nope + v, "", 404, k.code, "Deleted " + k.Noun + " not found: " + nope},
			{"get-deleted/live", "GET", k.deleted + live + v, "", 404, k.code, "Deleted " + k.Noun + " not found: " + live},
			{"recover/never-existed", "POST", k.deleted + nope + "/recover" + v, "", 404, k.code, kvNotFound(k.noun, nope)},
			{"purge/never-existed", "DELETE", k.deleted + nope + v, "", 404, k.code, "Deleted " + k.Noun + " not found: " + nope},
			{"purge/live", "DELETE", k.deleted + live + v, "", 404, k.code, "Deleted " + k.Noun + " not found: " + live},
			{"create/soft-deleted", k.create, createPath, k.createBody, 409, "Conflict",
				k.Noun + " " + gone + " is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the " + k.noun + " can only be recovered or purged."},
			{"list/bad-skiptoken", "GET", strings.TrimSuffix(k.path, "/") + v + "&$skiptoken=..%2Fx", "", 400, "BadParameter", pagingMsg},
			{"list-deleted/bad-skiptoken", "GET", strings.TrimSuffix(k.deleted, "/") + v + "&$skiptoken=..%2Fx", "", 400, "BadParameter", pagingMsg},
			{"list/bad-maxresults", "GET", strings.TrimSuffix(k.path, "/") + v + "&maxresults=26", "", 400, "BadParameter", "maxresults must be an integer from 1 to 25"},
		}
		for _, tt := range tests {
			t.Run(k.noun+"/"+tt.name, func(t *testing.T) {
				st, raw := do(tt.method, tt.path, tt.body)
				code, msg := kvError(t, raw)
				if st != tt.status || code != tt.code || msg != tt.msg {
					t.Errorf("%s %s = %d %s %q; want %d %s %q", tt.method, tt.path, st, code, msg, tt.status, tt.code, tt.msg)
				}
			})
		}
	}

	// Keys' refusals carry their message alone, as secrets' do, without the sentinel's text
	// in front ("Operation not permitted: key is disabled: ...").
	must("PATCH", "keys/live-key/"+v, `{"attributes":{"enabled":false}}`, 200)
	st, raw := do("POST", "keys/live-key//sign"+v, `{"alg":"ES256","value":"`+strings.Repeat("A", 43)+`"}`)
	if code, msg := kvError(t, raw); st != 403 || code != "Forbidden" || msg != "Operation sign is not allowed on a disabled key." {
		t.Errorf("sign with a disabled key = %d %s %q; want 403 Forbidden %q", st, code, msg, "Operation sign is not allowed on a disabled key.")
	}
}
