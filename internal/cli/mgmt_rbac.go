package cli

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coffer-kms/coffer/internal/authz"
)

func newRoleCmd() *cobra.Command {
	var f mgmtFlags
	cmd := &cobra.Command{
		Use:   "role",
		Short: "Assign roles to principals, list and delete assignments, list role definitions",
	}
	f.register(cmd)
	var principal, role, scope, id string
	assign := &cobra.Command{
		Use:   "assign --principal OID --role NAME-or-ID [--scope S]",
		Short: "Assign a role (built-in or custom, by name or id) to a principal at a scope of the tenant",
		Long: `Assign a role to a principal of the tenant.

--scope is a scope path of the tenant, or relative to it:
  (empty)                    the whole tenant: /tenants/<tenant>
  vaults/kv1                 one vault: /tenants/<tenant>/vaults/kv1
  managedHsms/hsm1/keys/k    one key of a managed HSM pool
  /tenants/<tenant>/...      the full path`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			t, err := f.target()
			if err != nil {
				return err
			}
			if principal == "" || role == "" {
				return fmt.Errorf("give --principal <object id> and --role <role name or id>")
			}
			c, err := f.connect(ctx, preferClient, t)
			if err != nil {
				return err
			}
			roleID, err := resolveRole(ctx, c, t, role)
			if err != nil {
				return err
			}
			if id == "" {
				id = newUUID()
			}
			body := map[string]string{"principalId": principal, "roleDefinitionId": roleID, "scope": fullScope(t, scope)}
			var out map[string]any
			if err := c.do(ctx, "PUT", tenantPath(t)+"/roleAssignments/"+url.PathEscape(id), body, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	assign.Flags().StringVar(&principal, "principal", "", "object id of the principal")
	assign.Flags().StringVar(&role, "role", "", `role name (e.g. "Key Vault Secrets User") or role definition id`)
	assign.Flags().StringVar(&scope, "scope", "", "scope (see above; default the whole tenant)")
	assign.Flags().StringVar(&id, "id", "", "assignment id (a UUID; default random)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the role assignments of the tenant",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return f.get(cmd, "/roleAssignments") },
	}
	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a role assignment",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := f.target()
			if err != nil {
				return err
			}
			c, err := f.connect(cmd.Context(), preferClient, t)
			if err != nil {
				return err
			}
			var out map[string]any
			if err := c.do(cmd.Context(), "DELETE", tenantPath(t)+"/roleAssignments/"+url.PathEscape(args[0]), nil, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	defs := &cobra.Command{
		Use:   "definitions",
		Short: "List the role definitions assignable in the tenant (built-in and custom)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return f.get(cmd, "/roleDefinitions") },
	}
	cmd.AddCommand(assign, list, del, defs)
	return cmd
}

// fullScope turns a scope given relative to the tenant into a scope path.
func fullScope(tenant, scope string) string {
	scope = strings.TrimSpace(scope)
	switch {
	case scope == "":
		return "/tenants/" + tenant
	case strings.HasPrefix(scope, "/"):
		return scope
	}
	return "/tenants/" + tenant + "/" + strings.TrimSuffix(scope, "/")
}

// resolveRole returns the id of the role called name (case-insensitive, as Azure CLI's
// --role), or name itself if it is an id. Built-in roles are known locally; custom roles are
// looked up in the tenant (which needs Coffer/roleDefinitions/read).
func resolveRole(ctx context.Context, c *mgmtClient, tenant, name string) (string, error) {
	if isUUID(name) {
		return strings.ToLower(name), nil
	}
	if r, ok := authz.RoleByName(name); ok {
		return r.ID, nil
	}
	var defs struct {
		Value []struct {
			ID       string `json:"id"`
			RoleName string `json:"roleName"`
		} `json:"value"`
	}
	if err := c.do(ctx, "GET", tenantPath(tenant)+"/roleDefinitions", nil, &defs); err != nil {
		return "", fmt.Errorf("looking up role %q: %w", name, err)
	}
	var ids []string
	for _, d := range defs.Value {
		if strings.EqualFold(d.RoleName, name) {
			ids = append(ids, d.ID)
		}
	}
	switch len(ids) {
	case 1:
		return ids[0], nil
	case 0:
		return "", fmt.Errorf("no role is called %q in this tenant: `coffer role definitions` lists them", name)
	}
	return "", fmt.Errorf("%d roles are called %q (%s): give the id", len(ids), name, strings.Join(ids, ", "))
}
