// Package sdblob owns Coffer's side of the wire format of a managed HSM pool's security
// domain: the custodian keys a download names (SecurityDomainJsonWebKey), the pool's transfer
// key, and what a security domain carries (Domain, domain.go). Since version 2 the security
// domain is the Azure CLI's format (internal/azsd), the domain one of its data; this file
// keeps version 1 readable: Coffer's own blob (the domain key split with Shamir, one share
// encrypted to each custodian, coffer-sd/1) and the upload a quorum made from it
// (coffer-sd-upload/1), with the client side of that exchange (DecryptShare, BuildUpload)
// so that `coffer hsm sd upload` still restores blobs downloaded before version 2.
// docs/FORMAT.md copies both formats.
//
// This package imports only the Go standard library and strictb64 (the one base64 rule for
// untrusted input): no storage, no net/http, no Shamir
// arithmetic (splitting and combining happen on the server, internal/secdomain).
//
// Threat model: blobs and uploads arrive from the network and are parsed strictly (size cap,
// unknown fields refused, strict unpadded base64url). The version 1 blob's integrity is a MAC
// under a key derived from the domain key, so only a holder of the domain key (a quorum) can
// check or forge it; a tampered blob is refused once the shares are combined. Shares are only
// ever in the clear in the memory of a custodian's machine and of the server that combines
// them.
package sdblob

import (
	"bytes"
	"crypto"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"

	"github.com/coffer-kms/coffer/internal/strictb64"
)

// Formats and limits.
const (
	// Format names version 1 of the security-domain blob.
	Format = "coffer-sd/1"
	// UploadFormat names version 1 of the upload body.
	UploadFormat = "coffer-sd-upload/1"
	// MinCustodians and MaxCustodians bound the custodian keys of a download (Key Vault: 3–10).
	MinCustodians, MaxCustodians = 3, 10
	// MinQuorum is the smallest quorum (Key Vault: 2).
	MinQuorum = 2
	// MaxLen bounds a blob or upload text.
	MaxLen = 64 << 10
	// DomainKeyLen is the length of a domain key.
	DomainKeyLen = 32
	// MaxKidLen bounds the kid a custodian key carries into the blob.
	MaxKidLen = 1024
	// ShareAlg is the one share-encryption algorithm.
	ShareAlg = "RSA-OAEP-256"
)

// ErrInvalid is wrapped by every error about malformed input.
var ErrInvalid = errors.New("invalid security domain input")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// JWK is Key Vault's SecurityDomainJsonWebKey: an RSA public key given as n/e, as an X.509
// chain (x5c, standard base64 DER, leaf first), or both (then they must agree).
type JWK struct {
	Kid     string   `json:"kid,omitempty"`
	Kty     string   `json:"kty"`
	KeyOps  []string `json:"key_ops,omitempty"`
	N       string   `json:"n,omitempty"`
	E       string   `json:"e,omitempty"`
	X5c     []string `json:"x5c,omitempty"`
	Use     string   `json:"use,omitempty"`
	X5t     string   `json:"x5t,omitempty"`
	X5tS256 string   `json:"x5t#S256,omitempty"`
	Alg     string   `json:"alg,omitempty"`
}

// b64 encodes the format's base64url fields; every decoding of a field goes through
// strictb64 (SECURITY-NOTES I6: no CR/LF, which encoding/base64 skips even in Strict mode).
var b64 = base64.RawURLEncoding

// PublicKey returns the RSA public key of j. Keys must be RSA 2048, 3072 or 4096 bits with
// e = 65537.
func (j JWK) PublicKey() (*rsa.PublicKey, error) {
	if j.Kty != "RSA" {
		return nil, invalid("kty %.10q: security domain keys must be RSA", j.Kty)
	}
	var fromNE, fromCert *rsa.PublicKey
	if j.N != "" || j.E != "" {
		n, errN := strictb64.URL.DecodeString("n", j.N)
		e, errE := strictb64.URL.DecodeString("e", j.E)
		if err := errors.Join(errN, errE); err != nil {
			return nil, invalid("%v", err)
		}
		if errN != nil || errE != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 || n[0] == 0 || e[0] == 0 {
			return nil, invalid("n and e must be strict unpadded base64url big-endian integers without leading zeros")
		}
		fromNE = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	if len(j.X5c) > 0 {
		if len(j.X5c) > 10 {
			return nil, invalid("x5c holds more than 10 certificates")
		}
		der, err := strictb64.Std.DecodeString("x5c[0]", j.X5c[0])
		if err != nil {
			return nil, invalid("%v", err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, invalid("x5c[0] is not an X.509 certificate")
		}
		pub, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, invalid("x5c[0] does not hold an RSA public key")
		}
		fromCert = pub
	}
	pub := fromNE
	switch {
	case fromNE == nil && fromCert == nil:
		return nil, invalid("the key has neither n/e nor x5c")
	case fromNE == nil:
		pub = fromCert
	case fromCert != nil && !fromCert.Equal(fromNE):
		return nil, invalid("n/e and the x5c certificate name different keys")
	}
	if bits := pub.N.BitLen(); bits != 2048 && bits != 3072 && bits != 4096 {
		return nil, invalid("RSA key of %d bits: use 2048, 3072 or 4096", bits)
	}
	if pub.E != 65537 || pub.N.Bit(0) == 0 {
		return nil, invalid("RSA key must have e = 65537 and an odd modulus")
	}
	return pub, nil
}

// PublicJWK returns the n/e JWK of pub, with its thumbprint as kid.
func PublicJWK(pub *rsa.PublicKey) JWK {
	return JWK{Kty: "RSA", Kid: Thumbprint(pub), N: b64.EncodeToString(pub.N.Bytes()),
		E: b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes()), KeyOps: []string{"wrapKey"}, Alg: ShareAlg}
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of an RSA public key, base64url.
func Thumbprint(pub *rsa.PublicKey) string {
	canon := fmt.Sprintf(`{"e":"%s","kty":"RSA","n":"%s"}`, b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes()), b64.EncodeToString(pub.N.Bytes()))
	sum := sha256.Sum256([]byte(canon))
	return b64.EncodeToString(sum[:])
}

