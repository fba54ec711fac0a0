package keys

import (
	"errors"
	"testing"

	"github.com/coffer-kms/coffer/internal/provider"
)

// FuzzParseTransfer: key_hsm is attacker-controlled; parsing never panics, fails only with
// ErrBadParameter, and what it accepts has a known enc and a bounded ciphertext.
func FuzzParseTransfer(f *testing.F) {
	f.Add([]byte(`{"schema_version":"1.0.0","header":{"kid":"https://v/keys/k/1","alg":"dir","enc":"CKM_RSA_AES_KEY_WRAP"},"ciphertext":"AAEC","generator":"x"}`))
	f.Add([]byte(`{"schema_version":"1.0.0","header":null,"ciphertext":"AAEC"}`))
	f.Add([]byte(`{"schema_version":"1.0.0","header":{"alg":"dir","enc":"RSA_AES_KEY_WRAP_256"},"ciphertext":"AA=="}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		blob, h, err := parseTransfer(b)
		if err != nil {
			if !errors.Is(err, ErrBadParameter) || blob != nil {
				t.Fatalf("parseTransfer = %v, %v", blob, err)
			}
			return
		}
		if want, ok := provider.TransferHash(blob.Header.Enc); !ok || want != h || blob.Header.Alg != "dir" ||
			len(blob.Ciphertext) == 0 || len(blob.Ciphertext) > maxTransferCiphertext {
			t.Fatalf("parseTransfer accepted %+v", blob)
		}
	})
}
