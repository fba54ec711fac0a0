// Package cli owns the coffer command line: `coffer server` runs the service and every other
// subcommand is a client that talks to a server only over HTTPS. It must not import storage,
// barrier or crypto packages directly (only server, to run it, and config), except byok:
// `coffer byok` builds a transfer blob on the user's machine, which is the point of it.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/coffer-kms/coffer/internal/config"
	"github.com/coffer-kms/coffer/internal/server"
)

// Version is set at build time with -ldflags "-X github.com/coffer-kms/coffer/internal/cli.Version=...".
var Version = "dev"

// Main runs the coffer command with args and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdin, stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "coffer",
		Short: "Coffer: a self-hosted key management service speaking the Azure Key Vault API",
		Long: `Coffer keeps keys, secrets and certificates sealed at rest and serves them over HTTPS only.
"coffer server" runs the service; the other subcommands talk to a running server.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newServerCmd(stdout, stderr), newOperatorCmd(), &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), "coffer", Version) },
	})
	root.AddCommand(newManagementCmds()...)
	root.AddCommand(newBYOKCmd())
	root.AddCommand(newTeeCmd())
	return root
}

func newServerCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Coffer server (HTTPS only)",
		Long: `Run the Coffer server.

Every setting can be given as a flag, as a COFFER_* environment variable, or as a key of the
YAML file named by --config; flags override environment variables, which override the file.

  coffer server --dev        development mode: nothing to configure, NOT FOR PRODUCTION
  coffer server --config /etc/coffer/coffer.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cmd.Flags(), os.Getenv)
			if err != nil {
				return fmt.Errorf("invalid configuration:\n%w", err)
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("invalid configuration:\n%w", err)
			}
			hardenProcess()
			tuneGC()
			if path := os.Getenv("COFFER_CPUPROFILE"); path != "" {
				stopProfile, err := startCPUProfile(path)
				if err != nil {
					return err
				}
				defer stopProfile()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			// Asking for SIGPIPE turns a write to a closed standard output or error into an
			// EPIPE error instead of the exit Go makes it otherwise: with --audit-stdout the
			// audit sink then fails, and so every request, with a 503 counted in
			// coffer_audit_failures_total, rather than the server dying (SECURITY-NOTES L1).
			pipe := make(chan os.Signal, 1)
			signal.Notify(pipe, syscall.SIGPIPE)
			defer signal.Stop(pipe)
			err = server.New(cfg, stdout, stderr).Run(ctx, hup)
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	config.RegisterFlags(cmd.Flags())
	return cmd
}
