// Package azsd owns the security-domain formats of Azure Managed HSM as the Azure CLI reads
// and writes them (`az keyvault security-domain download`, `restore-blob`, `upload`): the
// security-domain file a download returns, and the restore blob a quorum of custodians
// makes from it for a new HSM. Coffer's pools write the first and read the second, and
// `coffer hsm sd upload` makes the second like `az keyvault security-domain restore-blob`.
//
// The security-domain file (JSON):
//
//	{"EncData":    {"data": [{"compact_jwe": D, "tag": T}, ...], "kdf": "sp108_kdf"},
//	 "SharedKeys": {"enc_shares": [{"enc_key": S_i, "x5t_256": H_i}, ...],
//	                "key_algorithm": "shamir_share", "required": Q}}
//
//	M   = a random 32-byte master key (one per download)
//	D   = compact JWE, alg "dir", enc A256CBC-HS512, kid T, under KDF(M, label T, context "", 512)
//	S_i = compact JWE, alg RSA-OAEP-256, enc A256CBC-HS512, to custodian i, of share i of M
//	      (Shamir over GF(257), Q of N; gf257.go has the share encoding)
//	H_i = base64url(SHA-256(DER of custodian i's certificate)): how the CLI finds a key's share
//
// The restore blob (JSON):
//
//	{"EncData":    {"data": [{"compact_jwe": D', "tag": T}, ...], "kdf": "sp108_kdf"},
//	 "WrappedKey": {"enc_key": W, "x5t_256": base64url(SHA-256(DER of the exchange certificate))}}
//
//	M'  = a fresh random 32-byte master key
//	D'  = each datum's plaintext again, as D but under KDF(M', T, "", 512)
//	W   = compact JWE, alg RSA-OAEP-256, enc A256CBC-HS512, of M', to the new HSM's exchange
//	      (transfer) key, whose certificate the HSM publishes (GET /securitydomain/upload)
//
// KDF is SP 800-108 counter mode over HMAC-SHA512 (kdf.go), A256CBC-HS512 is RFC 7518
// §5.2.5 (jwe.go): standard primitives composed as their specifications say. All base64url
// is unpadded. The datum plaintexts are opaque here; what Coffer puts in them is
// internal/sdblob's.
//
// This package imports only the Go standard library: it runs on the server and, in the
// `coffer` CLI, on custodians' machines.
//
// Threat model: restore blobs and security-domain files arrive from outside and are parsed
// with size caps; every decryption failure (RSA, tag, padding) is the same error, and the
// tag is checked in constant time before any decryption; Shamir arithmetic is constant time.
// The format authenticates data only under keys derived from the master key: anyone with the
// exchange certificate can make a restore blob of data of their choosing, so the caller must
// check what the data says (Coffer accepts only its own domain record). A security-domain
// file whose shares or data were changed fails to restore (the data's tags), and so do
// shares of different downloads. Master keys, shares and content keys are cleared after use
// and never put in errors.
package azsd

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/coffer-kms/coffer/internal/strictb64"
)

// Limits and constants of the format.
const (
	masterKeyLen = 32
	maxLen       = 64 << 10 // a file or restore blob text
	maxData      = 16       // data in EncData
	maxTagLen    = 128
	// KeyAlgorithm is SharedKeys.key_algorithm, the one the Azure CLI accepts.
	KeyAlgorithm = "shamir_share"
	// MinRequired and MaxRequired bound the quorum (the Azure CLI refuses others).
	MinRequired, MaxRequired = 2, 10
)

// Errors. ErrInvalid wraps every malformed input; ErrDecrypt is the one answer to anything
// that does not decrypt or authenticate; ErrExchangeKey says a restore blob was made for
// another exchange key.
var (
	ErrInvalid     = errors.New("invalid security domain")
	ErrDecrypt     = errors.New("the security domain does not decrypt: it was changed, or it was not made for this key")
	ErrExchangeKey = errors.New("the restore blob is wrapped to another exchange key")
)

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// File is a security-domain file.
type File struct {
	EncData    EncData    `json:"EncData"`
	SharedKeys SharedKeys `json:"SharedKeys"`
}

// EncData is the data of a security domain, each under a key derived from the master key.
type EncData struct {
	Data []Datum `json:"data"`
	KDF  string  `json:"kdf"`
}

// Datum is one compact JWE ("dir") and its tag, the KDF label of its key.
type Datum struct {
	CompactJWE string `json:"compact_jwe"`
	Tag        string `json:"tag"`
}

// SharedKeys are the shares of the master key, each encrypted to one custodian.
type SharedKeys struct {
	EncShares    []EncShare `json:"enc_shares"`
	KeyAlgorithm string     `json:"key_algorithm"`
	Required     int        `json:"required"`
}

// EncShare is one custodian's share: a compact JWE (RSA-OAEP-256) and the SHA-256
// thumbprint of the custodian's certificate.
type EncShare struct {
	EncKey  string `json:"enc_key"`
	X5tS256 string `json:"x5t_256"`
}

