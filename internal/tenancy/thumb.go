package tenancy

import (
	"crypto/sha1" // #nosec G505 -- x5t thumbprints are SHA-1 by definition (RFC 7515 §4.1.7); not used for security
	"encoding/hex"
)

func thumbprintSHA1(der []byte) string {
	s := sha1.Sum(der)
	return hex.EncodeToString(s[:])
}