// Blob is the security domain a download returns (as JSON text in SecurityDomainObject.value).
type Blob struct {
	Format   string     `json:"format"`
	DomainID string     `json:"domain_id"`
	Required int        `json:"required"`
	Shares   []EncShare `json:"enc_shares"`
	// Check is HMAC-SHA256 under DeriveKey(domain key, "check") of the blob with Check empty.
	Check string `json:"check"`
}

// EncShare is one Shamir share of the domain key, encrypted to one custodian's key with
// RSA-OAEP-256 and the label ShareLabel(domain id).
type EncShare struct {
	Thumbprint string `json:"thumbprint"` // RFC 7638 thumbprint of the custodian's key
	Kid        string `json:"kid,omitempty"`
	Alg        string `json:"alg"`
	Value      string `json:"value"`
}

var domainIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// ShareLabel is the OAEP label of a custodian share; TransferLabel that of a share wrapped to
// a transfer key. Labels bind a ciphertext to its domain and its role.
func ShareLabel(domainID string) []byte    { return []byte("coffer-sd/1 share " + domainID) }
func TransferLabel(domainID string) []byte { return []byte("coffer-sd/1 transfer " + domainID) }

// DeriveKey derives a 32-byte key for purpose from a domain key (HKDF-SHA256, no salt, info
// "coffer-sd/1 " ‖ purpose). Purposes: "check" (the blob MAC), "key-backup" (key backups),
// "full-backup" (full backups), "token-wrap" and "token-wrap-id" (the wrapping key of pools'
// keys in their PKCS#11 tokens and its id, secdomain.TokenWrapKey).
func DeriveKey(domainKey []byte, purpose string) ([]byte, error) {
	if len(domainKey) != DomainKeyLen {
		return nil, errors.New("sdblob: a domain key is 32 bytes")
	}
	return hkdf.Key(sha256.New, domainKey, nil, "coffer-sd/1 "+purpose, 32)
}

// MAC computes the blob's check value under domainKey.
func (b *Blob) MAC(domainKey []byte) ([]byte, error) {
	k, err := DeriveKey(domainKey, "check")
	if err != nil {
		return nil, err
	}
	defer clear(k)
	c := *b
	c.Check = ""
	msg, err := json.Marshal(&c)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, k)
	m.Write(msg)
	return m.Sum(nil), nil
}

// Verify reports whether domainKey is the key the blob was made with (constant time).
func (b *Blob) Verify(domainKey []byte) bool {
	want, err := strictb64.URL.DecodeString("check", b.Check)
	if err != nil {
		return false
	}
	got, err := b.MAC(domainKey)
	return err == nil && hmac.Equal(got, want)
}

// decodeStrict decodes one JSON object with unknown fields and trailing data refused.
func decodeStrict(text string, v any) error {
	if len(text) > MaxLen {
		return invalid("the text is larger than %d bytes", MaxLen)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(text)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		return invalid("not a JSON object of the expected shape")
	}
	return nil
}

// ParseBlob parses and checks the shape of a security-domain blob; the MAC can only be
// checked with the domain key (Verify).
func ParseBlob(text string) (*Blob, error) {
	var b Blob
	if err := decodeStrict(text, &b); err != nil {
		return nil, fmt.Errorf("security domain: %w", err)
	}
	if b.Format != Format {
		return nil, invalid("security domain format %.20q: want %q", b.Format, Format)
	}
	if !domainIDRE.MatchString(b.DomainID) {
		return nil, invalid("security domain has no valid domain_id")
	}
	if n := len(b.Shares); n < MinCustodians || n > MaxCustodians || b.Required < MinQuorum || b.Required > n {
		return nil, invalid("security domain has %d shares and quorum %d: want 3-10 shares and a quorum of 2 to the share count", n, b.Required)
	}
	seen := map[string]bool{}
	for i, s := range b.Shares {
		tp, err := strictb64.URL.DecodeString("thumbprint", s.Thumbprint)
		v, errV := strictb64.URL.DecodeString("value", s.Value)
		if err := errors.Join(err, errV); err != nil {
			return nil, invalid("security domain share %d: %v", i, err)
		}
		if len(tp) != 32 || seen[s.Thumbprint] || s.Alg != ShareAlg || errV != nil || len(v) < 256 || len(v) > 512 || len(s.Kid) > MaxKidLen {
			return nil, invalid("security domain share is malformed or repeated")
		}
		seen[s.Thumbprint] = true
	}
	if c, err := strictb64.URL.DecodeString("check", b.Check); err != nil || len(c) != sha256.Size {
		return nil, invalid("security domain check value is malformed")
	}
	return &b, nil
}

