package token

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/storage/mem"
)

func TestSignClaims(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s, err := NewSigner(mem.New(), "k", func() time.Time { return now }, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]any{"iss": "https://p.attest.example", "x-ms-attestation-type": "sim", "x-ms-runtime": map[string]any{"keys": []any{}}}
	raw, err := s.SignClaims(in)
	if err != nil {
		t.Fatalf("SignClaims = %v", err)
	}
	if _, ok := in["exp"]; ok {
		t.Errorf("SignClaims modified its argument")
	}
	c, err := VerifyClaims(raw, s.KeySet())
	if err != nil {
		t.Fatalf("VerifyClaims = %v", err)
	}
	if c["x-ms-attestation-type"] != "sim" || c["exp"] != json.Number("1700001800") || c["iat"] != json.Number("1700000000") || c["jti"] == "" {
		t.Errorf("claims = %v", c)
	}
	if _, err := VerifyClaims(tamperPayload(raw), s.KeySet()); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("VerifyClaims(tampered) = %v; want ErrInvalidToken", err)
	}
	for _, bad := range []map[string]any{{"x": 1}, {"iss": "i", "exp": 1}, {"iss": "i", "jti": "j"}} {
		if _, err := s.SignClaims(bad); err == nil {
			t.Errorf("SignClaims(%v) = nil; want an error", bad)
		}
	}
}

// tamperPayload flips one character of the payload segment.
func tamperPayload(raw string) string {
	b := []byte(raw)
	for i := range b {
		if b[i] == '.' {
			if b[i+1] == 'A' {
				b[i+1] = 'B'
			} else {
				b[i+1] = 'A'
			}
			break
		}
	}
	return string(b)
}
