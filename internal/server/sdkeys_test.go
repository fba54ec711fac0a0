package server

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"math/big"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/byok"
)

// inToken runs f in a session on the SoftHSM2 token labelled label, through a second handle
// on the library the server uses (logged in as the server's user: the login is shared).
func inToken(t *testing.T, label string, f func(c *p11.Ctx, s p11.SessionHandle)) {
	t.Helper()
	c, slot := softHSMSlot(t, label)
	defer c.Destroy() // dlclose only: the server still holds the library
	s, err := c.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseSession(s)
	// Login state is per token and process: the server's login is shared (never log out here).
	if err := c.Login(s, p11.CKU_USER, "4321"); err != nil && !strings.Contains(err.Error(), "CKR_USER_ALREADY_LOGGED_IN") {
		t.Fatal(err)
	}
	f(c, s)
}

// findObjects lists the objects of a session matching tmpl.
func findObjects(t *testing.T, c *p11.Ctx, s p11.SessionHandle, tmpl ...*p11.Attribute) []p11.ObjectHandle {
	t.Helper()
	if err := c.FindObjectsInit(s, tmpl); err != nil {
		t.Fatal(err)
	}
	defer c.FindObjectsFinal(s)
	objs, _, err := c.FindObjects(s, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// TestSecurityDomainKeysMoveBetweenTokens (issue 6): pools pa and pb have tokens of their
// own and the same security domain (uploaded into pb). Key backups of pa's RSA-HSM, EC-HSM
// and oct-HSM keys restore into pb as objects of pb's token, which keep working after pa's
// originals are purged: signatures verify with pa's public keys, pa's ciphertext decrypts.
// The restored objects are sensitive (their secret attributes do not read), wrappable only
// by a trusted key (a fresh AES key of the user's is refused), and a full backup of pa
// restores into another pool of the domain the same way. A pool with another domain
// refuses the backups and its token gains nothing.
func TestSecurityDomainKeysMoveBetweenTokens(t *testing.T) {
	flags := softHSMTokenSO(t, "tok-a", "tok-b", "tok-c", "tok-d")
	cfg := loadConfig(t, append(append([]string{"--dev", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, flags...),
		"--pkcs11-pool-tokens", "pa=tok-a,pb=tok-b,pc=tok-c,pd=tok-d")...)
	ts := start(t, cfg, "")
	ctx := context.Background()
	sd := sdPools(t, ts, "pa", "pb", "pc", "pd")
	port := ts.resources().port
	pool := func(n string) *azkeys.Client {
		return azkeysClient(t, ts, "https://"+n+".managedhsm.localhost:"+port+"/")
	}
	holders := custodianKeys(t, 3)
	blob := sd.download(t, "pa", 2, holders...)
	for _, p := range []string{"pb", "pd"} {
		if status, out := sd.upload(t, p, blob, holders[0], holders[2]); status != 202 {
			t.Fatalf("upload into %s = %d %v", p, status, out)
		}
	}
	sd.download(t, "pc", 2, custodianKeys(t, 3)...)

	created := map[string]*azkeys.JSONWebKey{}
	for name, p := range map[string]azkeys.CreateKeyParameters{
		"rsa": {Kty: to.Ptr(azkeys.KeyTypeRSAHSM), KeySize: to.Ptr(int32(2048))},
		"ec":  {Kty: to.Ptr(azkeys.KeyTypeECHSM), Curve: to.Ptr(azkeys.CurveNameP256)},
		"aes": {Kty: to.Ptr(azkeys.KeyTypeOctHSM), KeySize: to.Ptr(int32(256))},
	} {
		k, err := pool("pa").CreateKey(ctx, name, p, nil)
		if err != nil {
			t.Fatalf("CreateKey(%s) = %v", name, err)
		}
		created[name] = k.Key
	}
	aesCT, err := pool("pa").Encrypt(ctx, "aes", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256GCM), Value: []byte("moved")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	backups := map[string][]byte{}
	for name := range created {
		b, err := pool("pa").BackupKey(ctx, name, nil)
		if err != nil {
			t.Fatalf("BackupKey(%s) = %v", name, err)
		}
		backups[name] = b.Value
	}
	status, out, _ := sd.call(t, "POST", "pa", "/backup", map[string]any{"storageResourceUri": "https://account.blob.core.windows.net/backups", "token": "x"})
	uri, _ := out["azureStorageBlobContainerUri"].(string)
	if status != 202 {
		t.Fatalf("POST /backup = %d %v", status, out)
	}
	_, tokC := tokenObjects(t, "tok-c")

	// Another domain (pc): refused, nothing written to the store or the token.
	for name, b := range backups {
		_, err := pool("pc").RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: b}, nil)
		wantCode(t, err, 400, "BadParameter")
		if _, err := pool("pc").GetKey(ctx, name, "", nil); err == nil {
			t.Errorf("%s exists in pc after a refused restore", name)
		}
	}
	if got, secrets := tokenObjects(t, "tok-c"); len(got) != 0 || secrets != tokC {
		t.Errorf("tok-c after refused restores: %d private keys, %d secret keys; want 0 and %d", len(got), secrets, tokC)
	}

	for name, b := range backups {
		if _, err := pool("pb").RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: b}, nil); err != nil {
			t.Fatalf("RestoreKey(%s) into pb = %v", name, err)
		}
	}
	// tok-b now holds the keys: the two key pairs and the AES key beside the wrapping key.
	wantTokenHolds(t, "tok-b", 2, created["rsa"], created["ec"])
	// The originals go: pa's token keeps only its wrapping key.
	for name := range created {
		if _, err := pool("pa").DeleteKey(ctx, name, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := pool("pa").PurgeDeletedKey(ctx, name, nil); err != nil {
			t.Fatal(err)
		}
	}
	wantTokenHolds(t, "tok-a", 1)
	signsWith(t, pool("pb"), "rsa", created["rsa"])
	signsWith(t, pool("pb"), "ec", created["ec"])
	decrypts(t, pool("pb"), aesCT)

	// The restored objects in tok-b: secret attributes do not read, and only a trusted key
	// wraps them.
	inToken(t, "tok-b", func(c *p11.Ctx, s p11.SessionHandle) {
		other, err := c.GenerateKey(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_GEN, nil)}, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY), p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
			p11.NewAttribute(p11.CKA_TOKEN, false), p11.NewAttribute(p11.CKA_WRAP, true), p11.NewAttribute(p11.CKA_VALUE_LEN, 32),
		})
		if err != nil {
			t.Fatal(err)
		}
		n := new(big.Int).SetBytes(created["rsa"].N).Bytes()
		objs := findObjects(t, c, s, p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY), p11.NewAttribute(p11.CKA_MODULUS, n))
		objs = append(objs, findObjects(t, c, s, p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY), p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_EC))...)
		aes := findObjects(t, c, s, p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY), p11.NewAttribute(p11.CKA_PRIVATE, true), p11.NewAttribute(p11.CKA_TOKEN, true))
		if len(objs) != 2 || len(aes) != 1 {
			t.Fatalf("tok-b: %d restored key pairs and %d AES keys; want 2 and 1", len(objs), len(aes))
		}
		secret := map[p11.ObjectHandle][]uint{objs[0]: {p11.CKA_PRIVATE_EXPONENT, p11.CKA_PRIME_1}, objs[1]: {p11.CKA_VALUE}, aes[0]: {p11.CKA_VALUE}}
		for obj, attrs := range secret {
			for _, a := range attrs {
				if v, err := c.GetAttributeValue(s, obj, []*p11.Attribute{p11.NewAttribute(a, nil)}); err == nil {
					t.Errorf("attribute %#x of a restored key reads %d bytes; want CKR_ATTRIBUTE_SENSITIVE", a, len(v[0].Value))
				}
			}
			if _, err := c.WrapKey(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_WRAP_PAD, nil)}, other, obj); err == nil || !strings.Contains(err.Error(), "CKR_KEY_NOT_WRAPPABLE") {
				t.Errorf("C_WrapKey of a restored key with an untrusted AES key = %v; want CKR_KEY_NOT_WRAPPABLE", err)
			}
		}
	})

	// The full backup restores into pd (same domain, tok-d) and its keys work.
	folder := uri[strings.LastIndex(uri, "/")+1:]
	restore := map[string]any{"sasTokenParameters": map[string]any{"storageResourceUri": "https://account.blob.core.windows.net/backups", "token": "x"}, "folderToRestore": folder}
	if status, out, _ := sd.call(t, "PUT", "pd", "/restore", restore); status != 202 {
		t.Fatalf("PUT /restore into pd = %d %v", status, out)
	}
	wantTokenHolds(t, "tok-d", 2, created["rsa"], created["ec"])
	signsWith(t, pool("pd"), "rsa", created["rsa"])
	signsWith(t, pool("pd"), "ec", created["ec"])
	decrypts(t, pool("pd"), aesCT)
}

