// Package tlsutil owns Coffer's TLS surface: the server tls.Config (protocol versions,
// cipher suites, ALPN, optional client-certificate authentication), loading and hot
// reloading of the server certificate and key, and the throwaway development CA that
// `coffer server -dev` style setups use.
//
// Coffer speaks HTTPS only; every listener gets its tls.Config from ServerConfig, so the
// policy is decided here once:
//
//   - TLS 1.2 is the floor and TLS 1.3 is negotiated whenever the client offers it.
//   - On TLS 1.2 only the six ECDHE AEAD suites (AES-128-GCM, AES-256-GCM and
//     ChaCha20-Poly1305 with ECDSA or RSA certificates) are offered. Go's default list also
//     offers CBC suites, which scanners flag (obsolete CBC, LUCKY13); TLS 1.3 suites are not
//     configurable in Go and are all AEAD.
//   - No session tickets are issued, on TLS 1.2 or 1.3: Go's tickets live 7 days under
//     daily-rotated keys, and a TLS 1.2 ticket holds the session's master secret, which
//     would weaken forward secrecy. Every connection makes a full handshake.
//   - ALPN offers h2 then http/1.1.
//   - With a client CA bundle, every client must present a certificate that chains to it
//     and carries the clientAuth extended key usage (Go's default verification).
//
// This package must not import any other Coffer package, and its non-test code must not
// import net/http: it builds configurations, the server package serves them.
//
// Threat model: the network is hostile. An active attacker may offer old protocol versions
// or weak suites to force a downgrade (refused at the handshake), speak plain HTTP to the
// TLS port (Go's HTTP server answers a fixed 400 before any handler runs), or present
// client certificates from other CAs, expired, or issued for another purpose (refused when
// mTLS is on). The certificate and key files are trusted operator input, but they may be
// half-written, mismatched, expired or not yet valid while an operator or an ACME client
// rotates them: such a pair is refused at start, and on reload the previous good pair keeps
// serving, so a bad rotation can never take the listener down or make it serve no
// certificate. Private key bytes are never logged or put into error text. The development
// CA is for loopback testing only; its key sits unencrypted beside the certificates (mode
// 0600) and anyone who can read it can impersonate any host to clients that trust it.
package tlsutil
