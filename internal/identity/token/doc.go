// Package token owns Coffer's bearer tokens: issuing them (Signer, ES256 keys persisted
// through the barrier and rotated with overlap), publishing the public keys (JWKS), and
// validating compact JWS access tokens from the built-in identity provider or from external
// OpenID Connect issuers (Validator over a KeySet: the Signer's own keys, a StaticKeySet
// parsed from a JWKS document, or a RemoteKeySet fetched from an issuer's discovery document).
//
// Imports: the standard library and, of Coffer's packages, internal/strictb64 (the one base64
// rule for untrusted input) and internal/storage (persistence of
// the signing keys) only. Only remote.go may import net/http; no file may import math/rand.
// Domain packages (keys, secrets, authz) consume Claims; this package knows nothing of them.
//
// Threat model: whoever presents a bearer token controls every byte of it and knows every
// public key. Validate therefore rejects by size before it parses anything (16 KB token, 4 KB
// header), accepts only strict base64url compact JWS with three segments, rejects duplicate
// or case-variant JSON member names, and takes the algorithm from the key, never from the
// header alone: each Key carries the algorithms allowed for it (EC P-256 → ES256, P-384 →
// ES384, RSA ≥ 2048 → RS256/PS256), so "none", HMAC and cross-family algorithms cannot be
// used. The kid is only a map key. Header parameters that would make the token choose its
// own key or processing (jku, x5u, jwk, x5c, crit, b64, zip) reject the token. The signature
// is checked before the payload is parsed. Every failure is ErrInvalidToken wrapped with a
// short, fixed reason for logs (never attacker-supplied text); callers answer 401 uniformly.
//
// External issuers are configured by an operator; their discovery document and JWKS are
// fetched over HTTPS only, from the issuer's host only, without redirects, with a timeout and
// a body cap; weak, ambiguous or mistyped keys are dropped; fetches are rate limited so that
// unknown kids cannot be used to make Coffer hammer an issuer; a failed fetch keeps the last
// good set for a bounded time. The storage passed to NewSigner is the barrier, which keeps
// private keys confidential and detects tampering; a retired key keeps only its public part.
//
// Not defended here: replay of a stolen bearer token until it expires (as with Entra ID;
// lifetimes are capped at one hour), and an attacker who can read process memory.
package token
