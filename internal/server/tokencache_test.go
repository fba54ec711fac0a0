package server

import (
	"crypto/sha256"
	"strings"
	"testing"
)

// TestCacheKey: the token cache key is SHA-256 of token, tenant and resource joined by NUL
// (none of which can hold one), the same for the same inputs and different when any part
// differs; the pooled scratch buffer never leaks one request's token into another's key.
func TestCacheKey(t *testing.T) {
	want := sha256.Sum256([]byte("tok\x00ten\x00https://localhost:1"))
	if got := cacheKey("tok", "ten", "https://localhost:1"); got != want {
		t.Fatalf("cacheKey = %x; want %x", got, want)
	}
	long := strings.Repeat("x", 5000) // bigger than the pooled buffer
	a := cacheKey(long, "ten", "r")
	if b := cacheKey("tok", "ten", "r"); b == a || b != cacheKey("tok", "ten", "r") {
		t.Error("cacheKey is not a function of its inputs")
	}
	for _, k := range [][3]string{{"tok2", "ten", "r"}, {"tok", "ten2", "r"}, {"tok", "ten", "r2"}} {
		if cacheKey(k[0], k[1], k[2]) == cacheKey("tok", "ten", "r") {
			t.Errorf("cacheKey%v equals cacheKey(tok, ten, r)", k)
		}
	}
}
