// Package server is Coffer's composition root: it reads a validated config, opens storage,
// wires the barrier and its seal manager, serves HTTPS (TLS 1.2+, AEAD suites only, HTTP/2,
// hot certificate reload, optional mTLS) and shuts down gracefully. It is the only package
// that chooses concrete implementations (bbolt storage, the TLS reloader).
//
// Threat model: the network is hostile. There is no plain-HTTP listener; a plain request to
// the TLS port gets Go's fixed 400 answer before any handler runs. Header and body sizes and
// read/write times and the number of open connections are bounded (docs/SECURITY.md, "Slow
// clients, HTTP/2 floods and resource leaks").
package server

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/netutil"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/barrier"
	"github.com/coffer-kms/coffer/internal/config"
	"github.com/coffer-kms/coffer/internal/cpushare"
	"github.com/coffer-kms/coffer/internal/identity/token"
	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/provider/pkcs11"
	"github.com/coffer-kms/coffer/internal/provider/soft"
	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/secdomain"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/storage/bolt"
	"github.com/coffer-kms/coffer/internal/tenancy"
	"github.com/coffer-kms/coffer/internal/tlsutil"
)

// DBFile is the bbolt database file inside the data directory.
const DBFile = "coffer.db"

// readCacheBytes bounds the opened records the barrier keeps in memory for reads.
const readCacheBytes = 32 << 20

// Server is one running Coffer server.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	out      io.Writer // where the dev banner goes
	now      func() time.Time
	barrier  *barrier.Barrier
	manager  *barrier.Manager
	metrics  *metrics
	tenants  *tenancy.Store
	provider provider.Provider
	hsm      *pkcs11.Provider // nil without a configured token
	sd       *secdomain.Service
	hsmb     *api.HSMBackup // managed HSM full backup and restore (hsmbackup.go)
	idh      identityHolder
	// sealedRefused counts data-plane requests refused while sealed (sealedaudit.go).
	sealedRefused sealedRefusals
	// cpu shares software RSA work among tenants (keys.Service.ShareCPU).
	cpu *cpushare.Scheduler
	// creates is the per-vault key creation bucket (keys.Service.LimitCreates); it lives
	// with the server, so a seal and unseal (which rebuild the keys service) do not empty it.
	creates *api.CreateLimiter
	// decryptAlarm raises the decryption failure alarm (decryptalarm.go).
	decryptAlarm *decryptAlarm
	mgmt         mgmtHolder   // the management API (mgmt.go), built on first use
	attestH      attestHolder // the attestation verifiers (attest.go), built on first use
	data         *api.DataPlane
	// devVault is dev mode's default vault, also served on the bare host.
	devVault *tenancy.Vault
	// challengeSecret keys the stand-in tenant ids of 401 challenges for unknown stores.
	challengeSecret []byte

	reloader *tlsutil.Reloader
	http     *http.Server
	ln       net.Listener
	// conns counts the connections open now (countConn), at most cfg.MaxConnections.
	conns atomic.Int64
	// perAddr caps the connections of each source address (connlimit.go); nil without
	// max-connections-per-address.
	perAddr *addrLimitListener
	res     resources // names derived from the listener's port (identity.go)
	stop    context.CancelFunc
	served  chan error
	closing sync.Once
	// Dev holds the development files and credentials when cfg.Dev is set.
	Dev *DevInfo
	// ExternalHTTPClient, if set, fetches external issuers' OpenID metadata (tests).
	ExternalHTTPClient *http.Client
	remoteMu           sync.Mutex
	remote             map[string]*token.RemoteKeySet
	// sealErr is why auto-unseal failed at start (seal.go), shown in the seal status.
	sealErr error
	// poolTokens are the pools' own tokens by label (pkcs11-pool-tokens, pooltokens.go).
	poolTokens map[string]*pkcs11.Provider
	// purgeClock holds purges when the clock jumps forward (purgeclock.go).
	purgeClock *records.PurgeClock
	// warmKeep, if set, replaces warmIdle: how long idle warm goroutines stay (tests).
	warmKeep time.Duration
	// wrapStore, if set, wraps the database before the barrier and the seal manager use it
	// (tests observe what is read).
	wrapStore func(storage.Backend) storage.Backend
}

