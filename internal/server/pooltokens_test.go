package server

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"io"
	"math/big"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/byok"
)

// tokenObjects lists the key objects of the SoftHSM2 token labelled label, through a second
// handle on the library the server uses: one fingerprint per private key ("rsa:<hex n>", or
// "ec:<hex CKA_EC_POINT>" of the public object with its CKA_ID) and the number of secret keys.
func tokenObjects(t *testing.T, label string) (fingerprints []string, secrets int) {
	t.Helper()
	inToken(t, label, func(c *p11.Ctx, s p11.SessionHandle) {
		fingerprints, secrets = listKeyObjects(t, label, c, s)
	})
	return fingerprints, secrets
}

// listKeyObjects is tokenObjects in session s.
func listKeyObjects(t *testing.T, label string, c *p11.Ctx, s p11.SessionHandle) (fingerprints []string, secrets int) {
	t.Helper()
	find := func(class uint, extra ...*p11.Attribute) []p11.ObjectHandle {
		return findObjects(t, c, s, append([]*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, class)}, extra...)...)
	}
	attr := func(o p11.ObjectHandle, a uint) []byte {
		v, err := c.GetAttributeValue(s, o, []*p11.Attribute{p11.NewAttribute(a, nil)})
		if err != nil {
			t.Fatalf("GetAttributeValue(%#x) = %v", a, err)
		}
		return v[0].Value
	}
	rsaType := p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_RSA).Value
	for _, o := range find(p11.CKO_PRIVATE_KEY) {
		if string(attr(o, p11.CKA_KEY_TYPE)) == string(rsaType) {
			fingerprints = append(fingerprints, "rsa:"+hex.EncodeToString(attr(o, p11.CKA_MODULUS)))
			continue
		}
		pubs := find(p11.CKO_PUBLIC_KEY, p11.NewAttribute(p11.CKA_ID, attr(o, p11.CKA_ID)))
		if len(pubs) != 1 {
			t.Fatalf("token %s: %d public objects for an EC private key", label, len(pubs))
		}
		fingerprints = append(fingerprints, "ec:"+hex.EncodeToString(attr(pubs[0], p11.CKA_EC_POINT)))
	}
	return fingerprints, len(find(p11.CKO_SECRET_KEY))
}

// fingerprint is tokenObjects' fingerprint of a key azkeys returned (for EC, the suffix
// X ‖ Y of the token's CKA_EC_POINT).
func fingerprint(k *azkeys.JSONWebKey) string {
	if len(k.N) > 0 {
		return "rsa:" + hex.EncodeToString(k.N)
	}
	return "ec:" + hex.EncodeToString(append(append([]byte(nil), k.X...), k.Y...))
}

// wantTokenHolds checks that the token holds exactly the private keys of want and
// wantSecrets secret keys.
func wantTokenHolds(t *testing.T, label string, wantSecrets int, want ...*azkeys.JSONWebKey) {
	t.Helper()
	got, secrets := tokenObjects(t, label)
	if len(got) != len(want) || secrets != wantSecrets {
		t.Errorf("token %s holds %d private and %d secret keys; want %d and %d", label, len(got), secrets, len(want), wantSecrets)
	}
	for _, k := range want {
		fp, ok := fingerprint(k), false
		for _, g := range got {
			ok = ok || g == fp || strings.HasPrefix(fp, "ec:") && strings.HasSuffix(g, fp[3:])
		}
		if !ok {
			t.Errorf("token %s does not hold the private key of %s", label, *k.KID)
		}
	}
}

// signsWith checks that key name signs (PS256 or ES256) and the signature verifies under
// its public key pub.
func signsWith(t *testing.T, c *azkeys.Client, name string, pub *azkeys.JSONWebKey) {
	t.Helper()
	digest := sha256.Sum256([]byte("signed in the pool's own token"))
	alg := azkeys.SignatureAlgorithmES256
	if len(pub.N) > 0 {
		alg = azkeys.SignatureAlgorithmPS256
	}
	sig, err := c.Sign(context.Background(), name, "", azkeys.SignParameters{Algorithm: to.Ptr(alg), Value: digest[:]}, nil)
	if err != nil {
		t.Fatalf("Sign(%s, %s) = %v", name, alg, err)
	}
	if len(pub.N) > 0 {
		k := &rsa.PublicKey{N: new(big.Int).SetBytes(pub.N), E: int(new(big.Int).SetBytes(pub.E).Int64())}
		err = rsa.VerifyPSS(k, crypto.SHA256, digest[:], sig.Result, nil)
	} else {
		k := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(pub.X), Y: new(big.Int).SetBytes(pub.Y)}
		half := len(sig.Result) / 2
		if !ecdsa.Verify(k, digest[:], new(big.Int).SetBytes(sig.Result[:half]), new(big.Int).SetBytes(sig.Result[half:])) {
			err = rsa.ErrVerification
		}
	}
	if err != nil {
		t.Errorf("the signature of %s does not verify: %v", name, err)
	}
}

