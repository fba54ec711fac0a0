package cli

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func newTenantCmd() *cobra.Command {
	var f mgmtFlags
	cmd := &cobra.Command{
		Use:   "tenant",
		Short: "Create, list and show tenants (create and list need the operator token)",
	}
	f.register(cmd)
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a tenant and its first administrator (a service principal whose secret is printed once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.connect(cmd.Context(), preferOperator, "")
			if err != nil {
				return err
			}
			var out map[string]any
			if err := c.do(cmd.Context(), "POST", "/v1/tenants", map[string]string{"name": args[0]}, &out); err != nil {
				return err
			}
			if err := printJSON(cmd.OutOrStdout(), out); err != nil {
				return err
			}
			onceNote(cmd)
			return nil
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List every tenant (operator token)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.connect(cmd.Context(), preferOperator, "")
			if err != nil {
				return err
			}
			var out map[string]any
			if err := c.do(cmd.Context(), "GET", "/v1/tenants", nil, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one tenant (operator token, or a principal of the tenant)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.connect(cmd.Context(), preferClient, args[0])
			if err != nil {
				return err
			}
			var out map[string]any
			if err := c.do(cmd.Context(), "GET", tenantPath(args[0]), nil, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	cmd.AddCommand(create, list, show, newTenantCACmd(&f))
	return cmd
}

// newTenantCACmd manages a tenant's certificate authority.
func newTenantCACmd(f *mgmtFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Create, rotate and show a tenant's certificate authority (signs certificates whose issuer has provider TenantCA)",
	}
	var subject string
	var months int
	rotate := &cobra.Command{
		Use:   "rotate TENANT",
		Short: "Create the tenant's CA, or replace it with a new key and certificate",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.connect(cmd.Context(), preferClient, args[0])
			if err != nil {
				return err
			}
			var out map[string]any
			body := map[string]any{"subject": subject, "validityMonths": months}
			if err := c.do(cmd.Context(), "POST", tenantPath(args[0])+"/ca", body, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	rotate.Flags().StringVar(&subject, "subject", "", "the CA's subject, e.g. \"CN=Example Internal CA, O=Example\" (default CN=Coffer Tenant CA <tenant>)")
	rotate.Flags().IntVar(&months, "validity-months", 0, "the CA certificate's validity in months (default 120)")
	show := &cobra.Command{
		Use:   "show TENANT",
		Short: "Show the tenant's current CA certificate (PEM) and validity",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.connect(cmd.Context(), preferClient, args[0])
			if err != nil {
				return err
			}
			var out map[string]any
			if err := c.do(cmd.Context(), "GET", tenantPath(args[0])+"/ca", nil, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	cmd.AddCommand(rotate, show)
	return cmd
}

// storeKindCmd describes the vault or hsm command group.
type storeKindCmd struct {
	use, what, path string
}

var (
	kindVaults = storeKindCmd{"vault", "vault", "vaults"}
	kindHSMs   = storeKindCmd{"hsm", "managed HSM pool", "managedHsms"}
)

func newStoreCmd(k storeKindCmd) *cobra.Command {
	var f mgmtFlags
	cmd := &cobra.Command{
		Use:   k.use,
		Short: "Create, list and show the " + k.what + "s of a tenant",
	}
	f.register(cmd)
	var retention int
	var purgeProtection bool
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a " + k.what + " (names are global host names: 1-24 letters, digits and '-')",
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
			body := map[string]any{"enablePurgeProtection": purgeProtection}
			if cmd.Flags().Changed("retention-days") {
				body["softDeleteRetentionInDays"] = retention
			}
			var out map[string]any
			if err := c.do(cmd.Context(), "PUT", tenantPath(t)+"/"+k.path+"/"+url.PathEscape(args[0]), body, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	create.Flags().IntVar(&retention, "retention-days", 90, "soft-delete retention in days (7-90)")
	create.Flags().BoolVar(&purgeProtection, "purge-protection", false, "enable purge protection (deleted objects cannot be purged before the retention ends)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the " + k.what + "s of the tenant",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.get(cmd, "/"+k.path)
		},
	}
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show one " + k.what,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.get(cmd, "/"+k.path+"/"+url.PathEscape(args[0]))
		},
	}
	cmd.AddCommand(create, list, show)
	return cmd
}

// get prints GET <tenant path><sub> for the --tenant tenant.
func (f *mgmtFlags) get(cmd *cobra.Command, sub string) error { return f.send(cmd, "GET", sub, nil) }

// post prints POST <tenant path><sub> with body for the --tenant tenant.
func (f *mgmtFlags) post(cmd *cobra.Command, sub string, body any) error {
	return f.send(cmd, "POST", sub, body)
}

// send prints the answer of method <tenant path><sub> with body for the --tenant tenant.
func (f *mgmtFlags) send(cmd *cobra.Command, method, sub string, body any) error {
	t, err := f.target()
	if err != nil {
		return err
	}
	c, err := f.connect(cmd.Context(), preferClient, t)
	if err != nil {
		return err
	}
	var out map[string]any
	if err := c.do(cmd.Context(), method, tenantPath(t)+sub, body, &out); err != nil {
		return err
	}
	return printJSON(cmd.OutOrStdout(), out)
}

func newPrincipalCmd() *cobra.Command {
	var f mgmtFlags
	cmd := &cobra.Command{
		Use:   "principal",
		Short: "Create and list the service principals of a tenant and add their credentials",
	}
	f.register(cmd)
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a service principal called NAME; its first client secret is printed once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.post(cmd, "/principals", map[string]string{"displayName": args[0]}); err != nil {
				return err
			}
			onceNote(cmd)
			return nil
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the principals of the tenant (credentials by id and hint only)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return f.get(cmd, "/principals") },
	}
	show := &cobra.Command{
		Use:   "show OID",
		Short: "Show one principal by object id",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.get(cmd, "/principals/"+url.PathEscape(args[0]))
		},
	}
	addSecret := &cobra.Command{
		Use:   "add-secret OID",
		Short: "Add a client secret to a service principal (printed once; at most 10 per principal)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.post(cmd, "/principals/"+url.PathEscape(args[0])+"/secrets", map[string]any{}); err != nil {
				return err
			}
			onceNote(cmd)
			return nil
		},
	}
	addCert := &cobra.Command{
		Use:   "add-cert OID FILE",
		Short: "Register a client certificate (PEM or DER file) for client_assertion authentication",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[1])
			if err != nil {
				return err
			}
			cert := strings.TrimSpace(string(b))
			if !strings.HasPrefix(cert, "-----BEGIN") {
				cert = base64.StdEncoding.EncodeToString(b) // DER
			} else if strings.Count(cert, "-----BEGIN") != 1 {
				return fmt.Errorf("%s: give a file with exactly one PEM CERTIFICATE block (the client certificate, without key or chain)", args[1])
			}
			return f.post(cmd, "/principals/"+url.PathEscape(args[0])+"/certificates", map[string]string{"certificate": cert})
		},
	}
	cmd.AddCommand(create, list, show, addSecret, addCert)
	return cmd
}
