package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"

	"github.com/spf13/cobra"
)

// newAttestCmd manages a tenant's attestation providers (docs/ATTESTATION.md): each is an
// instance of the attestation service at https://<name>.attest.<suffix>, with the policy
// that decides which evidence becomes a token.
func newAttestCmd() *cobra.Command {
	var f mgmtFlags
	cmd := &cobra.Command{
		Use:   "attest",
		Short: "Create, update, list and show a tenant's attestation providers and their policies",
	}
	f.register(cmd)
	var policyFile string
	var types, measurements []string
	var allowDebug bool
	put := &cobra.Command{
		Use:   "put NAME",
		Short: "Create an attestation provider or replace its policy (--policy-file, or --types/--measurements/--allow-debug)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			policy, err := attestPolicy(cmd, policyFile, types, measurements, allowDebug)
			if err != nil {
				return err
			}
			return f.send(cmd, "PUT", "/attestationProviders/"+url.PathEscape(args[0]), map[string]any{"policy": policy})
		},
	}
	put.Flags().StringVar(&policyFile, "policy-file", "", "the attestation policy as a JSON file ({\"types\":[...],\"measurements\":[...],\"allowDebug\":false,\"minimumTcb\":{...}})")
	put.Flags().StringSliceVar(&types, "types", nil, "comma-separated evidence types accepted: sevsnpvm, sim (sim only for development)")
	put.Flags().StringSliceVar(&measurements, "measurements", nil, "comma-separated acceptable launch measurements (96 hex digits each); empty accepts any")
	put.Flags().BoolVar(&allowDebug, "allow-debug", false, "accept TEEs whose policy allows debugging (never in production)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the tenant's attestation providers",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return f.get(cmd, "/attestationProviders") },
	}
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show one attestation provider, its URL and its policy",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.get(cmd, "/attestationProviders/"+url.PathEscape(args[0]))
		},
	}
	cmd.AddCommand(put, list, show)
	return cmd
}

// attestPolicy builds the policy object from a file or from the flags (not both).
func attestPolicy(cmd *cobra.Command, file string, types, measurements []string, allowDebug bool) (json.RawMessage, error) {
	flagsSet := cmd.Flags().Changed("types") || cmd.Flags().Changed("measurements") || cmd.Flags().Changed("allow-debug")
	if file != "" {
		if flagsSet {
			return nil, fmt.Errorf("give the policy either with --policy-file or with --types/--measurements/--allow-debug, not both")
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--policy-file: %w", err)
		}
		if !json.Valid(b) {
			return nil, fmt.Errorf("--policy-file %s is not JSON", file)
		}
		return b, nil
	}
	if !flagsSet {
		return nil, fmt.Errorf("no policy: give --policy-file or --types (e.g. --types sevsnpvm --measurements <hex>)")
	}
	p := map[string]any{"allowDebug": allowDebug}
	if len(types) > 0 {
		p["types"] = types
	}
	if len(measurements) > 0 {
		p["measurements"] = measurements
	}
	return json.Marshal(p)
}