// decrypts checks that the pool's key "aes" decrypts ct (A256GCM) to "moved".
func decrypts(t *testing.T, c *azkeys.Client, ct azkeys.EncryptResponse) {
	t.Helper()
	pt, err := c.Decrypt(context.Background(), "aes", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256GCM),
		Value: ct.Result, IV: ct.IV, AuthenticationTag: ct.AuthenticationTag}, nil)
	if err != nil || string(pt.Result) != "moved" {
		t.Errorf("Decrypt of pa's ciphertext = %q, %v", pt.Result, err)
	}
}

// TestPoolKeyBytesNeverLeave (issue 6): keys BYOK-imported into a pool with an SO PIN leave
// their token wrapped by the security domain; after key backups, a full backup, restores
// into a pool given the same domain and use there, no encoding of their secret parts
// appears in the storage file, the audit log, the decrypted records, the full backup file
// or any response.
func TestPoolKeyBytesNeverLeave(t *testing.T) {
	ts := startDev(t, softHSMTokenSO(t)...)
	ctx := context.Background()
	sd := sdPools(t, ts, "leakb")
	holders := custodianKeys(t, 3)
	if status, out := sd.upload(t, "leakb", sd.download(t, "devhsm", 2, holders...), holders[0], holders[1]); status != 202 {
		t.Fatalf("upload = %d %v", status, out)
	}
	src := azkeysClient(t, ts, ts.Dev.Credentials.ManagedHSMURL)
	dst := azkeysClient(t, ts, "https://leakb.managedhsm.localhost:"+ts.resources().port+"/")
	kek, kid := createKEK(t, src, "leak-kek")
	target, _ := rsa.GenerateKey(rand.Reader, 2048)
	pk8, _ := x509.MarshalPKCS8PrivateKey(target)
	aesKey := make([]byte, 32)
	_, _ = rand.Read(aesKey)
	var answers [][]byte
	keep := keeper(t, &answers)
	for name, kty := range map[string]azkeys.KeyType{"leak-rsa": azkeys.KeyTypeRSAHSM, "leak-aes": azkeys.KeyTypeOctHSM} {
		material := pk8
		if kty == azkeys.KeyTypeOctHSM {
			material = aesKey
		}
		blob, err := byok.Build(kek, kid, "CKM_RSA_AES_KEY_WRAP", material, "test")
		if err != nil {
			t.Fatal(err)
		}
		keep(src.ImportKey(ctx, name, azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: to.Ptr(kty), T: blob}}, nil))
		b, err := src.BackupKey(ctx, name, nil)
		keep(b, err)
		keep(dst.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: b.Value}, nil))
	}
	// The restores made keys of their own (unwrapped from the backups), not shared handles.
	inToken(t, "coffer", func(c *p11.Ctx, s p11.SessionHandle) {
		if n := len(findObjects(t, c, s, p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY), p11.NewAttribute(p11.CKA_MODULUS, target.N.Bytes()))); n != 2 {
			t.Errorf("the token holds %d objects of the imported RSA key; want 2 (the import and the restore)", n)
		}
	})
	status, out, _ := sd.call(t, "POST", "devhsm", "/backup", map[string]any{"storageResourceUri": "https://account.blob.core.windows.net/backups", "token": "x"})
	if status != 202 {
		t.Fatalf("POST /backup = %d %v", status, out)
	}
	keep(out, nil)
	digest := make([]byte, 32)
	keep(dst.Sign(ctx, "leak-rsa", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmPS256), Value: digest}, nil))
	keep(dst.Encrypt(ctx, "leak-aes", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256GCM), Value: []byte("x")}, nil))

	soft, _ := rsa.GenerateKey(rand.Reader, 2048)
	soft.Precompute()
	jwk := &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeRSA), N: soft.N.Bytes(), E: []byte{1, 0, 1}, D: soft.D.Bytes(),
		P: soft.Primes[0].Bytes(), Q: soft.Primes[1].Bytes(), DP: soft.Precomputed.Dp.Bytes(), DQ: soft.Precomputed.Dq.Bytes(), QI: soft.Precomputed.Qinv.Bytes()}
	if _, err := keysClient(t, ts).ImportKey(ctx, "control-soft", azkeys.ImportKeyParameters{Key: jwk}, nil); err != nil {
		t.Fatal(err)
	}
	wantNoLeak(t, ts, soft, map[string][]byte{"RSA d": target.D.Bytes(), "RSA p": target.Primes[0].Bytes(), "RSA q": target.Primes[1].Bytes(), "AES key": aesKey, "PKCS#8": pk8[len(pk8)-64:]}, answers)
}