// TestPoolTokensIsolatePools: with pkcs11-pool-tokens, the HSM keys of each pool —
// created, rotated and BYOK-imported through azkeys — are objects of that pool's token only;
// a vault's HSM keys live in the default token; every key signs in its own token, and
// still does after a restart on the same data directory. A restart that no longer
// configures a pool's token answers 503 for its keys and never tries another token.
func TestPoolTokensIsolatePools(t *testing.T) {
	flags := softHSMToken(t, "tok-a", "tok-b")
	dir := t.TempDir()
	args := append([]string{"--dev", "--listen", "127.0.0.1:0", "--data-dir", dir}, flags...)
	cfg := loadConfig(t, append(args, "--pkcs11-pool-tokens", "devhsm=tok-a,poolb=tok-b")...)
	ts := start(t, cfg, "")
	ctx := context.Background()
	sd := sdPools(t, ts, "poolb")
	sd.download(t, "poolb", 2, custodianKeys(t, 3)...)
	port := ts.resources().port
	poolA := azkeysClient(t, ts, ts.Dev.Credentials.ManagedHSMURL)
	poolB := azkeysClient(t, ts, "https://poolb.managedhsm.localhost:"+port+"/")
	vault := keysClient(t, ts)

	create := func(c *azkeys.Client, name string, p azkeys.CreateKeyParameters) *azkeys.JSONWebKey {
		t.Helper()
		k, err := c.CreateKey(ctx, name, p, nil)
		if err != nil {
			t.Fatalf("CreateKey(%s) = %v", name, err)
		}
		return k.Key
	}
	rsaHSM := azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM), KeySize: to.Ptr(int32(2048))}
	aRSA := create(poolA, "a-rsa", rsaHSM)
	aEC := create(poolA, "a-ec", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC)})
	create(poolA, "a-aes", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeOctHSM), KeySize: to.Ptr(int32(256))})
	bRSA := create(poolB, "b-rsa", rsaHSM)
	bEC1 := create(poolB, "b-ec", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeECHSM)})
	rotated, err := poolB.RotateKey(ctx, "b-ec", nil)
	if err != nil {
		t.Fatalf("RotateKey(b-ec) = %v", err)
	}
	bEC2 := rotated.Key
	// BYOK into pool B: the KEK and the imported key are objects of pool B's token.
	kekPub, kid := createKEK(t, poolB, "b-kek")
	kek, err := poolB.GetKey(ctx, "b-kek", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	target, _ := rsa.GenerateKey(rand.Reader, 2048)
	pk8, _ := x509.MarshalPKCS8PrivateKey(target)
	blob, err := byok.Build(kekPub, kid, "CKM_RSA_AES_KEY_WRAP", pk8, "coffer test")
	if err != nil {
		t.Fatal(err)
	}
	imported, err := poolB.ImportKey(ctx, "b-byok", azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeRSAHSM), T: blob}}, nil)
	if err != nil {
		t.Fatalf("ImportKey(BYOK into pool B) = %v", err)
	}
	// A private JWK imported into pool B (as the azkeys client's own TestImportKey does)
	// lands in pool B's token too.
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwkImported, err := poolB.ImportKey(ctx, "b-jwk", azkeys.ImportKeyParameters{HSM: to.Ptr(true), Key: &azkeys.JSONWebKey{
		Kty: to.Ptr(azkeys.KeyTypeEC), Crv: to.Ptr(azkeys.CurveNameP256), X: ek.X.FillBytes(make([]byte, 32)), Y: ek.Y.FillBytes(make([]byte, 32)), D: ek.D.FillBytes(make([]byte, 32)),
	}}, nil)
	if err != nil {
		t.Fatalf("ImportKey(private JWK into pool B) = %v", err)
	}
	// An AES key given in clear (an oct JWK) lands in pool B's token too, and is the key
	// given: what it encrypts opens here with that key.
	aesKey := make([]byte, 32)
	rand.Read(aesKey)
	for _, bad := range []*azkeys.JSONWebKey{
		{Kty: to.Ptr(azkeys.KeyTypeOctHSM), K: aesKey[:15]},
		{Kty: to.Ptr(azkeys.KeyTypeOctHSM), K: aesKey, N: aesKey},
		{Kty: to.Ptr(azkeys.KeyTypeOctHSM)},
	} {
		_, err = poolB.ImportKey(ctx, "b-aes-jwk", azkeys.ImportKeyParameters{Key: bad}, nil)
		wantCode(t, err, 400, "BadParameter")
	}
	if _, err := poolB.GetKey(ctx, "b-aes-jwk", "", nil); err == nil {
		t.Fatal("a refused AES import left a key behind")
	}
	if _, err = poolB.ImportKey(ctx, "b-aes-jwk", azkeys.ImportKeyParameters{HSM: to.Ptr(true), Key: &azkeys.JSONWebKey{
		Kty: to.Ptr(azkeys.KeyTypeOctHSM), K: aesKey}}, nil); err != nil {
		t.Fatalf("ImportKey(oct JWK into pool B) = %v", err)
	}
	enc, err := poolB.Encrypt(ctx, "b-aes-jwk", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256GCM), Value: []byte("imported in clear")}, nil)
	if err != nil {
		t.Fatalf("Encrypt(b-aes-jwk, A256GCM) = %v", err)
	}
	block, _ := aes.NewCipher(aesKey)
	gcm, _ := cipher.NewGCM(block)
	if pt, err := gcm.Open(nil, enc.IV, append(enc.Result, enc.AuthenticationTag...), enc.AdditionalAuthenticatedData); err != nil || string(pt) != "imported in clear" {
		t.Errorf("the imported AES key's ciphertext opens with the given key as %q, %v; want the plaintext", pt, err)
	}
	vRSA := create(vault, "v-rsa", rsaHSM)

	wantTokenHolds(t, "tok-a", 1, aRSA, aEC)
	wantTokenHolds(t, "tok-b", 1, bRSA, bEC1, bEC2, kek.Key, imported.Key, jwkImported.Key)
	wantTokenHolds(t, "coffer", 0, vRSA)
	signsWith(t, poolA, "a-rsa", aRSA)
	signsWith(t, poolA, "a-ec", aEC)
	signsWith(t, poolB, "b-rsa", bRSA)
	signsWith(t, poolB, "b-ec", bEC2)
	signsWith(t, poolB, "b-byok", imported.Key)
	signsWith(t, poolB, "b-jwk", jwkImported.Key)
	signsWith(t, vault, "v-rsa", vRSA)

	// A restart on the same data directory and tokens: each key still signs in its token.
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	ts = start(t, loadConfig(t, append(args, "--pkcs11-pool-tokens", "devhsm=tok-a,poolb=tok-b")...), "")
	poolA = azkeysClient(t, ts, ts.Dev.Credentials.ManagedHSMURL)
	signsWith(t, poolA, "a-rsa", aRSA)
	signsWith(t, azkeysClient(t, ts, "https://poolb.managedhsm.localhost:"+ts.resources().port+"/"), "b-ec", bEC2)
	signsWith(t, keysClient(t, ts), "v-rsa", vRSA)

	// Pool B's token no longer configured: its keys answer 503 (never tried elsewhere).
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	ts = start(t, loadConfig(t, append(args, "--pkcs11-pool-tokens", "devhsm=tok-a")...), "")
	cred, hc := devCredential(t, ts, ts.Dev.Credentials.ClientSecret)
	noRetry := noRetryKeys(t, "https://poolb.managedhsm.localhost:"+ts.resources().port+"/", cred, hc)
	digest := sha256.Sum256([]byte("x"))
	_, err = noRetry.Sign(ctx, "b-rsa", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmPS256), Value: digest[:]}, nil)
	wantCode(t, err, 503, "ServiceUnavailable")
	if body := string(errorBody(t, err)); strings.Contains(body, "tok-b") || strings.Contains(body, "CKR_") {
		t.Errorf("503 body = %s; want no token label or PKCS#11 text", body)
	}
	signsWith(t, azkeysClient(t, ts, ts.Dev.Credentials.ManagedHSMURL), "a-ec", aEC)
	wantTokenHolds(t, "tok-b", 1, bRSA, bEC1, bEC2, kek.Key, imported.Key, jwkImported.Key)
}

