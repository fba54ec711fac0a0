package barrier

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// recordVersion1 is the only sealed-record format so far; see docs/FORMAT.md.
//
//	term (4 bytes, big endian) ‖ version (1 byte) ‖ nonce (12 bytes) ‖ AES-256-GCM ciphertext ‖ tag (16 bytes)
//	associated data = term ‖ version ‖ "coffer/barrier/v1" ‖ 0x00 ‖ path
const recordVersion1 = 1

const (
	termLen    = 4
	headerLen  = termLen + 1
	nonceLen   = 12
	tagLen     = 16
	overhead   = headerLen + nonceLen + tagLen
	aadContext = "coffer/barrier/v1\x00"
)

// ErrIntegrity is wrapped by every error that reports a record that cannot be trusted:
// modified, truncated, moved from another path, or sealed under a term this keyring lacks.
var ErrIntegrity = errors.New("barrier: record failed integrity check")

// newAEAD returns AES-256-GCM under key.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("barrier: key is %d bytes, want 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// recordAAD appends to buf the associated data that binds a record to its header and path.
func recordAAD(buf []byte, header []byte, path string) []byte {
	buf = append(buf, header...)
	buf = append(buf, aadContext...)
	return append(buf, path...)
}

func aadLen(path string) int { return headerLen + len(aadContext) + len(path) }

// sealRecord encrypts plaintext for path under term with aead. The record and its
// associated data share one allocation (the AAD lives past the record's capacity).
func sealRecord(aead cipher.AEAD, term uint32, path string, plaintext []byte) ([]byte, error) {
	n := overhead + len(plaintext)
	buf := make([]byte, n+aadLen(path))
	out := buf[: headerLen+nonceLen : n]
	binary.BigEndian.PutUint32(out, term)
	out[termLen] = recordVersion1
	if _, err := rand.Read(out[headerLen:]); err != nil {
		return nil, fmt.Errorf("barrier: read random nonce: %w", err)
	}
	aad := recordAAD(buf[n:n], out[:headerLen], path)
	return aead.Seal(out, out[headerLen:headerLen+nonceLen], plaintext, aad), nil
}

// recordTerm parses the header of a sealed record and returns its keyring term.
func recordTerm(path string, record []byte) (uint32, error) {
	if len(record) < overhead {
		return 0, fmt.Errorf("%w: record %q is truncated (%d bytes, a sealed record has at least %d)", ErrIntegrity, path, len(record), overhead)
	}
	if v := record[termLen]; v != recordVersion1 {
		return 0, fmt.Errorf("%w: record %q has unknown format version %d", ErrIntegrity, path, v)
	}
	return binary.BigEndian.Uint32(record), nil
}

// openRecord decrypts a record that recordTerm accepted, with the AEAD of its term.
func openRecord(aead cipher.AEAD, path string, record []byte) ([]byte, error) {
	n := len(record) - overhead
	buf := make([]byte, n+aadLen(path))
	aad := recordAAD(buf[n:n], record[:headerLen], path)
	pt, err := aead.Open(buf[:0:n], record[headerLen:headerLen+nonceLen], record[headerLen+nonceLen:], aad)
	if err != nil {
		return nil, fmt.Errorf("%w: record %q failed authentication: it was modified, moved from another path, or sealed by another keyring", ErrIntegrity, path)
	}
	if pt == nil {
		pt = []byte{} // an empty value is not "no value"
	}
	return pt, nil
}