// RestoreBlob is what a quorum sends to a new HSM.
type RestoreBlob struct {
	EncData    EncData    `json:"EncData"`
	WrappedKey WrappedKey `json:"WrappedKey"`
}

// WrappedKey is the restore blob's master key, encrypted to the exchange key.
type WrappedKey struct {
	EncKey  string `json:"enc_key"`
	X5tS256 string `json:"x5t_256"`
}

// Secret is one datum in the clear: its tag and plaintext.
type Secret struct {
	Tag       string
	Plaintext []byte
}

// Custodian is a key a download splits the master key for: its RSA public key and the
// SHA-256 thumbprint of its certificate (CertThumbprint).
type Custodian struct {
	Key     *rsa.PublicKey
	X5tS256 string
}

// Holder is a custodian's private key at restore time. With X5tS256 set (CertThumbprint of
// the custodian's certificate) only the shares naming it are tried, as the Azure CLI does;
// empty, every share is tried.
type Holder struct {
	Key     *rsa.PrivateKey
	X5tS256 string
}

// CertThumbprint is base64url(SHA-256(der)): x5t_256 of a certificate.
func CertThumbprint(der []byte) string {
	sum := sha256.Sum256(der)
	return b64.EncodeToString(sum[:])
}

func checkTag(tag string) error {
	if tag == "" || len(tag) > maxTagLen {
		return invalid("a datum tag must be 1 to %d characters", maxTagLen)
	}
	for i := 0; i < len(tag); i++ {
		if tag[i] < 0x20 || tag[i] > 0x7e {
			return invalid("a datum tag must be printable ASCII")
		}
	}
	return nil
}

func checkData(d EncData) error {
	if d.KDF != kdfName {
		return invalid("EncData.kdf %.20q: want %q", d.KDF, kdfName)
	}
	if len(d.Data) == 0 || len(d.Data) > maxData {
		return invalid("EncData holds %d data: want 1 to %d", len(d.Data), maxData)
	}
	seen := map[string]bool{}
	for _, x := range d.Data {
		if err := checkTag(x.Tag); err != nil {
			return err
		}
		if seen[x.Tag] {
			return invalid("EncData repeats the tag %q", x.Tag)
		}
		seen[x.Tag] = true
	}
	return nil
}

func encryptData(master []byte, secrets []Secret) ([]Datum, error) {
	var out []Datum
	for _, s := range secrets {
		k, err := dataKey(master, s.Tag)
		if err != nil {
			return nil, err
		}
		c, err := encryptDir(k, s.Tag, s.Plaintext)
		clear(k)
		if err != nil {
			return nil, err
		}
		out = append(out, Datum{CompactJWE: c, Tag: s.Tag})
	}
	return out, nil
}

func decryptData(master []byte, data []Datum) ([]Secret, error) {
	var out []Secret
	for _, d := range data {
		k, err := dataKey(master, d.Tag)
		if err != nil {
			return nil, err
		}
		pt, err := decryptDir(k, d.CompactJWE)
		clear(k)
		if err != nil {
			ClearSecrets(out)
			return nil, ErrDecrypt
		}
		out = append(out, Secret{Tag: d.Tag, Plaintext: pt})
	}
	return out, nil
}

// ClearSecrets overwrites the plaintexts of secrets.
func ClearSecrets(secrets []Secret) {
	for _, s := range secrets {
		clear(s.Plaintext)
	}
}

// Make returns a security-domain file of secrets: a fresh master key split among
// custodians, any required of whom restore it.
func Make(secrets []Secret, custodians []Custodian, required int) (string, error) {
	if required < MinRequired || required > MaxRequired || required > len(custodians) || len(custodians) > maxShareX {
		return "", invalid("%d custodians with quorum %d: want a quorum of %d to %d, at most the custodians", len(custodians), required, MinRequired, MaxRequired)
	}
	for _, s := range secrets {
		if err := checkTag(s.Tag); err != nil {
			return "", err
		}
	}
	master := make([]byte, masterKeyLen)
	defer clear(master)
	if _, err := rand.Read(master); err != nil {
		return "", err
	}
	f := File{EncData: EncData{KDF: kdfName}, SharedKeys: SharedKeys{KeyAlgorithm: KeyAlgorithm, Required: required}}
	var err error
	if f.EncData.Data, err = encryptData(master, secrets); err != nil {
		return "", err
	}
	if err := checkData(f.EncData); err != nil {
		return "", err
	}
	shares, err := splitShares(master, len(custodians), required)
	if err != nil {
		return "", err
	}
	defer func() {
		for _, s := range shares {
			clear(s)
		}
	}()
	for i, c := range custodians {
		ek, err := encryptRSA(c.Key, c.X5tS256, shares[i])
		if err != nil {
			return "", err
		}
		f.SharedKeys.EncShares = append(f.SharedKeys.EncShares, EncShare{EncKey: ek, X5tS256: c.X5tS256})
	}
	out, err := json.Marshal(f)
	return string(out), err
}

