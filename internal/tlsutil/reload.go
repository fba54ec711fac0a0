package tlsutil

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// defaultWatchInterval is used by Watch when given a non-positive interval.
const defaultWatchInterval = 5 * time.Second

// Reloader serves a certificate and key pair read from two PEM files and swaps in a new pair
// when the files change, without dropping connections: a handshake uses whatever pair is
// current when it starts, and established connections are never touched.
//
// A pair that cannot serve (unreadable, unparsable, key not matching the certificate,
// expired or not yet valid, weak key, not for serverAuth) is refused: NewReloader fails, and
// Reload and Watch keep the previous pair. The zero Reloader is not usable; call NewReloader.
// All methods are safe for concurrent use.
type Reloader struct {
	certFile, keyFile string
	logger            *slog.Logger
	now               func() time.Time

	cur atomic.Pointer[tls.Certificate]

	mu   sync.Mutex // serialises loads; guards seen
	seen pairState  // the files as they were at the last load attempt
}

// pairState is the state of both files at one load attempt.
type pairState struct{ cert, key fileState }

// NewReloader loads the certificate chain in certFile and the private key in keyFile and
// returns a Reloader serving them. It fails, with an error naming the file at fault, if either
// file is missing or unparsable, if the key does not match the certificate, or if the
// certificate is expired or not yet valid at now(). A nil logger discards logs; a nil now
// means time.Now.
func NewReloader(certFile, keyFile string, logger *slog.Logger, now func() time.Time) (*Reloader, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, logger: logger, now: now}
	r.mu.Lock()
	defer r.mu.Unlock()
	cert, err := r.loadLocked()
	if err != nil {
		return nil, err
	}
	r.cur.Store(cert)
	r.logger.Info("tls certificate loaded", certAttrs(cert.Leaf, r.certFile)...)
	return r, nil
}

// GetCertificate returns the current pair. It has the signature of tls.Config.GetCertificate
// and never fails.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// Leaf returns the current leaf certificate, for status pages and logs. Callers must not
// modify it.
func (r *Reloader) Leaf() *x509.Certificate {
	return r.cur.Load().Leaf
}

// Reload re-reads both files and, if they hold a pair that can serve, makes it current. If
// not, it logs why, keeps the current pair and returns the error (naming the file at fault).
// The server calls Reload on SIGHUP; this package installs no signal handlers.
func (r *Reloader) Reload() error {
	_, err := r.reload(false)
	return err
}

// Watch polls both files every interval (a non-positive interval means 5 s) and reloads
// when either changes (modification time, size or content hash), until ctx is done. A
// refused pair is logged and the current one kept; it is tried again when either file
// changes once more, or on Reload. Run it in its own goroutine.
func (r *Reloader) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = defaultWatchInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = r.reload(true) // failures are logged by reload
		}
	}
}

// reload loads the files and swaps the pair in if it can serve. With onlyIfChanged, it
// does nothing when the files are as they were at the last attempt.
func (r *Reloader) reload(onlyIfChanged bool) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	certPEM, keyPEM, st, err := r.read()
	if onlyIfChanged && st == r.seen {
		return false, nil
	}
	r.seen = st
	var cert *tls.Certificate
	if err == nil {
		cert, err = r.parse(certPEM, keyPEM)
	}
	if err != nil {
		old := r.cur.Load()
		r.logger.Error("tls certificate reload refused; keeping the current certificate",
			append([]any{"err", err.Error()}, certAttrs(old.Leaf, r.certFile)...)...)
		return false, err
	}
	r.cur.Store(cert)
	r.logger.Info("tls certificate reloaded", certAttrs(cert.Leaf, r.certFile)...)
	return true, nil
}

// loadLocked reads both files, records their state in r.seen and returns the pair if it
// can serve now. r.mu must be held.
func (r *Reloader) loadLocked() (*tls.Certificate, error) {
	certPEM, keyPEM, st, err := r.read()
	r.seen = st
	if err != nil {
		return nil, err
	}
	return r.parse(certPEM, keyPEM)
}

// read reads both files and reports their state; the error names the file at fault.
func (r *Reloader) read() (certPEM, keyPEM []byte, st pairState, err error) {
	var certErr, keyErr error
	certPEM, st.cert, certErr = readFile(r.certFile)
	keyPEM, st.key, keyErr = readFile(r.keyFile)
	switch {
	case certErr != nil:
		err = fmt.Errorf("tlsutil: certificate file: %w", certErr)
	case keyErr != nil:
		err = fmt.Errorf("tlsutil: key file: %w", keyErr)
	}
	return certPEM, keyPEM, st, err
}

// parse checks that the PEM bytes hold a pair that can serve at r.now().
func (r *Reloader) parse(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	p, err := parsePair(r.certFile, certPEM, r.keyFile, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: %w", err)
	}
	if err := checkServing(r.certFile, p, r.now()); err != nil {
		return nil, fmt.Errorf("tlsutil: %w", err)
	}
	return p.tlsCertificate(), nil
}

// certAttrs describes a certificate for logs: never anything secret.
func certAttrs(c *x509.Certificate, file string) []any {
	return []any{
		"file", file,
		"serial", c.SerialNumber.Text(16),
		"subject", c.Subject.String(),
		"dns_names", c.DNSNames,
		"not_after", c.NotAfter.UTC().Format(time.RFC3339),
		"sha256", fingerprint(c),
	}
}
