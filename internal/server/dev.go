package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/coffer-kms/coffer/internal/barrier"
	"github.com/coffer-kms/coffer/internal/tlsutil"
)

// Dev-mode files in the data directory. They hold the only unseal share and the operator
// token in the clear, which is why dev mode is not for production.
const (
	devShareFile = "dev-unseal-share.UNSAFE"
	devTokenFile = "dev-operator-token.UNSAFE"
)

// DevInfo is what dev mode tells its user.
type DevInfo struct {
	CAFile          string
	TokenFile       string
	Token           string
	Credentials     DevCredentials
	CredentialsFile string
}

// devHosts are the names of the dev certificate: localhost and the loopback addresses, every
// vault host (*.<suffix>), every managed HSM pool host (*.managedhsm.<suffix>), and the dev
// vault's host by name. OpenSSL-based clients (curl, Python's ssl, the Azure CLI) match a
// wildcard only with at least two labels after it, so "*.localhost" covers dev.localhost for
// Go clients alone; other vaults under a one-label suffix need a two-label --dns-suffix there.
func devHosts(suffix string) []string {
	hosts := append(tlsutil.DefaultDevHosts(), "*.managedhsm.localhost", "*.attest.localhost")
	if suffix != "localhost" {
		hosts = append(hosts, suffix, "*."+suffix, "*.managedhsm."+suffix, "*.attest."+suffix)
	}
	return append(hosts, devVaultName+"."+suffix)
}

// devBootstrap initialises the store with one share on first start, keeps the share and the
// operator token in the data directory, and unseals.
func (s *Server) devBootstrap(ctx context.Context) error {
	sharePath := filepath.Join(s.cfg.DataDir, devShareFile)
	tokenPath := filepath.Join(s.cfg.DataDir, devTokenFile)
	st, err := s.manager.Status(ctx)
	if err != nil {
		return err
	}
	if !st.Initialized {
		res, err := s.manager.Init(ctx, barrier.InitOptions{Shares: 1, Threshold: 1})
		if err != nil {
			return err
		}
		if err := writeFileSync(sharePath, []byte(res.Shares[0]+"\n")); err != nil {
			return err
		}
		if err := writeFileSync(tokenPath, []byte(res.RootToken+"\n")); err != nil {
			return err
		}
		s.log.Warn("dev mode: initialized a new store with a single unseal share kept in the data directory", "share_file", sharePath)
	}
	if s.cfg.Seal == "pkcs11" {
		// The PKCS#11 seal unseals: the kept share is a recovery share and is not used.
		if err := s.manager.AutoUnseal(ctx); err != nil {
			return fmt.Errorf("auto-unseal (setting \"seal\" pkcs11): %w", err)
		}
		return s.devToken(tokenPath)
	}
	share, err := os.ReadFile(sharePath)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s is initialized but %s is missing: it is not a dev data directory; use another --data-dir", s.cfg.DataDir, sharePath)
	}
	if err != nil {
		return err
	}
	if _, err := s.manager.Unseal(ctx, strings.TrimSpace(string(share))); err != nil {
		return fmt.Errorf("unseal with %s: %w", sharePath, err)
	}
	if s.barrier.Sealed() {
		return fmt.Errorf("unseal with %s: still sealed (was this data directory initialised with more than one share?)", sharePath)
	}
	return s.devToken(tokenPath)
}

// devToken reads the operator token kept in the dev data directory.
func (s *Server) devToken(tokenPath string) error {
	token, err := os.ReadFile(tokenPath)
	if err != nil {
		return fmt.Errorf("read %s: %w", tokenPath, err)
	}
	s.Dev.TokenFile = tokenPath
	s.Dev.Token = strings.TrimSpace(string(token))
	return nil
}

// writeFileSync writes a 0600 file and syncs it, so the only share survives a crash.
func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (s *Server) printDevBanner() {
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	fmt.Fprintf(s.out, `
==> Coffer is running in DEVELOPMENT MODE. DO NOT USE IT IN PRODUCTION.
    The only unseal share and the operator token are stored unencrypted in %s.

    URL:            %s
    CA certificate: %s   (trust it, e.g. curl --cacert)
    Operator token file: %s

    export COFFER_ADDR=%s
    export COFFER_CACERT=%s
    export COFFER_TOKEN=$(cat %s)

    Azure SDK clients (azidentity.ClientSecretCredential, instance discovery disabled):
    Tenant id:      %s
    Client id:      %s
    Client secret:  %s
    Authority host: %s
    Vault URL:      %s
    Managed HSM:    %s
    All of it, as JSON: %s

`, abs(s.cfg.DataDir), s.URL(), abs(s.Dev.CAFile), abs(s.Dev.TokenFile), s.URL(), abs(s.Dev.CAFile), abs(s.Dev.TokenFile),
		s.Dev.Credentials.TenantID, s.Dev.Credentials.ClientID, s.Dev.Credentials.ClientSecret, s.Dev.Credentials.AuthorityHost,
		s.Dev.Credentials.VaultURL, s.Dev.Credentials.ManagedHSMURL, abs(s.Dev.CredentialsFile))
}