// DecryptShare decrypts the share of the custodian whose private key is priv.
func DecryptShare(b *Blob, priv *rsa.PrivateKey) ([]byte, error) {
	tp := Thumbprint(&priv.PublicKey)
	for _, s := range b.Shares {
		if s.Thumbprint != tp {
			continue
		}
		ct, err := strictb64.URL.DecodeString("value", s.Value)
		if err != nil {
			return nil, invalid("share is not base64url")
		}
		share, err := rsa.DecryptOAEP(sha256.New(), nil, priv, ct, ShareLabel(b.DomainID))
		if err != nil {
			return nil, fmt.Errorf("%w: the share for key %s does not decrypt", ErrInvalid, tp)
		}
		return share, nil
	}
	return nil, fmt.Errorf("%w: the security domain has no share for the key with thumbprint %s", ErrInvalid, tp)
}

// EncryptShare encrypts share to pub with RSA-OAEP-256 and label.
func EncryptShare(pub *rsa.PublicKey, share, label []byte) (string, error) {
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, share, label)
	if err != nil {
		return "", err
	}
	return b64.EncodeToString(ct), nil
}

// Upload is the security domain a quorum sends to a new pool (as JSON text in
// SecurityDomainObject.value): the blob as downloaded and the quorum's shares, each
// encrypted to the pool's transfer key with RSA-OAEP-256 and TransferLabel(domain id).
type Upload struct {
	Format         string   `json:"format"`
	SecurityDomain string   `json:"security_domain"`
	TransferKey    string   `json:"transfer_key"` // thumbprint of the transfer key
	Shares         []string `json:"shares"`
}

// BuildUpload makes the upload text from a downloaded blob, the pool's transfer key and
// the decrypted shares of a quorum.
func BuildUpload(blobText string, transfer *rsa.PublicKey, shares [][]byte) (string, error) {
	b, err := ParseBlob(blobText)
	if err != nil {
		return "", err
	}
	u := Upload{Format: UploadFormat, SecurityDomain: blobText, TransferKey: Thumbprint(transfer)}
	for _, s := range shares {
		ct, err := EncryptShare(transfer, s, TransferLabel(b.DomainID))
		if err != nil {
			return "", err
		}
		u.Shares = append(u.Shares, ct)
	}
	out, err := json.Marshal(u)
	return string(out), err
}

// ParseUpload parses an upload and the blob inside it.
func ParseUpload(text string) (*Upload, *Blob, error) {
	var u Upload
	if err := decodeStrict(text, &u); err != nil {
		return nil, nil, fmt.Errorf("security domain upload: %w", err)
	}
	if u.Format != UploadFormat {
		return nil, nil, invalid("upload format %.20q: want %q", u.Format, UploadFormat)
	}
	b, err := ParseBlob(u.SecurityDomain)
	if err != nil {
		return nil, nil, err
	}
	if len(u.Shares) > len(b.Shares) {
		return nil, nil, invalid("the upload has %d shares; the security domain has only %d", len(u.Shares), len(b.Shares))
	}
	for i, s := range u.Shares {
		v, err := strictb64.URL.DecodeString("shares", s)
		if err != nil {
			return nil, nil, invalid("uploaded share %d: %v", i, err)
		}
		if len(v) < 256 || len(v) > 512 {
			return nil, nil, invalid("an uploaded share is malformed")
		}
	}
	return &u, b, nil
}

// DecryptTransferShares decrypts the uploaded shares with the transfer key.
func DecryptTransferShares(u *Upload, b *Blob, priv *rsa.PrivateKey) ([][]byte, error) {
	if u.TransferKey != Thumbprint(&priv.PublicKey) {
		return nil, invalid("the shares are wrapped to another transfer key: get this pool's transfer key (GET /securitydomain/upload) and wrap them again")
	}
	out := make([][]byte, 0, len(u.Shares))
	for _, s := range u.Shares {
		ct, _ := strictb64.URL.DecodeString("shares", s) // ParseUpload checked it
		share, err := priv.Decrypt(nil, ct, &rsa.OAEPOptions{Hash: crypto.SHA256, Label: TransferLabel(b.DomainID)})
		if err != nil {
			for _, o := range out {
				clear(o)
			}
			return nil, invalid("an uploaded share does not decrypt with this pool's transfer key")
		}
		out = append(out, share)
	}
	return out, nil
}