// New prepares a server from a validated configuration; Start opens storage and listens.
// Logs go to logw; the dev banner goes to out.
func New(cfg *config.Config, out, logw io.Writer) *Server {
	return &Server{
		cfg: cfg,
		log: newLogger(logw, cfg.LogFormat, cfg.LogLevel),
		out: out,
		now: time.Now,
	}
}

// Start opens the data directory and database, bootstraps dev mode, loads the TLS
// certificate and starts serving. It returns once the listener accepts connections.
func (s *Server) Start(ctx context.Context) (err error) {
	if err := s.cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("setting \"data-dir\": create %s: %w", s.cfg.DataDir, err)
	}
	certFile, keyFile := s.cfg.TLSCertFile, s.cfg.TLSKeyFile
	if s.cfg.Dev && certFile == "" {
		files, err := tlsutil.EnsureDevCA(filepath.Join(s.cfg.DataDir, "tls"), devHosts(s.cfg.DNSSuffix), s.now())
		if err != nil {
			return fmt.Errorf("dev mode: development CA: %w", err)
		}
		certFile, keyFile = files.Cert, files.Key
		s.Dev = &DevInfo{CAFile: files.CACert}
	}
	s.reloader, err = tlsutil.NewReloader(certFile, keyFile, s.log, s.now)
	if err != nil {
		return fmt.Errorf("TLS: %w", err)
	}
	tlsCfg, err := tlsutil.ServerConfig(tlsutil.ServerOptions{Reloader: s.reloader, ClientCAFile: s.cfg.TLSClientCAFile})
	if err != nil {
		return fmt.Errorf("TLS: %w", err)
	}

	dbPath := filepath.Join(s.cfg.DataDir, DBFile)
	if err := s.checkStoreLost(ctx, dbPath, false); err != nil {
		return err
	}
	bdb, err := bolt.Open(dbPath, bolt.Options{})
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	var db storage.Backend = bdb
	if s.wrapStore != nil {
		db = s.wrapStore(db)
	}
	s.barrier = barrier.New(db)
	// This process is the only writer of its bbolt file, so opened records can be served
	// from memory until they are written (barrier.readCache).
	s.barrier.EnableReadCache(readCacheBytes)
	defer func() {
		if err != nil {
			s.barrier.Close()
			s.closeHSM()
		}
	}()
	s.metrics = newMetrics(s.barrier.Sealed)
	s.decryptAlarm = s.newDecryptAlarm(s.cfg.DecryptFailureAlarm)
	s.cpu = cpushare.New(cmp.Or(s.cfg.CryptoSlots, runtime.GOMAXPROCS(0)))
	// Real time, as the tenant limiter's: a limit of work per second, not a date.
	s.creates = api.NewCreateLimiter(s.cfg.KeyCreateLimit, s.cfg.KeyCreateLimitHSM, nil)
	s.metrics.shareGauges(s.cpu)
	s.tenants = tenancy.New(s.barrier, s.now)
	s.purgeClock = s.newPurgeClock()
	s.sd = secdomain.New(s.barrier, s.now)
	s.sd.OnActivate(s.installPoolWrapKey)
	s.hsmb = s.newHSMBackup()
	// The attestation settings are files: a bad one stops the start, naming the setting,
	// rather than failing the first attestation request.
	if _, err = s.attestService(); err != nil {
		return err
	}
	var hsmErr error
	if s.hsm, hsmErr = s.openHSM(); hsmErr != nil && s.cfg.Seal != "pkcs11" {
		return hsmErr
	}
	if s.hsm != nil {
		if err = s.openPoolTokens(); err != nil {
			return err
		}
		s.log.Info("HSM keys live in the PKCS#11 token", "token", s.cfg.PKCS11Token)
	}
	s.manager = barrier.NewManager(db, s.barrier, s.sealWrapper(hsmErr), s.now)
	s.manager.SetStoreChecks(s.storeChecks())
	if err = s.checkStoreLost(ctx, dbPath, true); err != nil {
		return err
	}
	s.provider = s.hsmProvider(soft.New())
	s.idh.tokens = newTokenCache(100000)
	s.challengeSecret = make([]byte, 32)
	if _, err := rand.Read(s.challengeSecret); err != nil {
		return err
	}
	if s.cfg.Dev {
		if err := s.devBootstrap(ctx); err != nil {
			return fmt.Errorf("dev mode: %w", err)
		}
	} else if st, err := s.manager.Status(ctx); err != nil {
		return fmt.Errorf("storage %s: %w", dbPath, err)
	} else if !st.Initialized {
		s.log.Warn("coffer is not initialized: run `coffer operator init`")
	} else if s.cfg.Seal == "pkcs11" {
		s.startAutoUnseal(ctx)
	} else {
		s.log.Warn("coffer is sealed: run `coffer operator unseal` with the unseal shares")
	}

	if _, err := s.attestService(); err != nil { // reads (dev: makes) the simulator keys
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("setting \"listen\": %w", err)
	}
	s.ln = ln
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	s.res = newResources(s.cfg.DNSSuffix, port)
	if s.cfg.Dev {
		if err := s.devIdentity(ctx); err != nil {
			ln.Close()
			return fmt.Errorf("dev mode: %w", err)
		}
	}
	s.metrics.connGauge(func() float64 { return float64(s.conns.Load()) }, s.cfg.MaxConnections)
	s.http = &http.Server{
		Handler:           s.handler(),
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ConnState:         s.countConn,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	watchCtx, stop := context.WithCancel(context.Background())
	s.stop = stop
	go s.reloader.Watch(watchCtx, s.cfg.TLSReloadEvery)
	go s.runScheduler(watchCtx, s.cfg.SchedulerEvery)
	s.served = make(chan error, 1)
	// The cap holds Accept, not the connection: past it clients wait in the accept queue.
	// The per-address cap is inside it, so that the connections it closes take no slot.
	capped := netutil.LimitListener(s.limitPerAddress(ln), s.cfg.MaxConnections)
	go func() { s.served <- s.http.ServeTLS(capped, "", "") }()
	s.log.Info("coffer listening", "url", s.URL(), "dev", s.cfg.Dev)
	if s.Dev != nil {
		s.printDevBanner()
	}
	return nil
}

