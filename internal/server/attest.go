package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/attest"
	"github.com/coffer-kms/coffer/internal/audit"
	"github.com/coffer-kms/coffer/internal/identity/token"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// The attestation service (internal/attest, docs/ATTESTATION.md) is served on provider hosts
// https://<provider>.attest.<dns-suffix>[:port], like MAA's <instance>.attest.azure.net:
//
//	POST /attest/{type}                    evidence → {"token": JWT}
//	GET  /.well-known/openid-configuration discovery (issuer = the provider's base URL)
//	GET  /certs                            JWKS of the token signing keys
//
// Tokens are signed by one ES256 key set shared by all providers, kept sealed by the barrier
// at attestSigningKeyPath and rotated with the identity provider's key (scheduler.go); each
// provider is its own issuer, so a release policy names exactly one provider.

const (
	attestSigningKeyPath = "attest/signing-keys"
	attestTokenLifetime  = time.Hour
)

// attestHost returns the provider name if host is a provider host.
func attestHost(host, suffix string) (string, bool) {
	h := strings.ToLower(strings.TrimSuffix(hostOnlyOf(host), "."))
	name, ok := strings.CutSuffix(h, ".attest."+suffix)
	return name, ok && name != "" && !strings.Contains(name, ".")
}

func hostOnlyOf(hostport string) string {
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.Contains(hostport[i:], "]") {
		return hostport[:i]
	}
	return hostport
}

// attestURL is the base URL (and token issuer) of the provider called name.
func (s *Server) attestURL(name string) string {
	return hostURL(name+".attest."+s.cfg.DNSSuffix, s.resources().port)
}

// attestHolder builds the attestation verifiers once.
type attestHolder struct {
	once sync.Once
	svc  *attest.Service
	err  error
	// now is the clock evidence is checked at; nil means the server's (tests set it before
	// Start to verify recorded evidence whose collateral has since expired).
	now func() time.Time
}

func (s *Server) attestService() (*attest.Service, error) {
	s.attestH.once.Do(func() {
		now := s.now
		if s.attestH.now != nil {
			now = s.attestH.now
		}
		svc := &attest.Service{SNP: &attest.SNPVerifier{}, TDX: &attest.TDXVerifier{}, Now: now}
		if f := s.cfg.AttestTDXCollateralFile; f != "" {
			doc, err := os.ReadFile(f)
			if err == nil {
				svc.TDX.Collateral, err = attest.ParseTDXCollateral(doc)
			}
			if err != nil {
				s.attestH.err = fmt.Errorf("setting \"attest-tdx-collateral\": %w", err)
				return
			}
		}
		f := s.cfg.AttestSimKeyFile
		if f == "" && s.cfg.Dev {
			if f, s.attestH.err = ensureDevSimKey(s.cfg.DataDir); s.attestH.err != nil {
				return
			}
		}
		if f != "" {
			keys, err := loadSimKeys(f)
			if err != nil {
				s.attestH.err = fmt.Errorf("setting \"attest-sim-keys\": %w", err)
				return
			}
			svc.Sim = &attest.SimVerifier{Keys: keys}
		}
		s.attestH.svc = svc
	})
	return s.attestH.svc, s.attestH.err
}

// loadSimKeys reads the PEM public keys of the TEE simulator (P-256 only).
func loadSimKeys(path string) ([]*ecdsa.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var keys []*ecdsa.PublicKey
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			break
		}
		if blk.Type != "PUBLIC KEY" {
			continue
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		pub, ok := k.(*ecdsa.PublicKey)
		if err != nil || !ok || pub.Curve != elliptic.P256() {
			return nil, errors.New("a PUBLIC KEY block is not an ECDSA P-256 key")
		}
		keys = append(keys, pub)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s holds no PEM PUBLIC KEY", path)
	}
	return keys, nil
}

// attestHandler serves the provider-host endpoints, run through the shared wrapper (recover,
// metrics, sealed gate, body limit).
func (s *Server) attestHandler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range []route{
		{Pattern: "POST /attest/{type}", Handle: s.attestEvidence},
		{Pattern: "GET /.well-known/openid-configuration", Handle: s.attestDiscovery},
		{Pattern: "GET /certs", Handle: s.attestJWKS},
		{Pattern: "/", Handle: notFound},
	} {
		mux.Handle(rt.Pattern, s.wrap(route{Pattern: "attest " + rt.Pattern, Handle: rt.Handle}))
	}
	return mux
}

// attestProvider resolves the provider the request's host names.
func (s *Server) attestProvider(r *http.Request) (tenancy.AttestationProvider, error) {
	name, _ := attestHost(r.Host, s.cfg.DNSSuffix)
	p, err := s.tenants.AttestationProvider(r.Context(), name)
	if errors.Is(err, tenancy.ErrNotFound) {
		return p, api.Errorf(http.StatusNotFound, "AttestationProviderNotFound", "no attestation provider is served at this host")
	}
	return p, err
}

