package azsd

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
)

// JWE algorithms of the format (RFC 7518).
const (
	algRSAOAEP256 = "RSA-OAEP-256" // the content key encrypted to an RSA key (OAEP, SHA-256, MGF1-SHA-256, no label)
	algDir        = "dir"          // the content key is derived (KDF) from the master key
	encCBCHS512   = "A256CBC-HS512"
	cekLen        = 64 // A256CBC-HS512: 32-byte MAC key ‖ 32-byte AES-256 key
	tagLen        = 32
)

var b64 = base64.RawURLEncoding.Strict()

// header is a JWE protected header. The format's headers carry alg, enc and kid; a header
// asking for compression or naming critical extensions is refused.
type header struct {
	Alg  string          `json:"alg"`
	Enc  string          `json:"enc"`
	Kid  string          `json:"kid,omitempty"`
	Zip  json.RawMessage `json:"zip,omitempty"`
	Crit json.RawMessage `json:"crit,omitempty"`
}

// jwe is a compact JWE split into its five parts; Header is the first part as sent (the
// associated data of A256CBC-HS512), the others decoded.
type jwe struct {
	Header       string
	H            header
	EncryptedKey []byte
	IV, CT, Tag  []byte
}

// errJWE is the one error of every JWE that does not parse or decrypt: the reason is never
// told apart (no padding or key oracle).
var errJWE = errors.New("azsd: the JWE does not decrypt")

func parseJWE(compact string) (*jwe, error) {
	parts := strings.Split(compact, ".")
	if len(parts) != 5 || len(compact) > maxLen {
		return nil, errJWE
	}
	// encoding/base64 skips CR and LF even in strict mode: without this check one JWE would
	// have many texts (line breaks anywhere) that all decrypt.
	for i := 0; i < len(compact); i++ {
		if c := compact[i]; !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return nil, errJWE
		}
	}
	var j jwe
	var err [5]error
	var hdr []byte
	j.Header = parts[0]
	hdr, err[0] = b64.DecodeString(parts[0])
	j.EncryptedKey, err[1] = b64.DecodeString(parts[1])
	j.IV, err[2] = b64.DecodeString(parts[2])
	j.CT, err[3] = b64.DecodeString(parts[3])
	j.Tag, err[4] = b64.DecodeString(parts[4])
	for _, e := range err {
		if e != nil {
			return nil, errJWE
		}
	}
	if json.Unmarshal(hdr, &j.H) != nil || j.H.Enc != encCBCHS512 || j.H.Zip != nil || j.H.Crit != nil {
		return nil, errJWE
	}
	if len(j.IV) != aes.BlockSize || len(j.Tag) != tagLen || len(j.CT) == 0 || len(j.CT)%aes.BlockSize != 0 {
		return nil, errJWE
	}
	return &j, nil
}

func (j *jwe) compact() string {
	return j.Header + "." + b64.EncodeToString(j.EncryptedKey) + "." + b64.EncodeToString(j.IV) + "." +
		b64.EncodeToString(j.CT) + "." + b64.EncodeToString(j.Tag)
}

// macCBCHS512 is the authentication tag of RFC 7518 §5.2.2.1: the first 32 bytes of
// HMAC-SHA-512(MAC_KEY, A ‖ IV ‖ E ‖ AL), A the encoded protected header, AL its length in
// bits as a 64-bit big-endian integer.
func macCBCHS512(macKey []byte, hdr string, iv, ct []byte) []byte {
	m := hmac.New(sha512.New, macKey)
	m.Write([]byte(hdr))
	m.Write(iv)
	m.Write(ct)
	var al [8]byte
	binary.BigEndian.PutUint64(al[:], uint64(len(hdr))*8)
	m.Write(al[:])
	return m.Sum(nil)[:tagLen]
}

