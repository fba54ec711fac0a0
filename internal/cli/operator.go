package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// client talks to a Coffer server's operator API over HTTPS.
type client struct {
	addr  string
	token string
	http  *http.Client
}

type clientFlags struct {
	addr, caCert, token string
}

func (f *clientFlags) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.addr, "addr", envOr("COFFER_ADDR", "https://localhost:8443"), "server URL (env COFFER_ADDR)")
	pf.StringVar(&f.caCert, "ca-cert", os.Getenv("COFFER_CACERT"), "PEM CA file to trust for the server certificate (env COFFER_CACERT; default: system roots)")
	pf.StringVar(&f.token, "token", "", "operator token (env COFFER_TOKEN; prefer the variable: flags show up in ps)")
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func (f *clientFlags) client() (*client, error) {
	if !strings.HasPrefix(f.addr, "https://") {
		return nil, fmt.Errorf("--addr %q: Coffer serves HTTPS only; use an https:// URL", f.addr)
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.caCert != "" {
		pem, err := os.ReadFile(f.caCert)
		if err != nil {
			return nil, fmt.Errorf("--ca-cert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-cert %s: no PEM certificate in the file", f.caCert)
		}
		tlsCfg.RootCAs = pool
	}
	token := f.token
	if token == "" {
		token = os.Getenv("COFFER_TOKEN")
	}
	return &client{
		addr:  strings.TrimRight(f.addr, "/"),
		token: strings.TrimSpace(token),
		http:  &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg, ForceAttemptHTTP2: true}},
	}, nil
}

// call sends a JSON request and decodes a JSON response into out, turning Key Vault error
// bodies into Go errors.
func (c *client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.addr+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
			return fmt.Errorf("%s (%d %s)", e.Error.Message, resp.StatusCode, e.Error.Code)
		}
		return fmt.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// sealStatus mirrors the server's seal status.
type sealStatus struct {
	Initialized bool   `json:"initialized"`
	Sealed      bool   `json:"sealed"`
	Type        string `json:"type"`
	Shares      int    `json:"shares"`
	Threshold   int    `json:"threshold"`
	Progress    int    `json:"progress"`
	Term        uint32 `json:"term"`
	Generation  uint64 `json:"generation"`
	Error       string `json:"error"`
}

func printStatus(w io.Writer, st sealStatus) {
	fmt.Fprintf(w, "Initialized:  %v\nSealed:       %v\n", st.Initialized, st.Sealed)
	if st.Initialized {
		fmt.Fprintf(w, "Seal type:    %s\n", st.Type)
		if st.Threshold > 0 {
			fmt.Fprintf(w, "Threshold:    %d of %d shares\n", st.Threshold, st.Shares)
		}
		if st.Sealed {
			fmt.Fprintf(w, "Progress:     %d/%d\n", st.Progress, st.Threshold)
		} else {
			fmt.Fprintf(w, "Keyring term: %d\nGeneration:   %d\n", st.Term, st.Generation)
		}
	}
	if st.Error != "" {
		fmt.Fprintf(w, "Error:        %s\n", st.Error)
	}
}

// sys calls the operator API without a body and decodes its answer into out.
func (f *clientFlags) sys(cmd *cobra.Command, method, path string, out any) error {
	c, err := f.client()
	if err != nil {
		return err
	}
	return c.call(cmd.Context(), method, path, nil, out)
}

func newOperatorCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "operator",
		Short: "Seal lifecycle of a Coffer server: init, unseal, seal, rotate, status, verify-store, confirm-clock",
	}
	f.register(cmd)

	var shares, threshold int
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Initialise a new server: create the root key and print the unseal shares (once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			var res struct {
				Shares    []string `json:"shares"`
				RootToken string   `json:"rootToken"`
			}
			if err := c.call(cmd.Context(), "POST", "/v1/sys/init", map[string]int{"shares": shares, "threshold": threshold}, &res); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			var st sealStatus
			if err := c.call(cmd.Context(), "GET", "/v1/sys/seal-status", nil, &st); err != nil {
				return err
			}
			kind := "Unseal"
			if st.Type != "" && st.Type != "shamir" {
				kind = "Recovery"
			}
			for i, s := range res.Shares {
				fmt.Fprintf(w, "%s share %d: %s\n", kind, i+1, s)
			}
			fmt.Fprintf(w, "\nOperator token: %s\n\n", res.RootToken)
			fmt.Fprintf(w, "These shares and this token are shown once and stored nowhere. Give each share to a\n"+
				"different person; any %d of the %d shares unseal Coffer (`coffer operator unseal`).\n", threshold, shares)
			if kind == "Recovery" {
				fmt.Fprintf(w, "Coffer unseals itself with its %s seal; the recovery shares are for when that seal's key is lost.\n", st.Type)
			}
			return nil
		},
	}
	initCmd.Flags().IntVar(&shares, "shares", 5, "number of unseal shares to create")
	initCmd.Flags().IntVar(&threshold, "threshold", 3, "number of shares needed to unseal")

	unsealCmd := &cobra.Command{
		Use:   "unseal [share]",
		Short: "Enter one unseal share (read from standard input if not given)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			share := ""
			if len(args) == 1 {
				share = args[0]
			} else {
				fmt.Fprint(cmd.ErrOrStderr(), "Unseal share: ")
				line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if err != nil && !errors.Is(err, io.EOF) {
					return err
				}
				share = strings.TrimSpace(line)
			}
			var st sealStatus
			if err := c.call(cmd.Context(), "POST", "/v1/sys/unseal", map[string]string{"share": share}, &st); err != nil {
				return err
			}
			printStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	statusCmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether the server is initialised and sealed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st sealStatus
			if err := f.sys(cmd, "GET", "/v1/sys/seal-status", &st); err != nil {
				return err
			}
			printStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	sealCmd := &cobra.Command{
		Use:   "seal",
		Short: "Seal the server: it forgets its keys and serves no data until unsealed (needs the operator token)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st sealStatus
			if err := f.sys(cmd, "POST", "/v1/sys/seal", &st); err != nil {
				return err
			}
			printStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	rotateCmd := &cobra.Command{
		Use:   "rotate",
		Short: "Add a keyring term: new records are sealed with it, older ones stay readable (needs the operator token)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var res struct {
				Term uint32 `json:"term"`
			}
			if err := f.sys(cmd, "POST", "/v1/sys/rotate", &res); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Keyring rotated: new records are sealed with term %d\n", res.Term)
			return nil
		},
	}
	verifyCmd := &cobra.Command{
		Use:   "verify-store",
		Short: "Check every stored record and the store hash: finds records modified, moved, deleted, added or rolled back to an older version (needs the operator token; writes go on during the scan)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var res struct {
				Generation uint64 `json:"generation"`
				Intact     bool   `json:"intact"`
				Problem    string `json:"problem"`
			}
			if err := f.sys(cmd, "POST", "/v1/sys/verify-store", &res); err != nil {
				return err
			}
			if !res.Intact {
				return fmt.Errorf("the store is damaged: %s", res.Problem)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Store intact at generation %d: every record opens and the store hash matches\n", res.Generation)
			return nil
		},
	}
	cmd.AddCommand(initCmd, unsealCmd, statusCmd, sealCmd, rotateCmd, verifyCmd, confirmClockCmd(&f))
	return cmd
}

// purgeClock is the answer of GET /v1/sys/purge-clock and its confirmation.
type purgeClock struct {
	Held         bool  `json:"held"`
	Trusted      int64 `json:"trusted"`
	Now          int64 `json:"now"`
	HeldAt       int64 `json:"heldAt"`
	LimitSeconds int64 `json:"limitSeconds"`
}

// confirmClockCmd is `coffer operator confirm-clock`: it shows the purge clock and, once the
// operator has checked the server's clock (--yes), accepts it and releases held purges.
func confirmClockCmd(f *clientFlags) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "confirm-clock",
		Short: "After checking the server's clock, release the purges held because it jumped forward (needs the operator token)",
		Long: "Purges of soft-deleted objects are held when the server's clock moves forward more than " +
			"--purge-clock-jump-limit (docs/SECURITY.md). Without --yes this shows the server's clock and the hold; " +
			"check the clock against a trusted source, then run it again with --yes: the clock's reading becomes " +
			"the trusted time and everything due by it is purged at the next scheduler round.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st purgeClock
			method, path := "GET", "/v1/sys/purge-clock"
			if yes {
				method, path = "POST", "/v1/sys/purge-clock/confirm"
			}
			if err := f.sys(cmd, method, path, &st); err != nil {
				return err
			}
			at := func(u int64) string { return time.Unix(u, 0).UTC().Format(time.RFC3339) }
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Server clock:  %s\nTrusted time:  %s\n", at(st.Now), at(st.Trusted))
			switch {
			case yes:
				fmt.Fprintln(out, "Clock confirmed: held purges resume at the next scheduler round")
			case st.Held:
				fmt.Fprintf(out, "Purges held since the clock read %s (more than %s ahead of the trusted time).\n"+
					"Check the server's clock, then run `coffer operator confirm-clock --yes`.\n", at(st.HeldAt), time.Duration(st.LimitSeconds)*time.Second)
			default:
				fmt.Fprintln(out, "Purges are not held")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "accept the server's clock and release held purges")
	return cmd
}
