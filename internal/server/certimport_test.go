package server

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	p11 "github.com/miekg/pkcs11"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// Import of a certificate into an HSM key: ImportCertificate with an RSA-HSM or EC-HSM
// policy puts the PFX's or PEM's private key into the vault's token, where it stays.

// importPolicy is a policy that only names the key (the rest comes from the certificate).
func importPolicy(contentType string, kp *azcertificates.KeyProperties) *azcertificates.CertificatePolicy {
	return &azcertificates.CertificatePolicy{KeyProperties: kp, SecretProperties: &azcertificates.SecretProperties{ContentType: to.Ptr(contentType)}}
}

// importCert imports a certificate under pol and returns it with its parsed leaf.
func importCert(t *testing.T, c *azcertificates.Client, name, value, pwd string, pol *azcertificates.CertificatePolicy) (azcertificates.ImportCertificateResponse, *x509.Certificate) {
	t.Helper()
	imp, err := c.ImportCertificate(context.Background(), name, azcertificates.ImportCertificateParameters{
		Base64EncodedCertificate: to.Ptr(value), Password: to.Ptr(pwd), CertificatePolicy: pol,
	}, nil)
	if err != nil {
		t.Fatalf("ImportCertificate(%s, %s) = %v", name, *pol.KeyProperties.KeyType, err)
	}
	cert, err := x509.ParseCertificate(imp.CER)
	if err != nil {
		t.Fatal(err)
	}
	return imp, cert
}

// ecPEM is PEM text holding a fresh key on curve (PKCS #8) and a self-signed certificate
// for it.
func ecPEM(t *testing.T, curve elliptic.Curve) (string, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "ec-import.example.test"}, DNSNames: []string{"ec-import.example.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	pk8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk8})) + string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), key
}

// opensslK1PEM is PEM text of a secp256k1 key and its self-signed certificate, made by
// openssl (Go cannot make one); "" when openssl is missing.
func opensslK1PEM(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		return ""
	}
	dir := t.TempDir()
	key, crt := filepath.Join(dir, "k1.pem"), filepath.Join(dir, "k1.crt")
	for _, args := range [][]string{
		{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1", "-out", key},
		{"req", "-x509", "-new", "-key", key, "-out", crt, "-days", "30", "-subj", "/CN=k1.example.test"},
	} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", args[0], err, out)
		}
	}
	k, _ := os.ReadFile(key)
	c, _ := os.ReadFile(crt)
	return string(k) + string(c)
}

// privateKeysProtected checks every private key object of the dev token: sensitive, not
// extractable, its secret attributes unreadable.
func privateKeysProtected(t *testing.T) {
	t.Helper()
	inToken(t, "coffer", func(c *p11.Ctx, s p11.SessionHandle) {
		for _, o := range findObjects(t, c, s, p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY)) {
			attrs, err := c.GetAttributeValue(s, o, []*p11.Attribute{p11.NewAttribute(p11.CKA_SENSITIVE, nil), p11.NewAttribute(p11.CKA_EXTRACTABLE, nil)})
			if err != nil {
				t.Fatalf("GetAttributeValue = %v", err)
			}
			if sens, extr := attrs[0].Value[0] == 1, attrs[1].Value[0] == 1; !sens || extr {
				t.Errorf("a private key object has CKA_SENSITIVE, CKA_EXTRACTABLE = %v, %v; want true, false", sens, extr)
			}
			for _, a := range []uint{p11.CKA_PRIVATE_EXPONENT, p11.CKA_VALUE} {
				if v, err := c.GetAttributeValue(s, o, []*p11.Attribute{p11.NewAttribute(a, nil)}); err == nil && len(v[0].Value) > 0 {
					t.Errorf("attribute %#x of a private key object reads %d bytes", a, len(v[0].Value))
				}
			}
		}
	})
}

