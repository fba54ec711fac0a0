package provider

// JWK is a JSON Web Key as Key Vault uses it (RFC 7517 plus Key Vault's key_ops and key_hsm).
// Byte fields are base64url without padding on the wire ([]byte with custom JSON handling in
// jwkjson.go). Private members (D, P, Q, DP, DQ, QI, K) are only ever set on input (import);
// Public never sets them, except K stays empty for oct keys too.
type JWK struct {
	KID    string   `json:"kid,omitempty"`
	Kty    KeyType  `json:"kty"`
	KeyOps []string `json:"key_ops,omitempty"`
	// RSA
	N  B64 `json:"n,omitempty"`
	E  B64 `json:"e,omitempty"`
	D  B64 `json:"d,omitempty"`
	DP B64 `json:"dp,omitempty"`
	DQ B64 `json:"dq,omitempty"`
	QI B64 `json:"qi,omitempty"`
	P  B64 `json:"p,omitempty"`
	Q  B64 `json:"q,omitempty"`
	// oct
	K B64 `json:"k,omitempty"`
	// BYOK transfer blob (HSM issue)
	T B64 `json:"key_hsm,omitempty"`
	// EC
	Crv Curve `json:"crv,omitempty"`
	X   B64   `json:"x,omitempty"`
	Y   B64   `json:"y,omitempty"`
}

// B64 is bytes that travel as strict unpadded base64url (SECURITY-NOTES I6).
type B64 []byte