// countConn keeps s.conns: net/http reports every accepted connection once as new and once
// as closed (or hijacked), HTTP/2 connections included.
func (s *Server) countConn(_ net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		s.conns.Add(1)
	case http.StateClosed, http.StateHijacked:
		s.conns.Add(-1)
	}
}

// URL is the base URL clients use; with a listener on 0.0.0.0 or 127.0.0.1 it names localhost
// so that the certificate's name matches.
func (s *Server) URL() string {
	_, port, _ := net.SplitHostPort(s.ln.Addr().String())
	host, _, _ := net.SplitHostPort(s.cfg.Listen)
	switch host {
	case "", "0.0.0.0", "127.0.0.1", "::", "::1", "localhost":
		host = "localhost"
	}
	return "https://" + net.JoinHostPort(host, port)
}

// Addr is the listener's address (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// ReloadTLS re-reads the certificate and key files (SIGHUP).
func (s *Server) ReloadTLS() error { return s.reloader.Reload() }

// Shutdown stops accepting connections, lets in-flight requests finish until ctx is done,
// then closes the database.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.closing.Do(func() {
		s.log.Info("shutting down: draining in-flight requests")
		s.stop()
		err = s.http.Shutdown(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			s.log.Warn("shutdown timeout: closing remaining connections")
			s.http.Close()
		}
		s.dropIdentity()
		s.anchorGeneration(ctx)
		s.closeHSM()
		if cerr := s.barrier.Close(); cerr != nil && !errors.Is(cerr, storage.ErrClosed) {
			err = errors.Join(err, fmt.Errorf("close storage: %w", cerr))
		}
		if serr := <-s.served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		s.log.Info("coffer stopped")
	})
	return err
}

// Run starts the server and serves until ctx is done, reloading TLS on reload signals, then
// shuts down within the configured timeout.
func (s *Server) Run(ctx context.Context, reload <-chan os.Signal) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	for {
		select {
		case <-reload:
			if err := s.ReloadTLS(); err != nil {
				s.log.Error("TLS reload failed; keeping the current certificate", "err", err)
			} else {
				s.log.Info("TLS certificate reloaded")
			}
		case err := <-s.served:
			s.served <- err
			s.log.Error("server stopped unexpectedly", "err", err)
			sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
			defer cancel()
			return errors.Join(err, s.Shutdown(sctx))
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
			defer cancel()
			return s.Shutdown(sctx)
		}
	}
}