// TestSecurityDomainOldBackupsStillRestore: a pool key made and backed up before the token
// had an SO PIN (not extractable, handle-only backup) still backs up once the SO PIN is
// configured, and still only by its handle; neither backup restores into another pool of
// the same domain on the same token (400 BadParameter saying the key cannot leave its
// token: the two pools would share one object, TestHandleOnlyRestoreIntoAnotherPool), and
// the key keeps signing in its own pool.
func TestSecurityDomainOldBackupsStillRestore(t *testing.T) {
	flags := softHSMTokenSO(t)
	dir := t.TempDir()
	args := append([]string{"--dev", "--listen", "127.0.0.1:0", "--data-dir", dir}, flags[:len(flags)-2]...)
	ts := start(t, loadConfig(t, args...), "")
	ctx := context.Background()
	sd := sdPools(t, ts, "oa", "ob")
	holders := custodianKeys(t, 3)
	blob := sd.download(t, "oa", 2, holders...)
	oa := azkeysClient(t, ts, "https://oa.managedhsm.localhost:"+ts.resources().port+"/")
	k, err := oa.CreateKey(ctx, "old", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeECHSM)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	old, err := oa.BackupKey(ctx, "old", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	ts = start(t, loadConfig(t, append(args, flags[len(flags)-2:]...)...), "")
	sd = sdPools(t, ts)
	if status, out := sd.upload(t, "ob", blob, holders[1], holders[2]); status != 202 {
		t.Fatalf("upload = %d %v", status, out)
	}
	port := ts.resources().port
	oa = azkeysClient(t, ts, "https://oa.managedhsm.localhost:"+port+"/")
	ob := azkeysClient(t, ts, "https://ob.managedhsm.localhost:"+port+"/")
	again, err := oa.BackupKey(ctx, "old", nil)
	if err != nil {
		t.Fatalf("BackupKey of a key made before the SO PIN = %v", err)
	}
	for name, b := range map[string][]byte{"made before": old.Value, "made after": again.Value} {
		_, err := ob.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: b}, nil)
		wantRefused(t, "RestoreKey(backup "+name+" the SO PIN) into another pool", err, "the key cannot leave its token")
	}
	if _, err := ob.GetKey(ctx, "old", "", nil); err == nil {
		t.Error("the refused restores wrote a key into ob")
	}
	signsWith(t, oa, "old", k.Key)
}