// sealCBCHS512 encrypts plaintext under cek with A256CBC-HS512 (RFC 7518 §5.2.2.1, §5.2.5):
// PKCS #7 padding, AES-256-CBC under cek[32:] with a random IV, the tag under cek[:32]. It
// composes crypto/aes, crypto/cipher and crypto/hmac as the RFC specifies.
func sealCBCHS512(cek []byte, hdr header, encryptedKey, plaintext []byte) (*jwe, error) {
	if len(cek) != cekLen {
		return nil, errors.New("azsd: an A256CBC-HS512 key is 64 bytes")
	}
	hj, err := json.Marshal(hdr)
	if err != nil {
		return nil, err
	}
	j := &jwe{Header: b64.EncodeToString(hj), H: hdr, EncryptedKey: encryptedKey, IV: make([]byte, aes.BlockSize)}
	if _, err := rand.Read(j.IV); err != nil {
		return nil, err
	}
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	buf := make([]byte, len(plaintext)+pad)
	copy(buf, plaintext)
	for i := len(plaintext); i < len(buf); i++ {
		buf[i] = byte(pad)
	}
	block, err := aes.NewCipher(cek[32:])
	if err != nil {
		return nil, err
	}
	j.CT = make([]byte, len(buf))
	cipher.NewCBCEncrypter(block, j.IV).CryptBlocks(j.CT, buf)
	clear(buf)
	j.Tag = macCBCHS512(cek[:32], j.Header, j.IV, j.CT)
	return j, nil
}

// openCBCHS512 checks the tag (constant time) and only then decrypts and unpads.
func openCBCHS512(cek []byte, j *jwe) ([]byte, error) {
	if len(cek) != cekLen {
		return nil, errJWE
	}
	if !hmac.Equal(macCBCHS512(cek[:32], j.Header, j.IV, j.CT), j.Tag) {
		return nil, errJWE
	}
	block, err := aes.NewCipher(cek[32:])
	if err != nil {
		return nil, errJWE
	}
	pt := make([]byte, len(j.CT))
	cipher.NewCBCDecrypter(block, j.IV).CryptBlocks(pt, j.CT)
	// The tag already proved the ciphertext was made with this key, so the padding is no
	// oracle; it is still checked without branching on its bytes.
	pad := int(pt[len(pt)-1])
	good := subtle.ConstantTimeLessOrEq(1, pad) & subtle.ConstantTimeLessOrEq(pad, aes.BlockSize)
	for i := 1; i <= aes.BlockSize; i++ {
		in := subtle.ConstantTimeLessOrEq(i, pad)
		same := subtle.ConstantTimeByteEq(pt[len(pt)-i], byte(pad))
		good &= same | (in ^ 1)
	}
	if good != 1 {
		clear(pt)
		return nil, errJWE
	}
	return pt[:len(pt)-pad], nil
}

// encryptDir is a compact JWE of plaintext with alg "dir" under the 64-byte key cek, kid
// naming the datum (as the Azure CLI writes the data of a restore blob).
func encryptDir(cek []byte, kid string, plaintext []byte) (string, error) {
	j, err := sealCBCHS512(cek, header{Alg: algDir, Enc: encCBCHS512, Kid: kid}, nil, plaintext)
	if err != nil {
		return "", err
	}
	return j.compact(), nil
}

// decryptDir decrypts a compact JWE with alg "dir" under cek.
func decryptDir(cek []byte, compact string) ([]byte, error) {
	j, err := parseJWE(compact)
	if err != nil || j.H.Alg != algDir || len(j.EncryptedKey) != 0 {
		return nil, errJWE
	}
	return openCBCHS512(cek, j)
}

// encryptRSA is a compact JWE of plaintext with alg RSA-OAEP-256: a random 64-byte content
// key encrypted to pub (OAEP with SHA-256 and MGF1-SHA-256, no label), the plaintext under it.
func encryptRSA(pub *rsa.PublicKey, kid string, plaintext []byte) (string, error) {
	cek := make([]byte, cekLen)
	defer clear(cek)
	if _, err := rand.Read(cek); err != nil {
		return "", err
	}
	ek, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, cek, nil)
	if err != nil {
		return "", err
	}
	j, err := sealCBCHS512(cek, header{Alg: algRSAOAEP256, Enc: encCBCHS512, Kid: kid}, ek, plaintext)
	if err != nil {
		return "", err
	}
	return j.compact(), nil
}

// decryptRSA decrypts a compact JWE with alg RSA-OAEP-256 with priv. Only RSA-OAEP-256 is
// accepted (no RSA1_5: no Bleichenbacher oracle); every failure is the same errJWE.
func decryptRSA(priv *rsa.PrivateKey, compact string) ([]byte, error) {
	j, err := parseJWE(compact)
	if err != nil || j.H.Alg != algRSAOAEP256 {
		return nil, errJWE
	}
	cek, err := rsa.DecryptOAEP(sha256.New(), nil, priv, j.EncryptedKey, nil)
	if err != nil || len(cek) != cekLen {
		clear(cek)
		return nil, errJWE
	}
	defer clear(cek)
	return openCBCHS512(cek, j)
}