// secretChainOnly checks that a certificate's PKCS#12 secret holds its certificate and no
// private key.
func secretChainOnly(t *testing.T, ts *testServer, name string, cert *x509.Certificate) {
	t.Helper()
	pfx := secretPFX(t, secretsClient(t, ts, ts.Dev.Credentials.VaultURL), name, nil)
	certs, err := pkcs12.DecodeTrustStore(pfx, "")
	if err != nil || len(certs) != 1 || !certs[0].Equal(cert) {
		t.Errorf("secret of %s = %d certificates, %v; want the certificate", name, len(certs), err)
	}
	if _, _, _, err := pkcs12.DecodeChain(pfx, ""); err == nil {
		t.Errorf("secret of %s holds a private key", name)
	}
}

// TestCertificateImportIntoHSMKey: ImportCertificate with an RSA-HSM policy (an openssl PFX)
// or an EC-HSM policy (PEM) puts the private key into the token, sensitive and not
// extractable; the certificate's key is an HSM key of that type that signs (and, RSA,
// decrypts) in the token; the secret holds no private key; the policy says not exportable.
// reuse_key renewals share the imported object, and the purge destroys it. Bad input — a
// wrong password, a key that is not the certificate's, curves the token does not offer, a
// policy the key does not fit, exportable HSM keys, a name taken by a plain key — is
// refused, stores nothing and leaves nothing in the token.
func TestCertificateImportIntoHSMKey(t *testing.T) {
	ts := startDev(t, softHSMToken(t)...)
	ctx := context.Background()
	c := certsClient(t, ts)
	kc := keysClient(t, ts)
	pfx := base64.StdEncoding.EncodeToString(opensslPFX(t, "s3cret"))
	rsaHSM := &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeRSAHSM), KeySize: to.Ptr[int32](2048)}
	ecHSM := &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeECHSM), Curve: to.Ptr(azcertificates.CurveNameP256)}
	ecPEMText, _ := ecPEM(t, elliptic.P256())

	// Refused imports first: each stores nothing and leaves the token as it was.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherPK8, _ := x509.MarshalPKCS8PrivateKey(other)
	_, certOnly := pem.Decode([]byte(ecPEMText)) // the certificate block, without its key
	mismatch := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: otherPK8})) + string(certOnly)
	p224, _ := ecPEM(t, elliptic.P224())
	if _, err := kc.CreateKey(ctx, "taken", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC)}, nil); err != nil {
		t.Fatal(err)
	}
	type bad struct {
		name, cert, value, pwd string
		policy                 *azcertificates.CertificatePolicy
		status                 int
		code                   string
	}
	bads := []bad{
		{"wrong password", "bad", pfx, "nope", importPolicy("application/x-pkcs12", rsaHSM), 400, "BadParameter"},
		{"key of another certificate", "bad", mismatch, "", importPolicy("application/x-pem-file", ecHSM), 400, "BadParameter"},
		{"P-224 key", "bad", p224, "", importPolicy("application/x-pem-file", ecHSM), 400, "BadParameter"},
		{"P-224 policy", "bad", p224, "", importPolicy("application/x-pem-file", &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeECHSM), Curve: to.Ptr(azcertificates.CurveName("P-224"))}), 400, "BadParameter"},
		{"policy of another size", "bad", pfx, "s3cret", importPolicy("application/x-pkcs12", &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeRSAHSM), KeySize: to.Ptr[int32](3072)}), 400, "BadParameter"},
		{"policy of another type", "bad", ecPEMText, "", importPolicy("application/x-pem-file", rsaHSM), 400, "BadParameter"},
		{"exportable HSM key", "bad", pfx, "s3cret", importPolicy("application/x-pkcs12", &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeRSAHSM), Exportable: to.Ptr(true)}), 400, "BadParameter"},
		{"content type the content is not", "bad", pfx, "s3cret", importPolicy("application/x-pem-file", rsaHSM), 400, "BadParameter"},
		// Refused only once the key is in the token: the commit fails, the object goes.
		{"name of a plain key", "taken", pfx, "s3cret", importPolicy("application/x-pkcs12", rsaHSM), 409, "Conflict"},
	}
	if k1 := opensslK1PEM(t); k1 != "" {
		bads = append(bads, bad{"secp256k1 key", "bad", k1, "", importPolicy("application/x-pem-file", ecHSM), 400, "BadParameter"})
	}
	before := privateKeyObjects(t, nil)
	for _, tc := range bads {
		_, err := c.ImportCertificate(ctx, tc.cert, azcertificates.ImportCertificateParameters{Base64EncodedCertificate: to.Ptr(tc.value), Password: to.Ptr(tc.pwd), CertificatePolicy: tc.policy}, nil)
		wantCodeOf(t, tc.name, err, tc.status, tc.code)
		_, err = c.GetCertificate(ctx, tc.cert, "", nil)
		wantCodeOf(t, tc.name+": GetCertificate", err, 404, "CertificateNotFound")
		_, err = secretsClient(t, ts, ts.Dev.Credentials.VaultURL).GetSecret(ctx, tc.cert, "", nil)
		wantCodeOf(t, tc.name+": GetSecret", err, 404, "SecretNotFound")
		if n := privateKeyObjects(t, nil); n != before {
			t.Errorf("%s: the token holds %d private keys; want %d (nothing left behind)", tc.name, n, before)
		}
	}
	if _, err := kc.GetKey(ctx, "bad", "", nil); err == nil {
		t.Error("a refused import stored a key")
	}
	// ImportKey of a private JWK with hsm true puts the key into the token, as Key Vault
	// does (the azkeys client's own TestImportKey): the key is then the token's, RSA-HSM,
	// its private part nowhere in the answer, and it signs and decrypts there.
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	rk.Precompute()
	imported, err := kc.ImportKey(ctx, "plain-jwk", azkeys.ImportKeyParameters{HSM: to.Ptr(true), Key: &azkeys.JSONWebKey{
		Kty: to.Ptr(azkeys.KeyTypeRSA), N: rk.N.Bytes(), E: big.NewInt(int64(rk.E)).Bytes(), D: rk.D.Bytes(), P: rk.Primes[0].Bytes(), Q: rk.Primes[1].Bytes(),
		DP: rk.Precomputed.Dp.Bytes(), DQ: rk.Precomputed.Dq.Bytes(), QI: rk.Precomputed.Qinv.Bytes(),
		KeyOps: to.SliceOfPtrs(azkeys.KeyOperationSign, azkeys.KeyOperationDecrypt),
	}}, nil)
	if err != nil {
		t.Fatalf("ImportKey(private JWK, hsm) = %v", err)
	}
	if k := imported.Key; *k.Kty != azkeys.KeyTypeRSAHSM || k.D != nil || k.P != nil || new(big.Int).SetBytes(k.N).Cmp(rk.N) != 0 {
		t.Fatalf("ImportKey(private JWK, hsm) answered kty %s, d present %v; want RSA-HSM, the public key only", *k.Kty, k.D != nil)
	}
	if got := privateKeyObjects(t, rk.N); got != 1 {
		t.Fatalf("the token holds %d objects of the imported JWK; want 1", got)
	}
	if n := privateKeyObjects(t, nil); n != before+1 {
		t.Errorf("the token holds %d private keys after the import; want %d", n, before+1)
	}
	digest := sha256.Sum256([]byte("imported into the token"))
	sig, err := kc.Sign(ctx, "plain-jwk", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmPS256), Value: digest[:]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPSS(&rk.PublicKey, crypto.SHA256, digest[:], sig.Result, nil); err != nil {
		t.Errorf("the imported HSM key's PS256 signature does not verify under the JWK's public key: %v", err)
	}
	before = privateKeyObjects(t, nil)
	if k, err := kc.GetKey(ctx, "taken", "", nil); err != nil || *k.Key.Kty != azkeys.KeyTypeEC {
		t.Errorf("the plain key a refused import wanted the name of = %v; want it unchanged", err)
	}

	// The openssl PFX under RSA-HSM: the key is the token's.
	imp, cert := importCert(t, c, "pfx-hsm", pfx, "s3cret", importPolicy("application/x-pkcs12", rsaHSM))
	if cert.Subject.CommonName != "imported.example.test" {
		t.Fatalf("imported certificate is for %s", cert.Subject)
	}
	if kp := imp.Policy.KeyProperties; *kp.KeyType != azcertificates.KeyTypeRSAHSM || kp.Exportable == nil || *kp.Exportable {
		t.Errorf("policy key_props = %s, exportable %v; want RSA-HSM, false", *kp.KeyType, kp.Exportable)
	}
	n := modulus(t, cert)
	if got := privateKeyObjects(t, n); got != 1 {
		t.Fatalf("the token holds %d objects of the imported RSA key; want 1", got)
	}
	key, err := kc.GetKey(ctx, "pfx-hsm", "", nil)
	if err != nil || *key.Key.Kty != azkeys.KeyTypeRSAHSM || key.Key.D != nil || new(big.Int).SetBytes(key.Key.N).Cmp(n) != 0 || key.Key.KID.Version() != imp.ID.Version() {
		t.Fatalf("GetKey(pfx-hsm) = %+v, %v; want the RSA-HSM key of the certificate", key.Key, err)
	}
	certSigns(t, kc, "pfx-hsm", "", cert)
	ct, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, cert.PublicKey.(*rsa.PublicKey), []byte("to the token"), nil)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := kc.Decrypt(ctx, "pfx-hsm", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP), Value: ct}, nil)
	if err != nil || string(dec.Result) != "to the token" {
		t.Errorf("Decrypt(RSA-OAEP) with the imported key = %q, %v", dec.Result, err)
	}
	secretChainOnly(t, ts, "pfx-hsm", cert)

	// The PEM under EC-HSM.
	before = privateKeyObjects(t, nil)
	_, ecCert := importCert(t, c, "pem-hsm", ecPEMText, "", importPolicy("application/x-pem-file", ecHSM))
	if got := privateKeyObjects(t, nil); got != before+1 {
		t.Errorf("the token holds %d private keys after the EC import; want %d", got, before+1)
	}
	if k, err := kc.GetKey(ctx, "pem-hsm", "", nil); err != nil || *k.Key.Kty != azkeys.KeyTypeECHSM || k.Key.D != nil {
		t.Errorf("GetKey(pem-hsm) = %v; want an EC-HSM key", err)
	}
	certSigns(t, kc, "pem-hsm", "", ecCert)
	secretHoldsNoKey(t, ts, "pem-hsm")
	privateKeysProtected(t)

	// Get, versions, and a reuse_key renewal (self-signed by the imported key) sharing the
	// object; purge destroys it.
	if _, got := getCert(t, c, "pfx-hsm", imp.ID.Version()); !got.Equal(cert) {
		t.Error("GetCertificate(version) is another certificate")
	}
	renew := hsmPolicy("Self", &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeRSAHSM), KeySize: to.Ptr[int32](2048), ReuseKey: to.Ptr(true)})
	renew.SecretProperties.ContentType = to.Ptr("application/x-pkcs12")
	if _, err := c.UpdateCertificatePolicy(ctx, "pfx-hsm", *renew, nil); err != nil {
		t.Fatalf("UpdateCertificatePolicy = %v", err)
	}
	v2, cert2 := createCert(t, c, "pfx-hsm", renew)
	if modulus(t, cert2).Cmp(n) != 0 || privateKeyObjects(t, n) != 1 {
		t.Fatal("the reuse_key renewal of an imported HSM certificate does not share its key object")
	}
	certSigns(t, kc, "pfx-hsm", v2.ID.Version(), cert2)
	pager := c.NewListCertificatePropertiesVersionsPager("pfx-hsm", nil)
	versions := 0
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		versions += len(page.Value)
	}
	if versions != 2 {
		t.Errorf("versions of pfx-hsm = %d; want 2", versions)
	}
	if _, err := c.DeleteCertificate(ctx, "pfx-hsm", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PurgeDeletedCertificate(ctx, "pfx-hsm", nil); err != nil {
		t.Fatalf("PurgeDeletedCertificate = %v", err)
	}
	if got := privateKeyObjects(t, n); got != 0 {
		t.Errorf("after the purge the token holds %d objects of the imported key; want none", got)
	}
}

