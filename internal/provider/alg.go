package provider

// Algorithm names, spelled as Key Vault's wire enums spell them (keys.json 2026-04-01:
// JsonWebKeySignatureAlgorithm and JsonWebKeyEncryptionAlgorithm). Which key types and curves
// each one fits is decided by the providers (and pinned by providertest); these are only the
// names, so callers and providers cannot disagree on a spelling.
const (
	// Signatures over a digest with RSA keys: PKCS #1 v1.5 and PSS (salt length = hash length).
	AlgRS256 = "RS256"
	AlgRS384 = "RS384"
	AlgRS512 = "RS512"
	AlgPS256 = "PS256"
	AlgPS384 = "PS384"
	AlgPS512 = "PS512"
	// AlgRSNULL is raw PKCS #1 v1.5 signing of a caller-built DigestInfo. It is in Key
	// Vault's enum but Coffer does not offer it (SECURITY-NOTES H4).
	AlgRSNULL = "RSNULL"
	// ECDSA with the curve fixed by the algorithm: P-256, P-384, P-521, P-256K (secp256k1).
	AlgES256  = "ES256"
	AlgES384  = "ES384"
	AlgES512  = "ES512"
	AlgES256K = "ES256K"
	// HMAC with oct-HSM keys.
	AlgHS256 = "HS256"
	AlgHS384 = "HS384"
	AlgHS512 = "HS512"

	// RSA encryption and key wrapping. RSA-OAEP uses SHA-1 for the hash and MGF1,
	// RSA-OAEP-256 SHA-256 for both; neither takes a label.
	AlgRSA15      = "RSA1_5"
	AlgRSAOAEP    = "RSA-OAEP"
	AlgRSAOAEP256 = "RSA-OAEP-256"
	// AES with oct-HSM keys.
	AlgA128GCM          = "A128GCM"
	AlgA192GCM          = "A192GCM"
	AlgA256GCM          = "A256GCM"
	AlgA128CBC          = "A128CBC"
	AlgA192CBC          = "A192CBC"
	AlgA256CBC          = "A256CBC"
	AlgA128CBCPAD       = "A128CBCPAD"
	AlgA192CBCPAD       = "A192CBCPAD"
	AlgA256CBCPAD       = "A256CBCPAD"
	AlgA128KW           = "A128KW"
	AlgA192KW           = "A192KW"
	AlgA256KW           = "A256KW"
	AlgCKMAESKeyWrap    = "CKM_AES_KEY_WRAP"
	AlgCKMAESKeyWrapPad = "CKM_AES_KEY_WRAP_PAD"
)

// SignatureAlgorithms lists every name of Key Vault's signature enum.
func SignatureAlgorithms() []string {
	return []string{AlgRS256, AlgRS384, AlgRS512, AlgPS256, AlgPS384, AlgPS512, AlgRSNULL,
		AlgES256, AlgES384, AlgES512, AlgES256K, AlgHS256, AlgHS384, AlgHS512}
}

// EncryptionAlgorithms lists every name of Key Vault's encryption enum (encrypt, decrypt,
// wrapKey and unwrapKey all take it).
func EncryptionAlgorithms() []string {
	return []string{AlgRSA15, AlgRSAOAEP, AlgRSAOAEP256,
		AlgA128GCM, AlgA192GCM, AlgA256GCM, AlgA128CBC, AlgA192CBC, AlgA256CBC,
		AlgA128CBCPAD, AlgA192CBCPAD, AlgA256CBCPAD, AlgA128KW, AlgA192KW, AlgA256KW,
		AlgCKMAESKeyWrap, AlgCKMAESKeyWrapPad}
}
