package malformed

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"

	"github.com/coffer-kms/coffer/internal/keywrap"
)

// The builders against the standard library and keywrap: unmutated, they make what a
// correct encryption makes; mutated, the reference refuses it.
func TestBuildersAgainstReferences(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("sixteen byte key")
	ct := Textbook(&priv.PublicKey, OAEPBlock(sha256.New(), priv.Size(), msg, nil))
	if pt, err := rsa.DecryptOAEP(sha256.New(), nil, priv, ct, nil); err != nil || !bytes.Equal(pt, msg) {
		t.Errorf("OAEPBlock unmutated: DecryptOAEP = %q, %v", pt, err)
	}
	bad := Textbook(&priv.PublicKey, OAEPBlock(sha256.New(), priv.Size(), msg, func(_ *byte, db []byte) { db[0] ^= 1 }))
	if _, err := rsa.DecryptOAEP(sha256.New(), nil, priv, bad, nil); err == nil {
		t.Error("OAEPBlock with a wrong lHash decrypted")
	}

	kek := bytes.Repeat([]byte{7}, 32)
	p := bytes.Repeat([]byte{9}, 24)
	want, _ := keywrap.Wrap(kek, p)
	if got := KeyWrap(kek, [8]byte{0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6}, p); !bytes.Equal(got, want) {
		t.Errorf("KeyWrap(default iv) = %x; want keywrap.Wrap's %x", got, want)
	}
	five := []byte{1, 2, 3, 4, 5}
	wantPad, _ := keywrap.WrapPad(kek, five)
	if got := KeyWrap(kek, [8]byte{0xa6, 0x59, 0x59, 0xa6, 0, 0, 0, 5}, append(five, 0, 0, 0)); !bytes.Equal(got, wantPad) {
		t.Errorf("KeyWrap(one semiblock, RFC 5649 AIV) = %x; want keywrap.WrapPad's %x", got, wantPad)
	}
	if _, err := keywrap.Unwrap(kek, KeyWrap(kek, [8]byte{0xa6}, p)); err == nil {
		t.Error("a wrap with another iv unwrapped")
	}
}
