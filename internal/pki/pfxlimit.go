package pki

import (
	"encoding/asn1"
	"fmt"
	"math/big"
)

// MaxPFXIterations caps the key-derivation iteration counts of an imported PFX. go-pkcs12
// runs whatever count the file names, so without a cap one request could pin a core for
// minutes. Common tools use 2,000 to 600,000.
const MaxPFXIterations = 1_000_000

// maxASN1Depth bounds the nesting checkIterations descends into.
const maxASN1Depth = 24

// checkIterations walks the readable DER of a PFX (descending into OCTET STRINGs that hold
// DER, such as the authenticated safe) and refuses it if any iteration count is above
// MaxPFXIterations. An iteration count is an INTEGER that follows an OCTET STRING (salt)
// inside a SEQUENCE: MacData, PKCS#12 PBE parameters and PBKDF2 parameters all have that
// shape. Parameters inside encrypted content are not visible here. Malformed DER is left
// for the PFX decoder to report.
func checkIterations(der []byte, depth int) error {
	if depth > maxASN1Depth {
		return nil
	}
	for rest := der; len(rest) > 0; {
		var v asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &v); err != nil {
			return nil
		}
		switch {
		case v.IsCompound:
			if err := checkSequence(v, depth); err != nil {
				return err
			}
		case v.Class == asn1.ClassUniversal && v.Tag == asn1.TagOctetString:
			if err := checkIterations(v.Bytes, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkSequence(v asn1.RawValue, depth int) error {
	prevSalt := false
	for rest := v.Bytes; len(rest) > 0; {
		var c asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &c); err != nil {
			return nil
		}
		universal := c.Class == asn1.ClassUniversal
		if prevSalt && universal && c.Tag == asn1.TagInteger && v.Class == asn1.ClassUniversal && v.Tag == asn1.TagSequence {
			var n *big.Int
			if _, err := asn1.Unmarshal(c.FullBytes, &n); err == nil && n.Cmp(big.NewInt(MaxPFXIterations)) > 0 {
				return fmt.Errorf("%w: the PFX asks for %s key-derivation iterations, more than the %d allowed: export it again with fewer (openssl pkcs12 -export -iter 2048)", ErrCorrupt, n, MaxPFXIterations)
			}
		}
		prevSalt = universal && c.Tag == asn1.TagOctetString
		if err := checkIterations(c.FullBytes, depth+1); err != nil {
			return err
		}
	}
	return nil
}