// TestCertificateImportIntoHSMKeyBackup: with an SO PIN an imported HSM key is bound to
// trusted wrapping keys like a generated one (sensitive, unwrappable by an untrusted key),
// and its certificate round-trips backup → delete → purge → restore with the key working
// in the token again.
func TestCertificateImportIntoHSMKeyBackup(t *testing.T) {
	ts := startDev(t, softHSMTokenSO(t)...)
	ctx := context.Background()
	c := certsClient(t, ts)
	kc := keysClient(t, ts)
	imp, cert := importCert(t, c, "imp-bk", base64.StdEncoding.EncodeToString(opensslPFX(t, "s3cret")), "s3cret",
		importPolicy("application/x-pkcs12", &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeRSAHSM)}))
	n := modulus(t, cert)
	inToken(t, "coffer", func(p *p11.Ctx, s p11.SessionHandle) {
		objs := findObjects(t, p, s, p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY), p11.NewAttribute(p11.CKA_MODULUS, n.Bytes()))
		if len(objs) != 1 {
			t.Fatalf("the token holds %d objects of the imported key; want 1", len(objs))
		}
		attrs, err := p.GetAttributeValue(s, objs[0], []*p11.Attribute{p11.NewAttribute(p11.CKA_SENSITIVE, nil), p11.NewAttribute(p11.CKA_WRAP_WITH_TRUSTED, nil)})
		if err != nil {
			t.Fatalf("GetAttributeValue = %v", err)
		}
		if sens, trusted := attrs[0].Value[0] == 1, attrs[1].Value[0] == 1; !sens || !trusted {
			t.Errorf("imported key's CKA_SENSITIVE, CKA_WRAP_WITH_TRUSTED = %v, %v; want both true", sens, trusted)
		}
		untrusted, err := p.GenerateKey(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_GEN, nil)}, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY), p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
			p11.NewAttribute(p11.CKA_TOKEN, false), p11.NewAttribute(p11.CKA_WRAP, true), p11.NewAttribute(p11.CKA_VALUE_LEN, 32),
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.WrapKey(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_WRAP_PAD, nil)}, untrusted, objs[0]); err == nil || !strings.Contains(err.Error(), "CKR_KEY_NOT_WRAPPABLE") {
			t.Errorf("C_WrapKey of the imported key with an untrusted AES key = %v; want CKR_KEY_NOT_WRAPPABLE", err)
		}
	})
	b := backupAndPurge(t, c, "imp-bk")
	if got := privateKeyObjects(t, n); got != 0 {
		t.Fatalf("after the purge the token holds %d objects of the imported key; want none", got)
	}
	restored, err := c.RestoreCertificate(ctx, azcertificates.RestoreCertificateParameters{CertificateBackup: b}, nil)
	if err != nil || string(restored.CER) != string(imp.CER) {
		t.Fatalf("RestoreCertificate = %v; want the imported certificate back", err)
	}
	if got := privateKeyObjects(t, n); got != 1 {
		t.Errorf("after the restore the token holds %d objects of the key; want 1", got)
	}
	certSigns(t, kc, "imp-bk", "", cert)
	if k, err := kc.GetKey(ctx, "imp-bk", "", nil); err != nil || *k.Key.Kty != azkeys.KeyTypeRSAHSM || k.Key.D != nil {
		t.Errorf("restored key = %v; want RSA-HSM without a private part", err)
	}
}
