package server

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"math/big"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/coffer-kms/coffer/internal/provider/pkcs11/softhsm"
)

const softhsmLib = softhsm.Library

// softHSMToken makes a fresh SoftHSM2 token (label coffer, PIN in a file) and returns the
// server flags that use it; it skips when SoftHSM2 is not installed. Each extra label makes
// one more token with the same PIN in the same SOFTHSM2_CONF (for pkcs11-pool-tokens).
func softHSMToken(t *testing.T, extra ...string) []string {
	t.Helper()
	tok, err := softhsm.Init(t.TempDir(), "4321", "8765", append([]string{"coffer"}, extra...)...)
	if errors.Is(err, softhsm.ErrNotInstalled) {
		t.Skipf("%v; install opensc too to run the HSM tests", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", tok.Conf)
	return []string{"--pkcs11-library", softhsmLib, "--pkcs11-token-label", "coffer", "--pkcs11-pin-file", tok.PINFile}
}

// softHSMTokenSO is softHSMToken with the tokens' security officer PIN configured
// (pkcs11-so-pin-file): pools' keys are then wrapped by their security domain.
func softHSMTokenSO(t *testing.T, extra ...string) []string {
	t.Helper()
	flags := softHSMToken(t, extra...)
	return append(flags, "--pkcs11-so-pin-file", filepath.Join(filepath.Dir(flags[len(flags)-1]), "so-pin"))
}

// TestHSMKeysLiveInTheToken: with a PKCS#11 token configured, an RSA-HSM key created through
// azkeys in the managed HSM pool is generated in the token (the token lists a private key
// object for it) and signs there; software key types still work in vaults.
func TestHSMKeysLiveInTheToken(t *testing.T) {
	flags := softHSMToken(t)
	ts := startDev(t, flags...)
	ctx := context.Background()
	cred, hc := devCredential(t, ts, ts.Dev.Credentials.ClientSecret)
	pool, err := azkeys.NewClient(ts.Dev.Credentials.ManagedHSMURL, cred, &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: hc}})
	if err != nil {
		t.Fatal(err)
	}
	k, err := pool.CreateKey(ctx, "hsm-rsa", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM), KeySize: to.Ptr(int32(2048))}, nil)
	if err != nil {
		t.Fatalf("CreateKey(RSA-HSM) = %v", err)
	}
	if *k.Key.Kty != azkeys.KeyTypeRSAHSM || k.Key.D != nil {
		t.Fatalf("key = %+v; want RSA-HSM with no private part", k.Key)
	}
	digest := sha256.Sum256([]byte("in the token"))
	sig, err := pool.Sign(ctx, "hsm-rsa", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmPS256), Value: digest[:]}, nil)
	if err != nil {
		t.Fatalf("Sign = %v", err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(k.Key.N), E: int(new(big.Int).SetBytes(k.Key.E).Int64())}
	if err := rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig.Result, nil); err != nil {
		t.Errorf("the token's signature does not verify: %v", err)
	}
	// The private key is an object of the token.
	if tool, err := exec.LookPath("pkcs11-tool"); err == nil {
		out, err := exec.Command(tool, "--module", softhsmLib, "--token-label", "coffer", "--login", "--pin", "4321", "--list-objects", "--type", "privkey").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "coffer-") {
			t.Errorf("pkcs11-tool --list-objects = %v\n%s; want a coffer- private key", err, out)
		}
	}
	// In the pool a plain EC request makes an EC-HSM key, as Managed HSM does.
	ec, err := pool.CreateKey(ctx, "hsm-ec", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC)}, nil)
	if err != nil || *ec.Key.Kty != azkeys.KeyTypeECHSM {
		t.Errorf("CreateKey(EC) in the pool = %v, %v; want EC-HSM", ec.Key, err)
	}
	// Software key types still work in vaults.
	if _, err := keysClient(t, ts).CreateKey(ctx, "soft", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC)}, nil); err != nil {
		t.Errorf("software key in a vault = %v", err)
	}
}

// TestHSMKeyTypesNeedAToken: without a token, RSA-HSM is refused (400), never made in software.
func TestHSMKeyTypesNeedAToken(t *testing.T) {
	ts := startDev(t)
	_, err := keysClient(t, ts).CreateKey(context.Background(), "x", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM)}, nil)
	wantCode(t, err, 400, "BadParameter")
}
