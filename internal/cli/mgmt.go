package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// The management commands (tenant, vault, hsm, principal, role, audit) are clients of the
// management API under /v1/ (docs/MANAGEMENT.md).

// newManagementCmds returns the management command groups for newRoot.
func newManagementCmds() []*cobra.Command {
	hsm := newStoreCmd(kindHSMs)
	hsm.AddCommand(newHSMSecurityDomainCmd())
	return []*cobra.Command{newTenantCmd(), newStoreCmd(kindVaults), hsm, newPrincipalCmd(), newRoleCmd(), newAuditCmd(), newAttestCmd()}
}

// mgmtFlags are the connection and credential flags of every management command.
type mgmtFlags struct {
	clientFlags
	tenant       string // the tenant managed (--tenant)
	tenantID     string // the tenant authenticated to (--tenant-id; default --tenant)
	clientID     string
	clientSecret string
}

func (f *mgmtFlags) register(cmd *cobra.Command) {
	f.clientFlags.register(cmd)
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.tenant, "tenant", os.Getenv("COFFER_TENANT_ID"), "tenant id to manage (env COFFER_TENANT_ID; default --tenant-id)")
	pf.StringVar(&f.tenantID, "tenant-id", "", "tenant of the principal whose client credentials authenticate (default --tenant)")
	pf.StringVar(&f.clientID, "client-id", os.Getenv("COFFER_CLIENT_ID"), "client id of a principal of the tenant (env COFFER_CLIENT_ID)")
	pf.StringVar(&f.clientSecret, "client-secret", "", "its client secret (env COFFER_CLIENT_SECRET; prefer the variable: flags show up in ps)")
}

// target returns the tenant to manage, which a tenant command needs.
func (f *mgmtFlags) target() (string, error) {
	t := f.tenant
	if t == "" {
		t = f.tenantID
	}
	if t == "" {
		return "", fmt.Errorf("which tenant? give --tenant <tenant id> (or COFFER_TENANT_ID)")
	}
	return t, nil
}

// credential says which credential a command prefers when both are configured.
type credential int

const (
	preferOperator credential = iota // platform commands: the operator token
	preferClient                     // tenant commands: client credentials
)

// mgmtClient is an authenticated client of the management API.
type mgmtClient struct {
	*client
	bearer string
}

// connect builds a client with a bearer credential: the operator token (--token or
// COFFER_TOKEN), or an access token obtained with client credentials from the server's own
// token endpoint for tenant (the default tenant of --tenant-id).
func (f *mgmtFlags) connect(ctx context.Context, pref credential, tenant string) (*mgmtClient, error) {
	c, err := f.client()
	if err != nil {
		return nil, err
	}
	secret := f.clientSecret
	if secret == "" {
		secret = os.Getenv("COFFER_CLIENT_SECRET")
	}
	haveClient := f.clientID != ""
	useClient := haveClient && (pref == preferClient || c.token == "")
	switch {
	case useClient:
		tid := f.tenantID
		if tid == "" {
			tid = tenant
		}
		if tid == "" {
			return nil, fmt.Errorf("client credentials need the principal's tenant: give --tenant-id or --tenant")
		}
		if secret == "" {
			return nil, fmt.Errorf("--client-id %s needs its secret: set COFFER_CLIENT_SECRET (or --client-secret)", f.clientID)
		}
		tok, err := c.clientCredentials(ctx, tid, f.clientID, secret)
		if err != nil {
			return nil, err
		}
		return &mgmtClient{client: c, bearer: tok}, nil
	case c.token != "":
		return &mgmtClient{client: c, bearer: c.token}, nil
	case pref == preferOperator:
		return nil, fmt.Errorf("this command needs the operator token: set COFFER_TOKEN (or --token)")
	}
	return nil, fmt.Errorf("this command needs the credentials of a principal of the tenant: --client-id and COFFER_CLIENT_SECRET (or COFFER_CLIENT_ID), or an access token in COFFER_TOKEN")
}

// clientCredentials gets an access token for the management API from the server's identity
// provider. The audience is the provider's base URL, read from the tenant's OpenID
// configuration (its issuer is <base>/<tenant>/v2.0), so it is right even when --addr
// names the server differently.
func (c *client) clientCredentials(ctx context.Context, tenant, clientID, secret string) (string, error) {
	t := url.PathEscape(tenant)
	var oidc struct {
		Issuer string `json:"issuer"`
	}
	if err := c.raw(ctx, "GET", "/"+t+"/v2.0/.well-known/openid-configuration", nil, "", &oidc); err != nil {
		return "", fmt.Errorf("tenant %s: %w", tenant, err)
	}
	base, ok := strings.CutSuffix(oidc.Issuer, "/"+tenant+"/v2.0")
	if !ok || !strings.HasPrefix(base, "https://") {
		return "", fmt.Errorf("tenant %s: the server's issuer %q is not <base>/<tenant>/v2.0", tenant, oidc.Issuer)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "scope": {base + "/.default"}}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := c.raw(ctx, "POST", "/"+t+"/oauth2/v2.0/token", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded", &tok); err != nil {
		return "", fmt.Errorf("client credentials of %s in tenant %s: %w", clientID, tenant, err)
	}
	if tok.AccessToken == "" {
		return "", fmt.Errorf("client credentials of %s in tenant %s: the server returned no access token", clientID, tenant)
	}
	return tok.AccessToken, nil
}

// maxResponse bounds a management response (an audit query returns up to 1000 records).
const maxResponse = 16 << 20

// raw sends one request without a bearer token and decodes a JSON answer into out, turning
// Key Vault and OAuth2 error bodies into Go errors.
func (c *client) raw(ctx context.Context, method, path string, body io.Reader, contentType string, out any) error {
	return c.send(ctx, method, path, body, contentType, "", out)
}

func (c *client) send(ctx context.Context, method, path string, body io.Reader, contentType, bearer string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.addr+path, body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error json.RawMessage `json:"error"`
			Desc  string          `json:"error_description"`
		}
		var kv struct{ Code, Message string }
		if json.Unmarshal(b, &e) == nil {
			if json.Unmarshal(e.Error, &kv) == nil && kv.Code != "" {
				return fmt.Errorf("%s (%d %s)", kv.Message, resp.StatusCode, kv.Code)
			}
			if e.Desc != "" {
				return fmt.Errorf("%s (%d)", e.Desc, resp.StatusCode)
			}
		}
		return fmt.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: the answer is not the expected JSON: %w", method, path, err)
		}
	}
	return nil
}

// do sends a JSON request to the management API.
func (m *mgmtClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	return m.send(ctx, method, path, body, ct, m.bearer, out)
}

// tenantPath is /v1/tenants/<tenant> with the tenant escaped.
func tenantPath(tenant string) string { return "/v1/tenants/" + url.PathEscape(tenant) }

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newUUID returns a random version-4 UUID.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// isUUID reports whether s has the 8-4-4-4-12 hexadecimal form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'):
			return false
		}
	}
	return true
}

// onceNote tells the user on stderr that a secret in the output is shown once.
func onceNote(cmd *cobra.Command) {
	fmt.Fprintln(cmd.ErrOrStderr(), "The client secret above is shown once and stored nowhere in the clear: keep it now (e.g. in COFFER_CLIENT_SECRET).")
}