// ParseFile parses a security-domain file; like the Azure CLI it ignores members it does
// not know.
func ParseFile(text []byte) (*File, error) {
	if len(text) > maxLen {
		return nil, invalid("the file is larger than %d bytes", maxLen)
	}
	var f File
	if err := json.Unmarshal(text, &f); err != nil {
		return nil, invalid("not a security-domain file (JSON with EncData and SharedKeys)")
	}
	if err := checkData(f.EncData); err != nil {
		return nil, err
	}
	sk := f.SharedKeys
	if sk.KeyAlgorithm != KeyAlgorithm {
		return nil, invalid("SharedKeys.key_algorithm %.20q: want %q", sk.KeyAlgorithm, KeyAlgorithm)
	}
	if sk.Required < MinRequired || sk.Required > MaxRequired || sk.Required > len(sk.EncShares) || len(sk.EncShares) > maxShareX {
		return nil, invalid("%d shares with quorum %d", len(sk.EncShares), sk.Required)
	}
	return &f, nil
}

// Restore makes the restore blob of f for the HSM whose exchange certificate is exchange,
// from the private keys of at least a quorum of custodians: exactly what `az keyvault
// security-domain restore-blob` does. The shares are decrypted, combined and used only in
// this process's memory.
func Restore(f *File, holders []Holder, exchange *x509.Certificate) (string, error) {
	pub, ok := exchange.PublicKey.(*rsa.PublicKey)
	if !ok {
		return "", invalid("the exchange certificate does not hold an RSA key")
	}
	req := f.SharedKeys.Required
	if len(holders) < req {
		return "", invalid("%d private keys given: this security domain needs %d (its quorum)", len(holders), req)
	}
	var shares [][]byte
	defer func() {
		for _, s := range shares {
			clear(s)
		}
	}()
	used := make([]bool, len(f.SharedKeys.EncShares))
	for _, h := range holders {
		if len(shares) == req {
			break
		}
		for i, es := range f.SharedKeys.EncShares {
			if used[i] || (h.X5tS256 != "" && h.X5tS256 != es.X5tS256) {
				continue
			}
			if s, err := decryptRSA(h.Key, es.EncKey); err == nil {
				used[i], shares = true, append(shares, s)
				break
			}
		}
	}
	if len(shares) < req {
		return "", invalid("only %d of the private keys given open a share of this security domain: it needs %d", len(shares), req)
	}
	master, err := combineShares(shares)
	if err != nil {
		return "", ErrDecrypt
	}
	defer clear(master)
	secrets, err := decryptData(master, f.EncData.Data)
	if err != nil {
		return "", fmt.Errorf("%w (the shares do not rebuild its master key)", err)
	}
	defer ClearSecrets(secrets)
	fresh := make([]byte, masterKeyLen)
	defer clear(fresh)
	if _, err := rand.Read(fresh); err != nil {
		return "", err
	}
	rb := RestoreBlob{EncData: EncData{KDF: kdfName}, WrappedKey: WrappedKey{X5tS256: CertThumbprint(exchange.Raw)}}
	if rb.EncData.Data, err = encryptData(fresh, secrets); err != nil {
		return "", err
	}
	if rb.WrappedKey.EncKey, err = encryptRSA(pub, rb.WrappedKey.X5tS256, fresh); err != nil {
		return "", err
	}
	out, err := json.Marshal(rb)
	return string(out), err
}

// ParseRestoreBlob parses a restore blob strictly: size cap, unknown members refused.
func ParseRestoreBlob(text []byte) (*RestoreBlob, error) {
	if len(text) > maxLen {
		return nil, invalid("the restore blob is larger than %d bytes", maxLen)
	}
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.DisallowUnknownFields()
	var rb RestoreBlob
	if err := dec.Decode(&rb); err != nil || dec.More() {
		return nil, invalid("not a restore blob (JSON with EncData and WrappedKey)")
	}
	if err := checkData(rb.EncData); err != nil {
		return nil, err
	}
	if tp, err := strictb64.URL.DecodeString("x5t_256", rb.WrappedKey.X5tS256); err != nil || len(tp) != sha256.Size || rb.WrappedKey.EncKey == "" {
		return nil, invalid("WrappedKey needs enc_key and x5t_256 (the exchange certificate's SHA-256, base64url)")
	}
	return &rb, nil
}

// Open decrypts a restore blob with the exchange key priv, whose certificate is certDER:
// the blob must name that certificate (ErrExchangeKey otherwise), and every datum must
// decrypt (ErrDecrypt). The caller clears the secrets (ClearSecrets).
func Open(rb *RestoreBlob, priv *rsa.PrivateKey, certDER []byte) ([]Secret, error) {
	if rb.WrappedKey.X5tS256 != CertThumbprint(certDER) {
		return nil, ErrExchangeKey
	}
	master, err := decryptRSA(priv, rb.WrappedKey.EncKey)
	if err != nil || len(master) != masterKeyLen {
		clear(master)
		return nil, ErrDecrypt
	}
	defer clear(master)
	return decryptData(master, rb.EncData.Data)
}
