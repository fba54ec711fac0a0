package soft

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	k1ecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// TestSignK1MatchesDecred: without hedging, the blinded signer produces exactly decred's
// RFC 6979 signatures (the blinding changes how k·G and k⁻¹ are computed, not their values);
// with hedging, signatures of one digest differ and verify with decred.
func TestSignK1MatchesDecred(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 30
	}
	for i := 0; i < n; i++ {
		priv, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		digest := make([]byte, 32)
		_, _ = rand.Read(digest)
		if i == 0 {
			digest = make([]byte, 32) // the zero digest too
		}
		ours, err := signK1(priv, digest, nil)
		if err != nil {
			t.Fatal(err)
		}
		sig := k1ecdsa.Sign(priv, digest)
		r, s := sig.R(), sig.S()
		want := make([]byte, 64)
		r.PutBytesUnchecked(want[:32])
		s.PutBytesUnchecked(want[32:])
		if !bytes.Equal(ours, want) {
			t.Fatalf("signK1(extra=nil) differs from decred's ecdsa.Sign for key %d", i)
		}
		h1, _ := signK1(priv, digest, randomExtra())
		h2, _ := signK1(priv, digest, randomExtra())
		if bytes.Equal(h1, h2) || bytes.Equal(h1, ours) {
			t.Fatalf("hedged signatures repeat")
		}
		for _, h := range [][]byte{h1, h2} {
			if !verifyK1(priv.PubKey(), digest, h) {
				t.Fatalf("hedged signature does not verify")
			}
		}
	}
}

// TestK1PublicKeyBlinded: the blinded d·G equals decred's.
func TestK1PublicKeyBlinded(t *testing.T) {
	for i := 0; i < 100; i++ {
		priv, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		pub, err := k1PublicKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		if !pub.IsEqual(priv.PubKey()) {
			t.Fatalf("blinded d·G differs from decred's PubKey()")
		}
	}
	// Small scalars, where the unblinded table walk would be shortest.
	for _, d := range []byte{1, 2, 3} {
		var b [32]byte
		b[31] = d
		k, err := k1KeyFromScalar(b[:])
		if err != nil {
			t.Fatal(err)
		}
		if !k.k1.IsEqual(secp256k1.PrivKeyFromBytes(b[:]).PubKey()) {
			t.Fatalf("blinded %d·G is wrong", d)
		}
	}
	digest := sha256.Sum256(nil)
	if _, err := signK1(secp256k1.PrivKeyFromBytes([]byte{1}), digest[:], randomExtra()); err != nil {
		t.Fatal(err)
	}
}
