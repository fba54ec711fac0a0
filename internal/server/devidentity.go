package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Dev mode's fixed objects: one tenant, one vault (also served on the bare host), one managed
// HSM pool, and one service principal with full data rights on both.
const (
	devTenantID     = "00000000-0000-4000-8000-00000000c0ff"
	devVaultName    = "dev"
	devHSMName      = "devhsm"
	devCredsFile    = "dev-credentials.json"
	devPrincipalTag = "coffer-dev"
)

// DevCredentials is written to <data-dir>/dev-credentials.json for scripts and tests.
type DevCredentials struct {
	TenantID      string `json:"tenantId"`
	ClientID      string `json:"clientId"`
	ClientSecret  string `json:"clientSecret"`
	ObjectID      string `json:"objectId"`
	AuthorityHost string `json:"authorityHost"`
	VaultURL      string `json:"vaultUrl"`
	ManagedHSMURL string `json:"managedHsmUrl"`
	CAFile        string `json:"caFile"`
}

// devIdentity creates (first start) or loads (later starts) the dev tenant, vault, pool and
// principal, and writes dev-credentials.json with the current URLs.
func (s *Server) devIdentity(ctx context.Context) error {
	path := filepath.Join(s.cfg.DataDir, devCredsFile)
	var creds DevCredentials
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if creds, err = s.createDevIdentity(ctx); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(b, &creds); err != nil {
			return fmt.Errorf("%s is damaged: %w", path, err)
		}
	}
	v, err := s.tenants.Vault(ctx, tenancy.KindVault, devVaultName)
	if err != nil {
		return fmt.Errorf("dev vault: %w", err)
	}
	s.devVault = &v
	if err := s.activateDevHSM(ctx); err != nil {
		return err
	}
	base := s.resources()
	creds.AuthorityHost = base.Base() + "/"
	creds.VaultURL = hostURL(devVaultName+"."+s.cfg.DNSSuffix, base.port) + "/"
	creds.ManagedHSMURL = hostURL(devHSMName+".managedhsm."+s.cfg.DNSSuffix, base.port) + "/"
	creds.CAFile, _ = filepath.Abs(s.Dev.CAFile)
	out, _ := json.MarshalIndent(creds, "", "  ")
	if err := writeFileSync(path, append(out, '\n')); err != nil {
		return err
	}
	s.Dev.Credentials = creds
	s.Dev.CredentialsFile = path
	return nil
}

func hostURL(host, port string) string {
	if port == "443" {
		return "https://" + host
	}
	return "https://" + host + ":" + port
}

func (s *Server) createDevIdentity(ctx context.Context) (DevCredentials, error) {
	if _, err := s.tenants.Tenant(ctx, devTenantID); errors.Is(err, tenancy.ErrNotFound) {
		if _, err := s.tenants.CreateTenant(ctx, devTenantID, "Coffer development"); err != nil {
			return DevCredentials{}, err
		}
	}
	for _, st := range []struct {
		kind tenancy.Kind
		name string
	}{{tenancy.KindVault, devVaultName}, {tenancy.KindManagedHSM, devHSMName}} {
		if _, err := s.tenants.Vault(ctx, st.kind, st.name); errors.Is(err, tenancy.ErrNotFound) {
			if _, err := s.tenants.CreateVault(ctx, devTenantID, st.kind, st.name, tenancy.VaultOptions{SoftDeleteRetention: 7}); err != nil {
				return DevCredentials{}, err
			}
		}
	}
	p, secret, err := s.tenants.CreateServicePrincipal(ctx, devTenantID, devPrincipalTag)
	if err != nil {
		return DevCredentials{}, err
	}
	tenantScope := "/tenants/" + devTenantID
	for _, a := range []authz.Assignment{
		{RoleDefinitionID: authz.CofferTenantAdministratorRoleID, Scope: tenantScope},
		{RoleDefinitionID: mustRole("Key Vault Administrator"), Scope: tenantScope},
		{RoleDefinitionID: mustRole("Managed HSM Administrator"), Scope: tenantScope + "/managedHsms/" + devHSMName},
		{RoleDefinitionID: mustRole("Managed HSM Crypto User"), Scope: tenantScope + "/managedHsms/" + devHSMName},
		{RoleDefinitionID: mustRole("Managed HSM Crypto Officer"), Scope: tenantScope + "/managedHsms/" + devHSMName},
	} {
		a.PrincipalID, a.TenantID = p.ObjectID, devTenantID
		if _, err := s.tenants.CreateRoleAssignment(ctx, a); err != nil {
			return DevCredentials{}, fmt.Errorf("dev role assignment: %w", err)
		}
	}
	s.log.Warn("dev mode: created the dev tenant, vault, managed HSM pool and a service principal with full rights", "tenant", devTenantID, "clientId", p.AppID)
	return DevCredentials{TenantID: devTenantID, ClientID: p.AppID, ClientSecret: secret, ObjectID: p.ObjectID}, nil
}

func mustRole(name string) string {
	r, ok := authz.RoleByName(name)
	if !ok {
		panic("unknown built-in role " + name)
	}
	return r.ID
}
