// Package pki builds X.509 certificates and CSRs from Key Vault certificate policies and
// encodes and decodes certificate content (PKCS#12 and PEM).
//
// It owns the X.509 part of a certificate policy (Profile: subject, subject alternative
// names, key usage, extended key usage, validity), the certificate template built from it,
// signing (self-signed or by a parent), PKCS#10 requests, and the secret value a Key Vault
// certificate carries: a base64 PFX with an empty password (application/x-pkcs12) or PEM text
// (application/x-pem-file).
//
// Threat model: Decode reads attacker-controlled import content; it caps the size, accepts
// only RSA 2048–4096 and ECDSA P-256/P-384/P-521 keys, checks that the key matches a
// certificate, and its errors describe what was wrong without echoing key bytes. Encode and
// the signing functions receive private keys from trusted callers; no error carries key
// material.
//
// This package is pure crypto and encoding: it uses only the standard library,
// golang.org/x/crypto and go-pkcs12, and must not import net/http, storage, providers or
// any other Coffer package.
package pki
