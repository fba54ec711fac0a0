// Package shamir owns Shamir secret sharing over GF(2^8) and the text form in which shares are
// handed to people. Coffer's Shamir seal uses it to split the unseal key among custodians at
// init and to rebuild it from a threshold of their shares at unseal.
//
// A raw share is the y-values of the secret's per-byte polynomials followed by one x-coordinate
// byte (non-zero, distinct per share). That is the layout of HashiCorp Vault's shamir package,
// over the same field, the AES field GF(2^8) modulo x^8+x^4+x^3+x+1 (0x11b), so sets of two or
// more shares can be compared with Vault's published behaviour and combined by either. Unlike
// Vault, Split draws every non-constant coefficient uniformly, zero included: forcing the
// leading coefficient non-zero (as Vault does) rules out candidate secrets for anyone holding
// threshold-1 shares. The human form of a share (EncodeShare, DecodeShare) is base64 of
// raw ‖ checksum, described on EncodeShare.
//
// This package is a leaf: it imports only the Go standard library (crypto/rand for randomness,
// crypto/sha256 for the share checksum) and must never import another Coffer package,
// net/http, math/rand or any third-party code.
//
// Threat model. Shares are held by custodians; any threshold-1 of them, colluding, learn
// nothing about the secret (perfect secrecy, given uniform coefficients from crypto/rand).
// Field arithmetic is constant-time: multiplication is shift-and-xor under masks and inversion
// is exponentiation to 254, with no table lookups or branches on secret bytes, so timing and
// cache side channels do not reveal the secret or y-values. Validation branches only on share
// lengths and x-coordinates, which are public. Errors never contain share or secret bytes.
// Split wipes its polynomial coefficients; callers own wiping the secret, the shares and the
// combined result.
//
// Not defended here: shares are not authenticated. The checksum of the text form catches
// typing and copying mistakes, but it is unkeyed, so anyone can recompute it. A damaged or
// malicious raw share makes Combine return a wrong secret without error (a custodian who flips
// bits δ in its y-values shifts the result by δ·lᵢ(0)). The caller must verify the combined
// secret: the barrier does so by opening the root key with it under AES-256-GCM, which fails
// for any wrong key. A threshold of colluding custodians, or anyone who reads the process
// memory during unseal, has the secret.
package shamir
