package provider

import "crypto"

// SigAlg describes a signature algorithm: whether it needs an RSA key (else ECDSA), whether
// RSA uses PSS (salt length = hash length) or PKCS #1 v1.5, and the hash whose digest it
// signs. Which curve an ECDSA algorithm needs is the provider's to check.
type SigAlg struct {
	RSA  bool
	PSS  bool
	Hash crypto.Hash
}

var sigAlgs = map[string]SigAlg{
	AlgRS256:  {RSA: true, Hash: crypto.SHA256},
	AlgRS384:  {RSA: true, Hash: crypto.SHA384},
	AlgRS512:  {RSA: true, Hash: crypto.SHA512},
	AlgPS256:  {RSA: true, PSS: true, Hash: crypto.SHA256},
	AlgPS384:  {RSA: true, PSS: true, Hash: crypto.SHA384},
	AlgPS512:  {RSA: true, PSS: true, Hash: crypto.SHA512},
	AlgES256:  {Hash: crypto.SHA256},
	AlgES384:  {Hash: crypto.SHA384},
	AlgES512:  {Hash: crypto.SHA512},
	AlgES256K: {Hash: crypto.SHA256}, // ECDSA over secp256k1 with a SHA-256 digest
}

// SignatureAlg looks up a signature algorithm Coffer offers.
func SignatureAlg(alg string) (SigAlg, bool) {
	a, ok := sigAlgs[alg]
	return a, ok
}

// EncAlg describes an RSA encryption algorithm: OAEP with Hash for both the label hash and
// MGF1 (Key Vault takes no label), or PKCS #1 v1.5.
type EncAlg struct {
	OAEP bool
	Hash crypto.Hash
}

var encAlgs = map[string]EncAlg{
	AlgRSA15:      {},
	AlgRSAOAEP:    {OAEP: true, Hash: crypto.SHA1},
	AlgRSAOAEP256: {OAEP: true, Hash: crypto.SHA256},
}

// EncryptionAlg looks up an RSA encryption algorithm Coffer offers.
func EncryptionAlg(alg string) (EncAlg, bool) {
	a, ok := encAlgs[alg]
	return a, ok
}

// MaxPlaintext is the longest message the algorithm can encrypt under a k-byte modulus:
// k−11 for PKCS #1 v1.5, k−2·hLen−2 for OAEP (RFC 8017 §7.1.1, §7.2.1).
func (a EncAlg) MaxPlaintext(k int) int {
	if a.OAEP {
		return k - 2*a.Hash.Size() - 2
	}
	return k - 11
}
