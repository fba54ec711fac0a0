package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// ServerOptions configures ServerConfig.
type ServerOptions struct {
	// Reloader supplies the server certificate for every handshake. Required.
	Reloader *Reloader
	// ClientCAFile, if not empty, is a PEM bundle of CA certificates. Every client must then
	// present a certificate that chains to one of them and is valid for clientAuth (mTLS);
	// a handshake without one fails. The bundle is read once, by ServerConfig.
	ClientCAFile string
}

// tls12CipherSuites returns the only suites offered on TLS 1.2: ECDHE key exchange with an
// AEAD cipher (F1, N2). It returns a fresh slice each time.
func tls12CipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// ServerConfig returns the tls.Config for every Coffer listener: TLS 1.2 minimum (Go
// negotiates TLS 1.3 first when the client offers it), only ECDHE AEAD suites on TLS 1.2,
// no session tickets (so no resumption), ALPN h2 then http/1.1, the certificate from opts.Reloader, and client-certificate
// verification against opts.ClientCAFile when set. Errors name the CA file when it cannot
// be read or holds no certificate.
func ServerConfig(opts ServerOptions) (*tls.Config, error) {
	if opts.Reloader == nil {
		return nil, errors.New("tlsutil: ServerOptions.Reloader is required")
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   tls12CipherSuites(),
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: opts.Reloader.GetCertificate,
		// No session tickets: Go's live 7 days under ticket keys it rotates daily, and a
		// TLS 1.2 ticket carries the session's master secret, so one stolen ticket key would
		// decrypt a week of resumed sessions (testssl TLS_session_ticket, F4). Clients keep
		// their connections open, so full handshakes cost little.
		SessionTicketsDisabled: true,
	}
	if opts.ClientCAFile != "" {
		pool, err := loadCertPool(opts.ClientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// loadCertPool reads a PEM bundle of certificates. Unlike x509.CertPool.AppendCertsFromPEM
// it fails on a CERTIFICATE block that does not parse instead of skipping it, and on a file
// with no certificate at all.
func loadCertPool(file string) (*x509.CertPool, error) {
	data, _, err := readFile(file)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: client CA file: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tlsutil: client CA file %s: certificate %d: %w", file, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("tlsutil: client CA file %s: no CERTIFICATE PEM block found", file)
	}
	return pool, nil
}
