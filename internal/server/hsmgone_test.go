package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	p11 "github.com/miekg/pkcs11"
)

// removeToken makes the SoftHSM2 token of softHSMToken disappear under the running server:
// its files are deleted and every session of the process is closed (C_CloseAllSessions
// through a second handle on the same library).
func removeToken(t *testing.T) {
	t.Helper()
	conf, err := os.ReadFile(os.Getenv("SOFTHSM2_CONF"))
	if err != nil {
		t.Fatal(err)
	}
	dir := ""
	for _, line := range strings.Split(string(conf), "\n") {
		if v, ok := strings.CutPrefix(line, "directories.tokendir = "); ok {
			dir = v
		}
	}
	c, slot := softHSMSlot(t, "coffer")
	defer c.Destroy() // dlclose only: the server still holds the library (no C_Finalize here)
	if err := c.CloseAllSessions(slot); err != nil {
		t.Fatal(err)
	}
	if dir == "" {
		t.Fatal("no token directory in SOFTHSM2_CONF")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

// softHSMSlot opens a second handle on the SoftHSM2 library the server uses (already
// initialized by the server's provider) and finds the slot of the token labelled label.
// The caller destroys the handle, which only dlcloses: no C_Finalize under the server.
func softHSMSlot(t *testing.T, label string) (*p11.Ctx, uint) {
	t.Helper()
	c := p11.New(softhsmLib)
	if c == nil {
		t.Fatal("cannot load SoftHSM2")
	}
	_ = c.Initialize()
	slots, err := c.GetSlotList(true)
	if err != nil {
		c.Destroy()
		t.Fatal(err)
	}
	for _, s := range slots {
		if ti, err := c.GetTokenInfo(s); err == nil && strings.TrimRight(ti.Label, " \x00") == label {
			return c, s
		}
	}
	c.Destroy()
	t.Fatalf("no token labelled %q", label)
	return nil, 0
}

// TestHSMGoneDuringDecrypt: when the token disappears, decrypt and unwrapKey with HSM keys
// answer 503 ServiceUnavailable (retry later), not 400 (which would blame the ciphertext),
// with no PKCS#11 text in the body.
func TestHSMGoneDuringDecrypt(t *testing.T) {
	ts := startDev(t, softHSMToken(t)...)
	ctx := context.Background()
	cred, hc := devCredential(t, ts, ts.Dev.Credentials.ClientSecret)
	c := noRetryKeys(t, ts.Dev.Credentials.VaultURL, cred, hc)
	if _, err := c.CreateKey(ctx, "rsa", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateKey(ctx, "aes", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeOctHSM), KeySize: to.Ptr(int32(256))}, nil); err != nil {
		t.Fatal(err)
	}
	oaep := azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP), Value: []byte("x")}
	rct, err := c.Encrypt(ctx, "rsa", "", oaep, nil)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := c.Encrypt(ctx, "aes", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256GCM), Value: []byte("x")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kw, err := c.WrapKey(ctx, "aes", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256KW), Value: make([]byte, 32)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	removeToken(t)
	calls := map[string]func() error{
		"rsa-decrypt": func() error {
			_, err := c.Decrypt(ctx, "rsa", "", azkeys.KeyOperationParameters{Algorithm: oaep.Algorithm, Value: rct.Result}, nil)
			return err
		},
		"rsa-unwrap": func() error {
			_, err := c.UnwrapKey(ctx, "rsa", "", azkeys.KeyOperationParameters{Algorithm: oaep.Algorithm, Value: rct.Result}, nil)
			return err
		},
		"gcm-decrypt": func() error {
			_, err := c.Decrypt(ctx, "aes", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256GCM), Value: gcm.Result, IV: gcm.IV, AuthenticationTag: gcm.AuthenticationTag}, nil)
			return err
		},
		"kw-unwrap": func() error {
			_, err := c.UnwrapKey(ctx, "aes", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256KW), Value: kw.Result}, nil)
			return err
		},
	}
	for i := 0; i < 2; i++ {
		for name, call := range calls {
			err := call()
			wantCode(t, err, 503, "ServiceUnavailable")
			if b := errorBody(t, err); strings.Contains(string(b), "CKR_") {
				t.Errorf("%s: 503 body names a PKCS#11 return value: %s", name, b)
			}
		}
	}
}
