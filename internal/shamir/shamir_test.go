package shamir

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// sharesFromPolynomials builds raw shares by hand: polys[i] holds the coefficients c0..c(t-1) of
// the polynomial for secret byte i (c0 is the secret byte), evaluated at each of xs as the sum
// of cₖ·x^k with the reference multiplication, independently of Split's Horner evaluation.
func sharesFromPolynomials(t *testing.T, polys [][]byte, xs []byte) [][]byte {
	t.Helper()
	shares := make([][]byte, len(xs))
	for s, x := range xs {
		share := make([]byte, len(polys)+1)
		for i, coeffs := range polys {
			var y, pow byte = 0, 1
			for _, c := range coeffs {
				y ^= mulRef(c, pow)
				pow = mulRef(pow, x)
			}
			share[i] = y
		}
		share[len(polys)] = x
		shares[s] = share
	}
	return shares
}

// randomSecret returns n bytes from crypto/rand.
func randomSecret(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// subsets calls fn with every k-element subset of {0..n-1}, in lexicographic order.
func subsets(n, k int, fn func(idx []int)) {
	idx := make([]int, k)
	var rec func(pos, start int)
	rec = func(pos, start int) {
		if pos == k {
			fn(idx)
			return
		}
		for i := start; i <= n-(k-pos); i++ {
			idx[pos] = i
			rec(pos+1, i+1)
		}
	}
	rec(0, 0)
}

func pick(shares [][]byte, idx []int) [][]byte {
	out := make([][]byte, len(idx))
	for i, j := range idx {
		out[i] = shares[j]
	}
	return out
}

func TestCombineHandComputedVectors(t *testing.T) {
	// f(x) = 0x2a + 0x03·x: f(1) = 0x29, f(2) = 0x2a^0x06 = 0x2c, f(3) = 0x2a^0x05 = 0x2f.
	// g(x) = 0x53 + 0xca·x + 0x01·x²: g(1) = 0x98, g(2) = 0x53^0x8f^0x04 = 0xd8,
	// g(3) = 0x53^0x45^0x05 = 0x13.
	tests := []struct {
		name   string
		shares [][]byte
		want   []byte
	}{
		{"ok/degree-1-x1-x2", [][]byte{{0x29, 1}, {0x2c, 2}}, []byte{0x2a}},
		{"ok/degree-1-x3-x1", [][]byte{{0x2f, 3}, {0x29, 1}}, []byte{0x2a}},
		{"ok/degree-1-all-three", [][]byte{{0x29, 1}, {0x2c, 2}, {0x2f, 3}}, []byte{0x2a}},
		{"ok/degree-2-x1-x2-x3", [][]byte{{0x98, 1}, {0xd8, 2}, {0x13, 3}}, []byte{0x53}},
		{"ok/degree-2-reordered", [][]byte{{0x13, 3}, {0x98, 1}, {0xd8, 2}}, []byte{0x53}},
		{"ok/two-bytes", [][]byte{{0x29, 0x98, 1}, {0x2c, 0xd8, 2}, {0x2f, 0x13, 3}}, []byte{0x2a, 0x53}},
		{"ok/single-share", [][]byte{{0x61, 0x62, 0x07}}, []byte{0x61, 0x62}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Combine(tt.shares)
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Errorf("Combine(%x) = %x, %v; want %x", tt.shares, got, err, tt.want)
			}
		})
	}

	// The helper reproduces the hand-computed shares.
	got := sharesFromPolynomials(t, [][]byte{{0x2a, 0x03}, {0x53, 0xca, 0x01}}, []byte{1, 2, 3})
	want := [][]byte{{0x29, 0x98, 1}, {0x2c, 0xd8, 2}, {0x2f, 0x13, 3}}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("sharesFromPolynomials share %d = %x; want %x", i, got[i], want[i])
		}
	}
}

func TestCombineFixedPolynomials(t *testing.T) {
	// Degree-4 polynomials for a 4-byte secret, evaluated at scattered x including 0xff.
	polys := [][]byte{
		{0x00, 0x01, 0x02, 0x03, 0x04},
		{0xff, 0xfe, 0xfd, 0xfc, 0xfb},
		{0x53, 0x00, 0x00, 0x00, 0x00}, // constant polynomial
		{0x7a, 0x11, 0x00, 0x9c, 0x00}, // zero coefficients, including the leading one
	}
	secret := []byte{0x00, 0xff, 0x53, 0x7a}
	xs := []byte{0xff, 0x01, 0x80, 0x53, 0xca, 0x02, 0x7f}
	shares := sharesFromPolynomials(t, polys, xs)
	for k := 5; k <= len(xs); k++ {
		subsets(len(xs), k, func(idx []int) {
			if got, err := Combine(pick(shares, idx)); err != nil || !bytes.Equal(got, secret) {
				t.Errorf("Combine(shares %v) = %x, %v; want %x", idx, got, err, secret)
			}
		})
	}
}

