package shamir

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// ErrCorruptShare is returned by DecodeShare for text that is not a share as EncodeShare writes
// it: not base64, too short, or failing its checksum, which is what a mistyped character, a
// dropped character or a share from another tool looks like.
var ErrCorruptShare = errors.New("share is corrupt: enter it again exactly as it was issued")

// checksumDomain separates share checksums from every other SHA-256 use; a new share text
// format gets a new domain, so its shares fail this version's checksum rather than decode
// wrongly.
const checksumDomain = "coffer-shamir-share-v1"

// checksumLen is the number of SHA-256 bytes appended to a raw share.
const checksumLen = 4

// shareEncoding is standard base64 without padding; decoding is strict, so a changed
// character in the last group cannot hide in unused bits.
var shareEncoding = base64.RawStdEncoding.Strict()

// EncodeShare returns the text form of a raw share from Split, for handing to a person:
// standard base64 (RFC 4648 alphabet, without "=" padding) of raw ‖ checksum, where checksum
// is the first 4 bytes of SHA-256("coffer-shamir-share-v1" ‖ raw). The checksum lets
// DecodeShare reject a mistyped share before it is used; it is not a MAC.
func EncodeShare(raw []byte) string {
	buf := make([]byte, 0, len(raw)+checksumLen)
	buf = append(buf, raw...)
	sum := checksum(raw)
	buf = append(buf, sum[:]...)
	s := shareEncoding.EncodeToString(buf)
	clear(buf)
	return s
}

// DecodeShare returns the raw share in s, the text form written by EncodeShare. Whitespace
// anywhere in s (line breaks, spaces between groups) is ignored, and so is trailing "="
// padding. Every failure wraps ErrCorruptShare: text that is not base64, a share too short to
// hold a y-value, an x-coordinate and the checksum, a checksum mismatch, or an x-coordinate of
// zero. Errors never contain any part of s.
func DecodeShare(s string) ([]byte, error) {
	s = strings.TrimRight(strings.Join(strings.FieldsFunc(s, unicode.IsSpace), ""), "=")
	if s == "" {
		return nil, fmt.Errorf("%w: it is empty", ErrCorruptShare)
	}
	buf, err := shareEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: it is not valid base64", ErrCorruptShare)
	}
	defer clear(buf)
	if len(buf) < 2+checksumLen {
		return nil, fmt.Errorf("%w: it is too short", ErrCorruptShare)
	}
	raw, got := buf[:len(buf)-checksumLen], buf[len(buf)-checksumLen:]
	want := checksum(raw)
	if subtle.ConstantTimeCompare(got, want[:]) != 1 {
		return nil, fmt.Errorf("%w: its checksum does not match (a character is wrong, missing or extra)", ErrCorruptShare)
	}
	if raw[len(raw)-1] == 0 {
		return nil, fmt.Errorf("%w: its x-coordinate is 0", ErrCorruptShare)
	}
	return append([]byte(nil), raw...), nil
}

// checksum returns the first checksumLen bytes of SHA-256(checksumDomain ‖ raw).
func checksum(raw []byte) [checksumLen]byte {
	h := sha256.New()
	h.Write([]byte(checksumDomain))
	h.Write(raw)
	var sum [checksumLen]byte
	copy(sum[:], h.Sum(nil))
	return sum
}
