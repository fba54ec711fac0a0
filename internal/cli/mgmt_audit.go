package cli

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-kms/coffer/internal/audit"
)

func newAuditCmd() *cobra.Command {
	var f mgmtFlags
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Query a tenant's audit records, export the checkpoint key, verify an audit log file",
	}
	f.register(cmd)

	var since, until, operation string
	var limit int
	query := &cobra.Command{
		Use:   "query",
		Short: "Print the tenant's audit records, one JSON record per line (needs Coffer/audit/read)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := f.target()
			if err != nil {
				return err
			}
			q := url.Values{}
			for name, v := range map[string]string{"since": since, "until": until} {
				if v == "" {
					continue
				}
				ts, err := parseWhen(v, time.Now())
				if err != nil {
					return fmt.Errorf("--%s: %w", name, err)
				}
				q.Set(name, ts.UTC().Format(time.RFC3339Nano))
			}
			if operation != "" {
				q.Set("operation", operation)
			}
			if limit != 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			c, err := f.connect(cmd.Context(), preferClient, t)
			if err != nil {
				return err
			}
			path := tenantPath(t) + "/audit"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			var out struct {
				Value []json.RawMessage `json:"value"`
			}
			if err := c.do(cmd.Context(), "GET", path, nil, &out); err != nil {
				return err
			}
			for _, rec := range out.Value {
				fmt.Fprintln(cmd.OutOrStdout(), string(rec))
			}
			return nil
		},
	}
	query.Flags().StringVar(&since, "since", "", "records at or after this time: RFC 3339, or a duration ago (e.g. 24h)")
	query.Flags().StringVar(&until, "until", "", "records before this time: RFC 3339, or a duration ago")
	query.Flags().StringVar(&operation, "operation", "", "records of this operation only (e.g. VaultCreate, RoleAssignmentCreate, TokenIssue)")
	query.Flags().IntVar(&limit, "limit", 0, "at most this many records (1-1000; default 1000): page with --since")

	publicKey := &cobra.Command{
		Use:   "public-key",
		Short: "Print the audit checkpoint public key as PEM (operator token): coffer audit public-key > key.pem",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.connect(cmd.Context(), preferOperator, "")
			if err != nil {
				return err
			}
			var out struct {
				PublicKey string     `json:"publicKey"`
				Head      audit.Head `json:"head"`
			}
			if err := c.do(cmd.Context(), "GET", "/v1/audit/public-key", nil, &out); err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), out.PublicKey)
			fmt.Fprintf(cmd.ErrOrStderr(), "Log %s is at seq %d. To detect truncation later: coffer audit verify FILE --public-key-file key.pem --expect-head %d:%s\n",
				out.Head.LogID, out.Head.Seq, out.Head.Seq, out.Head.Hash)
			return nil
		},
	}

	var keyFile, expectHead, continueFrom string
	verify := &cobra.Command{
		Use:   "verify FILE... --public-key-file F [--expect-head SEQ:HASH] [--continue SEQ:HASH]",
		Short: "Verify audit log files offline: hash chain, checkpoint signatures, truncation",
		Long: `Verify an audit log offline (no server needed): every record's hash and chain link,
and every checkpoint's signature under the public key (coffer audit public-key). With
--expect-head SEQ:HASH, a head noted earlier, the log must reach that record unchanged.

A rotated log is several files (audit.log.000001, audit.log.000002, …, then audit.log):
name them all, in any order (coffer audit verify DIR/audit.log*), and they are verified as
one chain, in the order of their first records. If the oldest files were removed, give
--continue SEQ:HASH, the head of the last removed file (printed when it was verified).

Exits non-zero naming the file and first bad record if a file was edited, reordered, cut,
removed or forged. Records after the last checkpoint are reported as unsigned: compare them
with an exported head.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyFile == "" {
				return errors.New("give --public-key-file (the PEM from `coffer audit public-key`)")
			}
			pub, err := readPublicKey(keyFile)
			if err != nil {
				return err
			}
			var opts audit.VerifyOptions
			if expectHead != "" {
				n, hash, err := parseHead("--expect-head", expectHead)
				if err != nil {
					return err
				}
				opts.ExpectHead = &audit.Checkpoint{Seq: n, HeadHash: hash}
			}
			if continueFrom != "" {
				n, hash, err := parseHead("--continue", continueFrom)
				if err != nil {
					return err
				}
				opts.Continue = &audit.Head{Seq: n, Hash: hash}
			}
			files, err := audit.OrderFiles(args)
			if err != nil {
				return err
			}
			name := strings.Join(files, ", ")
			rep, err := audit.VerifyFiles(files, pub, opts)
			var verr *audit.VerifyError
			if errors.As(err, &verr) {
				return fmt.Errorf("%s: verification FAILED at seq %d (line %d): %s: %s; the %d records before it verify", verr.File, verr.Seq, verr.Line, verr.Kind, verr.Msg, rep.Records)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			first := uint64(1)
			if opts.Continue != nil {
				first = opts.Continue.Seq + 1
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s: OK\n  log %s: %d records (%d checkpoints), seq %d-%d\n  head: %d:%s\n", name, rep.LogID, rep.Records, rep.Checkpoints, first, rep.LastSeq, rep.LastSeq, rep.HeadHash)
			if rep.UnsignedTail > 0 {
				fmt.Fprintf(w, "  %d records after the last checkpoint (seq %d) are not signed yet\n", rep.UnsignedTail, rep.LastCheckpointSeq)
			}
			if rep.TornBytes > 0 {
				fmt.Fprintf(w, "  a torn final line of %d bytes (a crash mid-write) was ignored\n", rep.TornBytes)
			}
			return nil
		},
	}
	verify.Flags().StringVar(&keyFile, "public-key-file", "", "PEM public key that signs the checkpoints")
	verify.Flags().StringVar(&expectHead, "expect-head", "", "SEQ:HASH of a record noted earlier (coffer audit public-key prints the current one)")
	verify.Flags().StringVar(&continueFrom, "continue", "", "SEQ:HASH of the last record before the first file given, when older rotated files were removed")

	cmd.AddCommand(query, publicKey, verify)
	return cmd
}

// parseHead reads a flag's SEQ:HASH.
func parseHead(flag, v string) (uint64, string, error) {
	seq, hash, ok := strings.Cut(v, ":")
	n, err := strconv.ParseUint(seq, 10, 64)
	if !ok || err != nil || n == 0 || len(hash) != 64 {
		return 0, "", fmt.Errorf("%s %q: want SEQ:HASH, e.g. 42:%s", flag, v, strings.Repeat("ab", 32))
	}
	return n, strings.ToLower(hash), nil
}

// readPublicKey reads a PEM "PUBLIC KEY" (PKIX) file.
func readPublicKey(path string) (any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%s: no PEM PUBLIC KEY block (get one with `coffer audit public-key`)", path)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pub, nil
}

// parseWhen reads an RFC 3339 time or a duration before now.
func parseWhen(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration such as 24h", v)
}