func TestSplitCombineAllSubsets(t *testing.T) {
	tests := []struct {
		name             string
		parts, threshold int
	}{
		{"ok/1-of-1", 1, 1},
		{"ok/2-of-2", 2, 2},
		{"ok/2-of-3", 3, 2},
		{"ok/3-of-3", 3, 3},
		{"ok/2-of-4", 4, 2},
		{"ok/3-of-5", 5, 3},
		{"ok/5-of-5", 5, 5},
		{"ok/2-of-6", 6, 2},
		{"ok/4-of-6", 6, 4},
		{"ok/6-of-6", 6, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// 32 bytes: a subset below the threshold yields the secret by chance with
			// probability 2^-256.
			secret := randomSecret(t, 32)
			shares, err := Split(secret, tt.parts, tt.threshold)
			if err != nil {
				t.Fatalf("Split(%d, %d) = %v", tt.parts, tt.threshold, err)
			}
			checkShareShape(t, shares, tt.parts, len(secret))
			for k := tt.threshold; k <= tt.parts; k++ {
				subsets(tt.parts, k, func(idx []int) {
					if got, err := Combine(pick(shares, idx)); err != nil || !bytes.Equal(got, secret) {
						t.Errorf("Combine(shares %v) = %x, %v; want the secret %x", idx, got, err, secret)
					}
				})
			}
			for k := 1; k < tt.threshold; k++ {
				subsets(tt.parts, k, func(idx []int) {
					if got, err := Combine(pick(shares, idx)); err == nil && bytes.Equal(got, secret) {
						t.Errorf("Combine(shares %v) below threshold %d = the secret", idx, tt.threshold)
					}
				})
			}
		})
	}
}

func TestSplitCombineLarge(t *testing.T) {
	tests := []struct {
		name             string
		parts, threshold int
	}{
		{"ok/2-of-255", 255, 2},
		{"ok/128-of-255", 255, 128},
		{"ok/255-of-255", 255, 255},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret := randomSecret(t, 32)
			shares, err := Split(secret, tt.parts, tt.threshold)
			if err != nil {
				t.Fatalf("Split(%d, %d) = %v", tt.parts, tt.threshold, err)
			}
			checkShareShape(t, shares, tt.parts, len(secret))
			if got, err := Combine(shares); err != nil || !bytes.Equal(got, secret) {
				t.Errorf("Combine(all %d shares) = %x, %v; want %x", tt.parts, got, err, secret)
			}
			last := shares[tt.parts-tt.threshold:]
			if got, err := Combine(last); err != nil || !bytes.Equal(got, secret) {
				t.Errorf("Combine(last %d shares) = %x, %v; want %x", tt.threshold, got, err, secret)
			}
			if got, err := Combine(last[1:]); err == nil && bytes.Equal(got, secret) {
				t.Errorf("Combine(%d shares) below threshold %d = the secret", tt.threshold-1, tt.threshold)
			}
		})
	}
}

// checkShareShape checks that shares are parts slices of secretLen+1 bytes with distinct
// non-zero x-coordinates.
func checkShareShape(t *testing.T, shares [][]byte, parts, secretLen int) {
	t.Helper()
	if len(shares) != parts {
		t.Fatalf("Split returned %d shares; want %d", len(shares), parts)
	}
	seen := map[byte]bool{}
	for i, s := range shares {
		if len(s) != secretLen+1 {
			t.Fatalf("share %d is %d bytes; want %d", i, len(s), secretLen+1)
		}
		x := s[secretLen]
		if x == 0 || seen[x] {
			t.Fatalf("share %d has x-coordinate %d; want non-zero and distinct", i, x)
		}
		seen[x] = true
	}
}

// TestBelowThresholdRevealsNothing checks perfect secrecy for a 3-of-3 split of one byte:
// over all 65536 coefficient choices, the two shares at x = 1 and x = 2 take every pair of
// y-values exactly once, whatever the secret, so two shares say nothing about it. (Forcing the
// leading coefficient non-zero, as Vault does, would break this.) The randomness is scripted:
// zero bytes keep the x-coordinates at 1, 2, 3, then come the coefficients.
func TestBelowThresholdRevealsNothing(t *testing.T) {
	for _, secret := range []byte{0x00, 0x53, 0xff} {
		var seen [256 * 256]bool
		for c := range 256 * 256 {
			random := bytes.NewReader([]byte{0, 0, 0, byte(c), byte(c >> 8)})
			shares, err := split(random, []byte{secret}, 3, 3)
			if err != nil {
				t.Fatal(err)
			}
			if shares[0][1] != 1 || shares[1][1] != 2 {
				t.Fatalf("scripted split gave x-coordinates %d, %d; want 1, 2", shares[0][1], shares[1][1])
			}
			pair := int(shares[0][0])<<8 | int(shares[1][0])
			if seen[pair] {
				t.Fatalf("secret %#02x: share pair (%#02x, %#02x) occurs twice; want every pair once", secret, shares[0][0], shares[1][0])
			}
			seen[pair] = true
		}
	}
}

