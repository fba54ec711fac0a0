package attest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
)

var b64u = base64.RawURLEncoding

// runtimeJSON returns runtime data holding one fresh RSA-2048 public key.
func runtimeJSON(t testing.TB) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return runtimeFor(t, map[string]any{"kty": "RSA", "kid": "tee-key", "n": b64u.EncodeToString(k.N.Bytes()), "e": b64u.EncodeToString(big.NewInt(int64(k.E)).Bytes())})
}

func runtimeFor(t testing.TB, jwks ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": jwks})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantCode checks that err is an *Error with code and a message containing msg.
func wantCode(t *testing.T, err error, code, msg string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Code != code || !strings.Contains(e.Message, msg) {
		t.Fatalf("error = %v; want %s containing %q", err, code, msg)
	}
}