func (s *Server) attestDiscovery(w http.ResponseWriter, r *http.Request) error {
	p, err := s.attestProvider(r)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, attest.Discovery(s.attestURL(p.Name)))
	return nil
}

func (s *Server) attestJWKS(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.attestProvider(r); err != nil {
		return err
	}
	id, err := s.ident()
	if err != nil {
		return err
	}
	b, err := id.attestSigner.JWKS()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	return err
}

// attestEvidence verifies evidence and answers {"token": …}; every outcome is audited.
func (s *Server) attestEvidence(w http.ResponseWriter, r *http.Request) error {
	p, err := s.attestProvider(r)
	if err != nil {
		return err
	}
	id, err := s.ident()
	if err != nil {
		return err
	}
	typ := r.PathValue("type")
	ev := audit.Event{Operation: "Attest", Tenant: p.TenantID, ObjectID: "attestationProviders/" + p.Name + "/" + auditSafe(typ), ClientAddr: r.RemoteAddr}
	tok, err := s.attestOnce(r, p, typ)
	if err != nil {
		var ae *attest.Error
		if !errors.As(err, &ae) {
			return err
		}
		ev.Status, ev.Result, ev.Reason = http.StatusBadRequest, audit.ResultDenied, auditReason(ae.Code+": "+ae.Message)
		if aerr := id.record(ev); aerr != nil {
			return aerr
		}
		return &api.Error{Status: http.StatusBadRequest, Code: ae.Code, Message: ae.Message}
	}
	ev.Status, ev.Result = http.StatusOK, audit.ResultSuccess
	if err := id.record(ev); err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, attest.Response{Token: tok})
	return nil
}

func (s *Server) attestOnce(r *http.Request, p tenancy.AttestationProvider, typ string) (string, error) {
	svc, err := s.attestService()
	if err != nil {
		return "", err
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, attest.MaxBody+1))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return "", &attest.Error{Code: attest.CodeInvalidParameter, Message: fmt.Sprintf("the request body is larger than %d bytes", tooLarge.Limit)}
		}
		return "", &attest.Error{Code: attest.CodeInvalidParameter, Message: "the request body could not be read"}
	}
	if _, err := attest.NormalizeType(typ); err != nil {
		return "", err
	}
	ev, err := attest.DecodeRequest(body)
	if err != nil {
		return "", err
	}
	pol, err := attest.ParsePolicy(p.Policy)
	if err != nil {
		return "", fmt.Errorf("stored attestation policy of %s: %w", p.Name, err)
	}
	claims, err := svc.Claims(typ, pol, ev)
	if err != nil {
		return "", err
	}
	claims["iss"] = s.attestURL(p.Name)
	id, err := s.ident()
	if err != nil {
		return "", err
	}
	return id.attestSigner.SignClaims(claims)
}

// auditSafe bounds a path segment for the audit record.
func auditSafe(s string) string {
	if len(s) > 32 {
		s = s[:32]
	}
	return strings.ToValidUTF8(s, "?")
}

func auditReason(s string) string {
	if len(s) > audit.MaxReasonLen {
		s = s[:audit.MaxReasonLen-3] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

// rotateSigner rotates a token signing key set once its current key is token-key-max-age
// old, and prunes retired keys (called by the scheduler for the identity provider's and the
// attestation service's keys).
func (s *Server) rotateSigner(sig *token.Signer, what string) {
	if age := s.now().Sub(sig.CurrentCreated()); age >= s.cfg.TokenKeyMaxAge {
		if err := sig.Rotate(); err != nil {
			s.log.Error(what+" rotation failed", "err", err)
		} else {
			s.log.Info(what+" rotated", "previous_age", age.Round(time.Second))
		}
	}
	if err := sig.Prune(); err != nil {
		s.log.Error("pruning retired "+what+"s failed", "err", err)
	}
}

// DevSimKeyFile is the TEE simulator's private key that dev mode makes in the data directory
// (its public key, DevSimKeyFile + ".pub", is the registered simulator key).
const DevSimKeyFile = "attest-sim-key.UNSAFE.pem"

// ensureDevSimKey makes the dev TEE simulator key pair once and returns the public key file.
func ensureDevSimKey(dir string) (string, error) {
	priv, pub := filepath.Join(dir, DevSimKeyFile), filepath.Join(dir, DevSimKeyFile+".pub")
	if _, err := os.Stat(pub); err == nil {
		return pub, nil
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	p8, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", err
	}
	spki, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		return "", err
	}
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}), 0o644); err != nil {
		return "", err
	}
	return pub, nil
}