func TestSplitSingleShareIsSecret(t *testing.T) {
	secret := []byte("dev-mode unseal key")
	shares, err := Split(secret, 1, 1)
	if err != nil {
		t.Fatalf("Split(1, 1) = %v", err)
	}
	checkShareShape(t, shares, 1, len(secret))
	if got := shares[0][:len(secret)]; !bytes.Equal(got, secret) {
		t.Errorf("Split(1, 1) y-values = %q; want the secret %q", got, secret)
	}
}

func TestSplitIsRandomized(t *testing.T) {
	secret := bytes.Repeat([]byte{0x42}, 32)
	a, err := Split(secret, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Split(secret, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		for j := range b {
			if bytes.Equal(a[i][:32], b[j][:32]) {
				t.Errorf("two Splits of one secret share y-values (share %d and %d)", i, j)
			}
		}
	}
	for i, s := range a {
		if bytes.Equal(s[:32], secret) {
			t.Errorf("Split(3, 2) share %d holds the secret in the clear", i)
		}
	}
}

func TestSplitDoesNotModifySecret(t *testing.T) {
	secret := randomSecret(t, 16)
	orig := bytes.Clone(secret)
	if _, err := Split(secret, 5, 3); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(secret, orig) {
		t.Errorf("Split modified its secret argument")
	}
}

// failingReader returns err after n bytes.
type failingReader struct {
	n   int
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	k := min(len(p), r.n)
	r.n -= k
	clear(p[:k]) // zeros: always accepted by the rejection sampler
	return k, nil
}

func TestSplitRandomnessFailure(t *testing.T) {
	errBroken := errors.New("entropy source broken")
	tests := []struct {
		name string
		n    int // bytes the reader gives before failing
	}{
		{"fail/no-randomness", 0},
		{"fail/during-x-coordinates", 2},
		{"fail/during-coefficients", 5 + 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shares, err := split(&failingReader{n: tt.n, err: errBroken}, make([]byte, 16), 5, 3)
			if !errors.Is(err, errBroken) || shares != nil {
				t.Errorf("split(failing reader) = %d shares, %v; want no shares and %v", len(shares), err, errBroken)
			}
		})
	}
}

func TestSplitInvalidParameters(t *testing.T) {
	secret := []byte("secret")
	tests := []struct {
		name             string
		secret           []byte
		parts, threshold int
	}{
		{"fail/nil-secret", nil, 3, 2},
		{"fail/empty-secret", []byte{}, 3, 2},
		{"fail/empty-secret-single-share", []byte{}, 1, 1},
		{"fail/zero-zero", secret, 0, 0},
		{"fail/negative", secret, -1, -1},
		{"fail/threshold-0", secret, 3, 0},
		{"fail/threshold-1-of-2", secret, 2, 1},
		{"fail/threshold-1-of-10", secret, 10, 1},
		{"fail/threshold-above-parts", secret, 2, 3},
		{"fail/one-part-threshold-2", secret, 1, 2},
		{"fail/parts-256", secret, 256, 2},
		{"fail/parts-and-threshold-256", secret, 256, 256},
		{"fail/parts-1000", secret, 1000, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shares, err := Split(tt.secret, tt.parts, tt.threshold)
			if !errors.Is(err, ErrInvalidParameters) || shares != nil {
				t.Errorf("Split(%q, %d, %d) = %d shares, %v; want ErrInvalidParameters",
					tt.secret, tt.parts, tt.threshold, len(shares), err)
			}
		})
	}
}

func TestCombineInvalid(t *testing.T) {
	tests := []struct {
		name   string
		shares [][]byte
		want   error
	}{
		{"fail/nil", nil, ErrTooFewShares},
		{"fail/no-shares", [][]byte{}, ErrTooFewShares},
		{"fail/empty-share", [][]byte{{}}, ErrInvalidShare},
		{"fail/one-byte-share", [][]byte{{0x01}}, ErrInvalidShare},
		{"fail/one-byte-shares", [][]byte{[]byte("f"), []byte("b")}, ErrInvalidShare},
		{"fail/length-mismatch", [][]byte{[]byte("foo"), []byte("ba")}, ErrInvalidShare},
		{"fail/length-mismatch-later", [][]byte{{1, 1}, {2, 2}, {3, 3, 3}}, ErrInvalidShare},
		{"fail/zero-x", [][]byte{{0x29, 0}, {0x2c, 2}}, ErrInvalidShare},
		{"fail/single-share-zero-x", [][]byte{{0x29, 0}}, ErrInvalidShare},
		{"fail/identical-shares", [][]byte{[]byte("foo"), []byte("foo")}, ErrDuplicateShare},
		{"fail/duplicate-x", [][]byte{{0x29, 1}, {0x2c, 2}, {0x2f, 1}}, ErrDuplicateShare},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Combine(tt.shares)
			if !errors.Is(err, tt.want) || got != nil {
				t.Errorf("Combine(%x) = %x, %v; want %v", tt.shares, got, err, tt.want)
			}
		})
	}
}

