package keys

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/coffer-kms/coffer/internal/provider"
)

// FuzzReleaseParams decodes arbitrary release bodies as the api layer does and checks the
// request validation: it never panics, and what it accepts has a target within bounds and
// a known wrapping algorithm.
func FuzzReleaseParams(f *testing.F) {
	for _, s := range []string{`{"target":"a.b.c"}`, `{"target":"x","enc":"RSA_AES_KEY_WRAP_256","nonce":"n"}`, `{"target":""}`,
		`{"target":"x","enc":"rsa_aes_key_wrap_256"}`, `{}`, `[]`, `{"target":"x","enc":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		var p ReleaseParams
		if dec.Decode(&p) != nil {
			return
		}
		enc, err := checkReleaseParams(&p)
		if err != nil {
			return
		}
		if _, ok := provider.TransferHash(enc); !ok || p.Target == "" || len(p.Target) > MaxReleaseTarget || len(p.Nonce) > MaxReleaseNonce {
			t.Fatalf("checkReleaseParams accepted %+v (enc %q)", p, enc)
		}
	})
}
