package pkcs11

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/provider"
)

// TestGCMIVsDistinct (SECURITY-NOTES C4): the IVs of an oct-HSM key's AES-GCM encryptions
// never repeat. Through the token the test makes COFFER_GCM_TOKEN_IVS encryptions (default
// 10^4, about 0.3 s; 10^6 took 44 s on the shared 2-core machine, too long for every run:
// docs/SECURITY.md has the figures), and it draws 10^6 IVs from newGCMIV, the function
// the encrypt path takes them from (about 1 s).
func TestGCMIVsDistinct(t *testing.T) {
	n := 10_000
	if s := os.Getenv("COFFER_GCM_TOKEN_IVS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatalf("COFFER_GCM_TOKEN_IVS=%q: %v", s, err)
		}
	}
	p := newToken(t)
	ctx := context.Background()
	k, err := p.Generate(ctx, provider.KeySpec{Type: provider.OctHSM, Size: 256})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[[gcmIVLen]byte]int, n)
	start := time.Now()
	for i := range n {
		r, err := k.Encrypt(ctx, provider.EncryptParams{Algorithm: provider.AlgA256GCM, Value: []byte("m")})
		if err != nil {
			t.Fatalf("Encrypt #%d = %v", i+1, err)
		}
		if len(r.IV) != gcmIVLen {
			t.Fatalf("Encrypt #%d: iv of %d bytes; want %d", i+1, len(r.IV), gcmIVLen)
		}
		seen[[gcmIVLen]byte(r.IV)]++
	}
	t.Logf("through the token: %d encryptions in %v, %d distinct IVs", n, time.Since(start).Round(time.Millisecond), len(seen))
	if len(seen) != n {
		t.Errorf("through the token: %d encryptions gave %d distinct IVs; want %d (0 repeats)", n, len(seen), n)
	}

	const m = 1_000_000
	seen = make(map[[gcmIVLen]byte]int, m)
	start = time.Now()
	for range m {
		iv, err := newGCMIV()
		if err != nil {
			t.Fatal(err)
		}
		seen[[gcmIVLen]byte(iv)]++
	}
	t.Logf("newGCMIV: %d IVs in %v, %d distinct", m, time.Since(start).Round(time.Millisecond), len(seen))
	if len(seen) != m {
		t.Errorf("newGCMIV: %d IVs, %d distinct; want %d (0 repeats)", m, len(seen), m)
	}
}