func TestCombineErrorsOmitShareBytes(t *testing.T) {
	a := []byte("SECRET-Y-VALUES-A\xf1")
	b := []byte("SECRET-Y-VALUES-B\xf1") // duplicate x
	c := []byte("SECRET-Y-VALUES\x00")   // other length, zero x
	for _, shares := range [][][]byte{{a, b}, {a, c}, {c, c}, {c}} {
		_, err := Combine(shares)
		if err == nil {
			t.Fatalf("Combine(%q) = nil error; want an error", shares)
		}
		msg := err.Error()
		for _, s := range shares {
			for _, leak := range []string{string(s[:len(s)-1]), fmt.Sprintf("%x", s[:4]), fmt.Sprint(s[:4]), "SECRET", "241", "f1"} {
				if strings.Contains(msg, leak) {
					t.Errorf("Combine error %q contains share bytes %q", msg, leak)
				}
			}
		}
	}
}

// TestCorruptedRawShareYieldsWrongSecret documents that Combine cannot detect a damaged share:
// a flipped y-bit in one share changes exactly that byte of the result, by δ·lᵢ(0) ≠ 0, and
// Combine reports no error. Detection is the caller's job: the barrier opens the root key with
// the combined key under AES-256-GCM, which fails for any wrong key.
func TestCorruptedRawShareYieldsWrongSecret(t *testing.T) {
	secret := randomSecret(t, 32)
	shares, err := Split(secret, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	for pos := range secret {
		for bit := range 8 {
			bad := bytes.Clone(shares[1])
			bad[pos] ^= 1 << bit
			got, err := Combine([][]byte{shares[0], bad, shares[4]})
			if err != nil {
				t.Fatalf("Combine(y-byte %d bit %d flipped) = %v; want a wrong secret and no error", pos, bit, err)
			}
			for i := range secret {
				if (got[i] != secret[i]) != (i == pos) {
					t.Fatalf("Combine(y-byte %d bit %d flipped) differs from the secret at %d; want only at %d", pos, bit, i, pos)
				}
			}
		}
	}

	// A damaged x-coordinate is either caught (zero or duplicate) or gives a wrong secret.
	for bit := range 8 {
		bad := bytes.Clone(shares[1])
		bad[len(secret)] ^= 1 << bit
		got, err := Combine([][]byte{shares[0], bad, shares[4]})
		if err == nil && bytes.Equal(got, secret) {
			t.Errorf("Combine(x-coordinate bit %d flipped) = the secret; want an error or a wrong secret", bit)
		}
	}
}

func TestCombineLeavesInputsAlone(t *testing.T) {
	secret := randomSecret(t, 8)
	shares, err := Split(secret, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 3} {
		in := shares[:n]
		before := make([][]byte, n)
		for i := range in {
			before[i] = bytes.Clone(in[i])
		}
		got, err := Combine(in)
		if err != nil {
			t.Fatal(err)
		}
		clear(got)
		for i := range in {
			if !bytes.Equal(in[i], before[i]) {
				t.Errorf("Combine(%d shares) changed share %d, or its result aliases it", n, i)
			}
		}
	}
}

func TestUniformIsUnbiased(t *testing.T) {
	// Every byte value once: uniform must accept exactly the multiple of n below 256 and map
	// each residue the same number of times.
	for _, n := range []int{1, 2, 3, 7, 100, 255, 256} {
		var all [256]byte
		for i := range all {
			all[i] = byte(i)
		}
		r := bytes.NewReader(all[:])
		counts := make([]int, n)
		for {
			v, err := uniform(r, n)
			if err == io.EOF {
				break
			}
			if err != nil || v < 0 || v >= n {
				t.Fatalf("uniform(%d) = %d, %v", n, v, err)
			}
			counts[v]++
		}
		for v, c := range counts {
			if c != 256/n {
				t.Errorf("uniform(%d) gave %d %d times out of 256 bytes; want %d", n, v, c, 256/n)
			}
		}
	}
}

func BenchmarkSplit(b *testing.B) {
	secret := make([]byte, 32)
	for b.Loop() {
		if _, err := Split(secret, 5, 3); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCombine(b *testing.B) {
	shares, err := Split(make([]byte, 32), 5, 3)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Combine(shares[:3]); err != nil {
			b.Fatal(err)
		}
	}
}