// TestPoolTokenMissingAtStart: a pool's token that cannot be opened stops the start with
// an error naming the setting, the pool and the token (and never the PIN).
func TestPoolTokenMissingAtStart(t *testing.T) {
	flags := softHSMToken(t, "tok-a")
	cfg := loadConfig(t, append(append([]string{"--dev", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, flags...),
		"--pkcs11-pool-tokens", "devhsm=tok-a,poolb=no-such-token")...)
	s := New(cfg, io.Discard, io.Discard)
	err := s.Start(context.Background())
	if err == nil {
		s.Shutdown(context.Background())
		t.Fatal("Start = nil; want an error naming pkcs11-pool-tokens")
	}
	for _, w := range []string{`setting "pkcs11-pool-tokens"`, `pool "poolb"`, `token "no-such-token"`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Start = %v; want it to contain %s", err, w)
		}
	}
	if strings.Contains(err.Error(), "4321") {
		t.Errorf("Start = %v; names the PIN", err)
	}
	// Everything it opened was closed: a server on the same tokens starts.
	cfg = loadConfig(t, append(append([]string{"--dev", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, flags...),
		"--pkcs11-pool-tokens", "devhsm=tok-a")...)
	ts := start(t, cfg, "")
	if _, err := azkeysClient(t, ts, ts.Dev.Credentials.ManagedHSMURL).CreateKey(context.Background(), "k", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeECHSM)}, nil); err != nil {
		t.Errorf("CreateKey after a failed start = %v", err)
	}
}
