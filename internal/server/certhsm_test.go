package server

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	p11 "github.com/miekg/pkcs11"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Certificates with HSM keys (issues 5 and 6): the Unknown issuer (CSR made and signed in
// the token, merge), reuse_key (versions share one token object), backup and restore (the
// key leaves the token only wrapped, and comes back as a new object bound to trusted
// wrapping keys).

// privateKeyObjects counts the private key objects in the dev token, or those of the RSA
// key with modulus n.
func privateKeyObjects(t *testing.T, n *big.Int) int {
	t.Helper()
	tmpl := []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY)}
	if n != nil {
		tmpl = append(tmpl, p11.NewAttribute(p11.CKA_MODULUS, n.Bytes()))
	}
	count := 0
	inToken(t, "coffer", func(c *p11.Ctx, s p11.SessionHandle) { count = len(findObjects(t, c, s, tmpl...)) })
	return count
}

// modulus is the RSA modulus of a certificate's key.
func modulus(t *testing.T, c *x509.Certificate) *big.Int {
	t.Helper()
	pub, ok := c.PublicKey.(*rsa.PublicKey)
	if !ok {
		t.Fatalf("certificate key is a %T; want RSA", c.PublicKey)
	}
	return pub.N
}

// certSigns signs a digest with the certificate's key version through azkeys and checks
// the signature with the certificate's public key.
func certSigns(t *testing.T, kc *azkeys.Client, name, version string, cert *x509.Certificate) {
	t.Helper()
	h, alg := crypto.SHA256, azkeys.SignatureAlgorithmPS256
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); ok {
		h, alg = map[string]crypto.Hash{"P-256": crypto.SHA256, "P-384": crypto.SHA384, "P-521": crypto.SHA512}[pub.Curve.Params().Name],
			map[string]azkeys.SignatureAlgorithm{"P-256": azkeys.SignatureAlgorithmES256, "P-384": azkeys.SignatureAlgorithmES384, "P-521": azkeys.SignatureAlgorithmES512}[pub.Curve.Params().Name]
	}
	hh := h.New()
	hh.Write([]byte("signed by a certificate's HSM key " + name + "/" + version))
	digest := hh.Sum(nil)
	sig, err := kc.Sign(context.Background(), name, version, azkeys.SignParameters{Algorithm: to.Ptr(alg), Value: digest}, nil)
	if err != nil {
		t.Fatalf("Sign(%s/%s) = %v", name, version, err)
	}
	switch pub := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if err := rsa.VerifyPSS(pub, h, digest, sig.Result, nil); err != nil {
			t.Errorf("Sign(%s/%s) does not verify with the certificate: %v", name, version, err)
		}
	case *ecdsa.PublicKey:
		n := len(sig.Result) / 2
		if !ecdsa.Verify(pub, digest, new(big.Int).SetBytes(sig.Result[:n]), new(big.Int).SetBytes(sig.Result[n:])) {
			t.Errorf("Sign(%s/%s) does not verify with the certificate", name, version)
		}
	}
}

// hsmPolicy is selfPolicy (PEM, not exportable) with an HSM key and the given issuer.
func hsmPolicy(issuer string, kp *azcertificates.KeyProperties) *azcertificates.CertificatePolicy {
	pol := selfPolicy("application/x-pem-file", false)
	pol.IssuerParameters.Name = to.Ptr(issuer)
	pol.KeyProperties = kp
	return pol
}

// getCert returns a version ("" latest) of a certificate, parsed.
func getCert(t *testing.T, c *azcertificates.Client, name, version string) (azcertificates.GetCertificateResponse, *x509.Certificate) {
	t.Helper()
	got, err := c.GetCertificate(context.Background(), name, version, nil)
	if err != nil {
		t.Fatalf("GetCertificate(%s/%s) = %v", name, version, err)
	}
	cert, err := x509.ParseCertificate(got.CER)
	if err != nil {
		t.Fatal(err)
	}
	return got, cert
}

// createCert creates a certificate version under pol and returns it once issued.
func createCert(t *testing.T, c *azcertificates.Client, name string, pol *azcertificates.CertificatePolicy) (azcertificates.GetCertificateResponse, *x509.Certificate) {
	t.Helper()
	if _, err := c.CreateCertificate(context.Background(), name, azcertificates.CreateCertificateParameters{CertificatePolicy: pol}, nil); err != nil {
		t.Fatalf("CreateCertificate(%s) = %v", name, err)
	}
	if op := waitForCertificate(t, c, name); *op.Status != "completed" {
		t.Fatalf("operation of %s = %s", name, *op.Status)
	}
	return getCert(t, c, name, "")
}

// secretHoldsNoKey checks that a certificate's secret carries its chain and no private key.
func secretHoldsNoKey(t *testing.T, ts *testServer, name string) {
	t.Helper()
	sec, err := secretsClient(t, ts, ts.Dev.Credentials.VaultURL).GetSecret(context.Background(), name, "", nil)
	if err != nil || strings.Contains(*sec.Value, "PRIVATE KEY") || !strings.Contains(*sec.Value, "CERTIFICATE") {
		t.Errorf("secret of %s = %v; want the chain and no private key", name, err)
	}
}

// TestCertificateCSRMergeWithHSMKey (issue 5): an Unknown-issuer request with an RSA-HSM or
// EC-HSM policy makes its key in the token and its CSR is signed there; merges of a
// certificate for another key, or of garbage, are refused (400) and change nothing (the
// request still waits with its key); the CA-signed certificate merges into a version whose
// key is the token's and signs; cancelling or deleting a request destroys its key object.
func TestCertificateCSRMergeWithHSMKey(t *testing.T) {
	ts := startDev(t, softHSMToken(t)...)
	ctx := context.Background()
	c := certsClient(t, ts)
	kc := keysClient(t, ts)
	ca := newTestCA(t)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherCSR, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "web.example.test"}}, otherKey)
	for _, tc := range []struct {
		name string
		kp   *azcertificates.KeyProperties
		kty  azkeys.KeyType
	}{
		{"csr-rsa", &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeRSAHSM), KeySize: to.Ptr[int32](3072)}, azkeys.KeyTypeRSAHSM},
		{"csr-ec", &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeECHSM), Curve: to.Ptr(azcertificates.CurveNameP384)}, azkeys.KeyTypeECHSM},
	} {
		before := privateKeyObjects(t, nil)
		op, err := c.CreateCertificate(ctx, tc.name, azcertificates.CreateCertificateParameters{CertificatePolicy: hsmPolicy("Unknown", tc.kp)}, nil)
		if err != nil || *op.Status != "inProgress" || len(op.CSR) == 0 {
			t.Fatalf("%s: CreateCertificate(Unknown, %s) = %v; want inProgress with a CSR", tc.name, *tc.kp.KeyType, err)
		}
		csr, err := x509.ParseCertificateRequest(op.CSR)
		if err != nil || csr.CheckSignature() != nil {
			t.Fatalf("%s: the CSR signed in the token does not parse or verify: %v", tc.name, err)
		}
		switch pub := csr.PublicKey.(type) {
		case *rsa.PublicKey:
			if pub.N.BitLen() != 3072 {
				t.Errorf("%s: CSR key has %d bits; want 3072", tc.name, pub.N.BitLen())
			}
		case *ecdsa.PublicKey:
			if pub.Curve != elliptic.P384() {
				t.Errorf("%s: CSR key is on %s; want P-384", tc.name, pub.Curve.Params().Name)
			}
		}
		if csr.Subject.CommonName != "web.example.test" || len(csr.DNSNames) != 2 {
			t.Errorf("%s: CSR subject %s, DNS names %v; want the policy's", tc.name, csr.Subject, csr.DNSNames)
		}
		if n := privateKeyObjects(t, nil); n != before+1 {
			t.Fatalf("%s: the token holds %d private keys after the request; want %d (the CSR's key)", tc.name, n, before+1)
		}

		// Refused merges store nothing and keep the request and its key.
		_, err = c.MergeCertificate(ctx, tc.name, azcertificates.MergeCertificateParameters{X509Certificates: [][]byte{ca.sign(t, otherCSR), ca.cert.Raw}}, nil)
		wantRefused(t, tc.name+": merge of a certificate for another key", err, "is for the key of the pending request")
		_, err = c.MergeCertificate(ctx, tc.name, azcertificates.MergeCertificateParameters{X509Certificates: [][]byte{[]byte("not a certificate")}}, nil)
		wantCodeOf(t, tc.name+": merge of garbage", err, 400, "BadParameter")
		_, err = c.GetCertificate(ctx, tc.name, "", nil)
		wantCodeOf(t, tc.name+": GetCertificate after refused merges", err, 404, "CertificateNotFound")
		_, err = kc.GetKey(ctx, tc.name, "", nil)
		wantCodeOf(t, tc.name+": GetKey after refused merges", err, 404, "KeyNotFound")
		if op, err := c.GetCertificateOperation(ctx, tc.name, nil); err != nil || *op.Status != "inProgress" {
			t.Errorf("%s: operation after refused merges = %v; want inProgress", tc.name, err)
		}
		if n := privateKeyObjects(t, nil); n != before+1 {
			t.Errorf("%s: the token holds %d private keys after refused merges; want %d", tc.name, n, before+1)
		}

		signed := ca.sign(t, op.CSR)
		merged, err := c.MergeCertificate(ctx, tc.name, azcertificates.MergeCertificateParameters{X509Certificates: [][]byte{signed, ca.cert.Raw}}, nil)
		if err != nil {
			t.Fatalf("%s: MergeCertificate = %v", tc.name, err)
		}
		leaf, err := x509.ParseCertificate(merged.CER)
		if err != nil || string(leaf.Raw) != string(signed) {
			t.Fatalf("%s: merged certificate = %v; want the CA-signed one", tc.name, err)
		}
		if err := leaf.CheckSignatureFrom(ca.cert); err != nil || !leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(csr.PublicKey) {
			t.Errorf("%s: merged certificate: CA signature %v, same key as the CSR %v", tc.name, err, leaf.PublicKey)
		}
		key, err := kc.GetKey(ctx, tc.name, "", nil)
		if err != nil || *key.Key.Kty != tc.kty || key.Key.KID.Version() != merged.ID.Version() || key.Key.D != nil {
			t.Fatalf("%s: GetKey = %v %v; want the %s key of the merged version", tc.name, key.Key, err, tc.kty)
		}
		certSigns(t, kc, tc.name, "", leaf)
		secretHoldsNoKey(t, ts, tc.name)
		if n := privateKeyObjects(t, nil); n != before+1 {
			t.Errorf("%s: the token holds %d private keys after the merge; want %d (the CSR's key, now the version's)", tc.name, n, before+1)
		}
		_, err = c.MergeCertificate(ctx, tc.name, azcertificates.MergeCertificateParameters{X509Certificates: [][]byte{signed}}, nil)
		wantCodeOf(t, tc.name+": second merge", err, 404, "PendingCertificateNotFound")
	}

	// A cancelled or deleted request's key is destroyed in the token.
	kp := &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeRSAHSM)}
	for _, drop := range []string{"cancel", "delete"} {
		name := "csr-" + drop
		before := privateKeyObjects(t, nil)
		op, err := c.CreateCertificate(ctx, name, azcertificates.CreateCertificateParameters{CertificatePolicy: hsmPolicy("Unknown", kp)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := privateKeyObjects(t, nil); n != before+1 {
			t.Fatalf("%s: %d private keys after the request; want %d", name, n, before+1)
		}
		if drop == "cancel" {
			up, err := c.UpdateCertificateOperation(ctx, name, azcertificates.UpdateCertificateOperationParameter{CancellationRequested: to.Ptr(true)}, nil)
			if err != nil || *up.Status != "cancelled" {
				t.Fatalf("cancel = %v", err)
			}
		} else if _, err := c.DeleteCertificateOperation(ctx, name, nil); err != nil {
			t.Fatal(err)
		}
		if n := privateKeyObjects(t, nil); n != before {
			t.Errorf("%s: %d private keys after the request was dropped; want %d (its key destroyed)", name, n, before)
		}
		// A deleted request takes its certificate, which had no version, with it.
		code := map[string]string{"cancel": "PendingCertificateNotFound", "delete": "CertificateNotFound"}[drop]
		_, err = c.MergeCertificate(ctx, name, azcertificates.MergeCertificateParameters{X509Certificates: [][]byte{ca.sign(t, op.CSR)}}, nil)
		wantCodeOf(t, name+": merge after the request was dropped", err, 404, code)
	}
}

// TestCertificateReuseHSMKey (issue 5): with reuse_key a new version of an RSA-HSM
// certificate (self-signed, or through a CSR and merge) gets the latest version's key: one
// token object for all of them, each version signing with it. Neither a renewal that fails
// after the key was taken nor a cancelled CSR destroys that object; without reuse_key a
// version gets a key of its own; deleting and purging the certificate destroys each object
// once.
func TestCertificateReuseHSMKey(t *testing.T) {
	ts := startDev(t, softHSMToken(t)...)
	ctx := context.Background()
	c := certsClient(t, ts)
	kc := keysClient(t, ts)
	ca := newTestCA(t)
	kp := &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeRSAHSM), KeySize: to.Ptr[int32](2048), ReuseKey: to.Ptr(true)}
	v1, cert1 := createCert(t, c, "reuse", hsmPolicy("Self", kp))
	v2, cert2 := createCert(t, c, "reuse", hsmPolicy("Self", kp))
	n := modulus(t, cert1)
	if v1.ID.Version() == v2.ID.Version() || modulus(t, cert2).Cmp(n) != 0 {
		t.Fatalf("second version %s has modulus %x…; want a new version with the first's key", v2.ID.Version(), modulus(t, cert2).Bytes()[:8])
	}
	if got := privateKeyObjects(t, n); got != 1 {
		t.Fatalf("the token holds %d objects of the reused key; want 1", got)
	}
	for _, v := range []struct {
		ver  string
		cert *x509.Certificate
	}{{v1.ID.Version(), cert1}, {v2.ID.Version(), cert2}} {
		k, err := kc.GetKey(ctx, "reuse", v.ver, nil)
		if err != nil || new(big.Int).SetBytes(k.Key.N).Cmp(n) != 0 {
			t.Errorf("key version %s = %v; want the shared key", v.ver, err)
		}
		certSigns(t, kc, "reuse", v.ver, v.cert)
	}

	// A renewal that fails after taking the key (a TenantCA issuer without a CA) leaves it.
	if _, err := c.SetIssuer(ctx, "no-ca", azcertificates.SetIssuerParameters{Provider: to.Ptr("TenantCA")}, nil); err != nil {
		t.Fatal(err)
	}
	_, err := c.CreateCertificate(ctx, "reuse", azcertificates.CreateCertificateParameters{CertificatePolicy: hsmPolicy("no-ca", kp)}, nil)
	wantCodeOf(t, "a renewal by an issuer without a CA", err, 400, "BadParameter")
	if got := privateKeyObjects(t, n); got != 1 {
		t.Fatalf("after a failed renewal the token holds %d objects of the reused key; want 1", got)
	}
	certSigns(t, kc, "reuse", v2.ID.Version(), cert2)

	// Through a CSR: the request is for the same key; cancelling it keeps the key, merging
	// makes a version sharing it.
	op, err := c.CreateCertificate(ctx, "reuse", azcertificates.CreateCertificateParameters{CertificatePolicy: hsmPolicy("Unknown", kp)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if csr, err := x509.ParseCertificateRequest(op.CSR); err != nil || csr.CheckSignature() != nil || csr.PublicKey.(*rsa.PublicKey).N.Cmp(n) != 0 {
		t.Fatalf("CSR with reuse_key = %v; want one for the shared key", err)
	}
	if _, err := c.UpdateCertificateOperation(ctx, "reuse", azcertificates.UpdateCertificateOperationParameter{CancellationRequested: to.Ptr(true)}, nil); err != nil {
		t.Fatal(err)
	}
	if got := privateKeyObjects(t, n); got != 1 {
		t.Fatalf("after cancelling a request for the reused key the token holds %d objects of it; want 1", got)
	}
	certSigns(t, kc, "reuse", "", cert2)
	if op, err = c.CreateCertificate(ctx, "reuse", azcertificates.CreateCertificateParameters{CertificatePolicy: hsmPolicy("Unknown", kp)}, nil); err != nil {
		t.Fatal(err)
	}
	merged, err := c.MergeCertificate(ctx, "reuse", azcertificates.MergeCertificateParameters{X509Certificates: [][]byte{ca.sign(t, op.CSR)}}, nil)
	if err != nil {
		t.Fatalf("MergeCertificate with reuse_key = %v", err)
	}
	cert3, _ := x509.ParseCertificate(merged.CER)
	if modulus(t, cert3).Cmp(n) != 0 || privateKeyObjects(t, n) != 1 {
		t.Fatal("the merged version does not share the key")
	}
	certSigns(t, kc, "reuse", merged.ID.Version(), cert3)
	certSigns(t, kc, "reuse", v1.ID.Version(), cert1)

	// Without reuse_key: a key of its own.
	kp.ReuseKey = to.Ptr(false)
	_, cert4 := createCert(t, c, "reuse", hsmPolicy("Self", kp))
	n4 := modulus(t, cert4)
	if n4.Cmp(n) == 0 || privateKeyObjects(t, n4) != 1 || privateKeyObjects(t, n) != 1 {
		t.Fatal("a version without reuse_key does not have a key object of its own")
	}

	// Purge destroys both objects (four versions, two objects) and succeeds.
	if _, err := c.DeleteCertificate(ctx, "reuse", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PurgeDeletedCertificate(ctx, "reuse", nil); err != nil {
		t.Fatalf("PurgeDeletedCertificate = %v", err)
	}
	if a, b := privateKeyObjects(t, n), privateKeyObjects(t, n4); a != 0 || b != 0 {
		t.Errorf("after the purge the token holds %d and %d objects of the certificate's keys; want none", a, b)
	}
}

// tenantCertsClient makes a second tenant with a vault and an administrator of it and
// returns an azcertificates client for that vault.
func tenantCertsClient(t *testing.T, ts *testServer, vault string) *azcertificates.Client {
	t.Helper()
	tb := secondTenantVault(t, ts, vault)
	return azcertificatesClient(t, tb.url, tb.cred, tb.hc)
}

// secondTenant is a tenant made by secondTenantVault: its vault's URL and the credential of
// a principal holding Key Vault Administrator over the tenant.
type secondTenant struct {
	url  string
	cred azcore.TokenCredential
	hc   *http.Client
}

// secondTenantVault makes tenant "Tenant B" with the vault named vault and a service
// principal holding Key Vault Administrator over the tenant.
func secondTenantVault(t *testing.T, ts *testServer, vault string) secondTenant {
	t.Helper()
	ctx := context.Background()
	tb, err := ts.tenants.CreateTenant(ctx, "", "Tenant B")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.tenants.CreateVault(ctx, tb.ID, tenancy.KindVault, vault, tenancy.VaultOptions{}); err != nil {
		t.Fatal(err)
	}
	pb, secret, err := ts.tenants.CreateServicePrincipal(ctx, tb.ID, "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.tenants.CreateRoleAssignment(ctx, authz.Assignment{PrincipalID: pb.ObjectID, TenantID: tb.ID, RoleDefinitionID: mustRole("Key Vault Administrator"), Scope: "/tenants/" + tb.ID}); err != nil {
		t.Fatal(err)
	}
	cred, hc := tenantCredential(t, ts, tb.ID, pb.AppID, secret)
	return secondTenant{url: "https://" + vault + ".localhost:" + ts.resources().port + "/", cred: cred, hc: hc}
}

// TestCertificateBackupRestoreWithHSMKey (issue 6): with an SO PIN a certificate whose
// versions have HSM keys (two RSA-HSM versions sharing one key through reuse_key, an EC-HSM
// one) and a certificate mixing a software version and an HSM one round-trip backup →
// delete → purge → restore: every version's certificate comes back and its key signs in
// the token; the two RSA versions again share one object, made from the backup's wrapped
// key, whose secret attributes do not read and which no untrusted key can wrap; the keys
// are not exportable. Restoring again is 409; into another tenant, or a tampered blob, is
// 400 and makes nothing in the token.
func TestCertificateBackupRestoreWithHSMKey(t *testing.T) {
	ts := startDev(t, softHSMTokenSO(t)...)
	ctx := context.Background()
	c := certsClient(t, ts)
	kc := keysClient(t, ts)
	rsaKP := &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeRSAHSM), ReuseKey: to.Ptr(true)}
	ecKP := &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeECHSM), Curve: to.Ptr(azcertificates.CurveNameP256), ReuseKey: to.Ptr(true)}
	v1, cert1 := createCert(t, c, "hsm-bk", hsmPolicy("Self", rsaKP))
	v2, cert2 := createCert(t, c, "hsm-bk", hsmPolicy("Self", rsaKP))
	v3, cert3 := createCert(t, c, "hsm-bk", hsmPolicy("Self", ecKP)) // another type: a new key
	n := modulus(t, cert1)
	softPol := selfPolicy("application/x-pem-file", false)
	softPol.KeyProperties = &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeRSA), Exportable: to.Ptr(false)}
	m1, mcert1 := createCert(t, c, "mixed", softPol)
	m2, mcert2 := createCert(t, c, "mixed", hsmPolicy("Self", &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeRSAHSM)}))
	want := map[string][]struct {
		ver  string
		cert *x509.Certificate
	}{
		"hsm-bk": {{v1.ID.Version(), cert1}, {v2.ID.Version(), cert2}, {v3.ID.Version(), cert3}},
		"mixed":  {{m1.ID.Version(), mcert1}, {m2.ID.Version(), mcert2}},
	}
	backups := map[string][]byte{}
	for name := range want {
		backups[name] = backupAndPurge(t, c, name)
	}
	if got := privateKeyObjects(t, n); got != 0 {
		t.Fatalf("after the purge the token holds %d objects of the RSA key; want none", got)
	}

	// Bad restores make nothing: another tenant's vault, a tampered blob.
	before := privateKeyObjects(t, nil)
	other := tenantCertsClient(t, ts, "bvault")
	_, err := other.RestoreCertificate(ctx, azcertificates.RestoreCertificateParameters{CertificateBackup: backups["hsm-bk"]}, nil)
	wantCodeOf(t, "restore into another tenant", err, 400, "BadParameter")
	if _, err := other.GetCertificate(ctx, "hsm-bk", "", nil); err == nil {
		t.Error("a refused restore wrote the certificate into the other tenant")
	}
	tampered := append([]byte(nil), backups["hsm-bk"]...)
	tampered[len(tampered)/2] ^= 1
	_, err = c.RestoreCertificate(ctx, azcertificates.RestoreCertificateParameters{CertificateBackup: tampered}, nil)
	wantCodeOf(t, "restore of a tampered blob", err, 400, "BadParameter")
	if got := privateKeyObjects(t, nil); got != before {
		t.Fatalf("refused restores left %d private keys in the token; want %d", got, before)
	}

	for name, versions := range want {
		restored, err := c.RestoreCertificate(ctx, azcertificates.RestoreCertificateParameters{CertificateBackup: backups[name]}, nil)
		if err != nil {
			t.Fatalf("RestoreCertificate(%s) = %v", name, err)
		}
		if latest := versions[len(versions)-1]; restored.ID.Version() != latest.ver || string(restored.CER) != string(latest.cert.Raw) {
			t.Errorf("restored %s = %s; want its latest version %s", name, restored.ID.Version(), latest.ver)
		}
		for _, v := range versions {
			if _, got := getCert(t, c, name, v.ver); !got.Equal(v.cert) {
				t.Errorf("restored %s/%s is another certificate", name, v.ver)
			}
			certSigns(t, kc, name, v.ver, v.cert)
			k, err := kc.GetKey(ctx, name, v.ver, nil)
			if err != nil || k.Key.D != nil || (k.Attributes.Exportable != nil && *k.Attributes.Exportable) {
				t.Errorf("restored key %s/%s = %v; want no private part, not exportable", name, v.ver, err)
			}
		}
		secretHoldsNoKey(t, ts, name)
		_, err = c.RestoreCertificate(ctx, azcertificates.RestoreCertificateParameters{CertificateBackup: backups[name]}, nil)
		wantCodeOf(t, "second restore of "+name, err, 409, "Conflict")
	}
	// The two RSA versions share one restored object, which stays in the token.
	inToken(t, "coffer", func(p *p11.Ctx, s p11.SessionHandle) {
		objs := findObjects(t, p, s, p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY), p11.NewAttribute(p11.CKA_MODULUS, n.Bytes()))
		if len(objs) != 1 {
			t.Fatalf("the token holds %d objects of the restored RSA key; want 1 for both versions", len(objs))
		}
		untrusted, err := p.GenerateKey(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_GEN, nil)}, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY), p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
			p11.NewAttribute(p11.CKA_TOKEN, false), p11.NewAttribute(p11.CKA_WRAP, true), p11.NewAttribute(p11.CKA_VALUE_LEN, 32),
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []uint{p11.CKA_PRIVATE_EXPONENT, p11.CKA_PRIME_1} {
			if v, err := p.GetAttributeValue(s, objs[0], []*p11.Attribute{p11.NewAttribute(a, nil)}); err == nil {
				t.Errorf("attribute %#x of the restored key reads %d bytes; want CKR_ATTRIBUTE_SENSITIVE", a, len(v[0].Value))
			}
		}
		attrs, err := p.GetAttributeValue(s, objs[0], []*p11.Attribute{p11.NewAttribute(p11.CKA_SENSITIVE, nil), p11.NewAttribute(p11.CKA_WRAP_WITH_TRUSTED, nil)})
		if err != nil || len(attrs) != 2 || attrs[0].Value[0] != 1 || attrs[1].Value[0] != 1 {
			t.Errorf("restored key's CKA_SENSITIVE, CKA_WRAP_WITH_TRUSTED = %v %v; want both true", attrs, err)
		}
		if _, err := p.WrapKey(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_WRAP_PAD, nil)}, untrusted, objs[0]); err == nil || !strings.Contains(err.Error(), "CKR_KEY_NOT_WRAPPABLE") {
			t.Errorf("C_WrapKey of the restored key with an untrusted AES key = %v; want CKR_KEY_NOT_WRAPPABLE", err)
		}
	})
}

// TestCertificateBackupHSMKeyWithoutSOPIN: without an SO PIN a vault's certificate keys
// cannot leave the token even wrapped, so a certificate backup holds only a reference to
// their objects: it does not restore into another vault of the tenant while the original
// names the objects, nor after the purge destroyed them (400 each, nothing stored).
func TestCertificateBackupHSMKeyWithoutSOPIN(t *testing.T) {
	ts := startDev(t, softHSMToken(t)...)
	ctx := context.Background()
	c := certsClient(t, ts)
	devVault(t, ts, "cv2")
	cred, hc := devCredential(t, ts, ts.Dev.Credentials.ClientSecret)
	dst := azcertificatesClient(t, "https://cv2.localhost:"+ts.resources().port+"/", cred, hc)
	_, cert := createCert(t, c, "ref", hsmPolicy("Self", &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeECHSM)}))
	b, err := c.BackupCertificate(ctx, "ref", nil)
	if err != nil {
		t.Fatalf("BackupCertificate = %v", err)
	}
	_, err = dst.RestoreCertificate(ctx, azcertificates.RestoreCertificateParameters{CertificateBackup: b.Value}, nil)
	wantRefused(t, "restore into another vault while the original lives", err, "still belongs to a key of this tenant")
	if _, err := dst.GetCertificate(ctx, "ref", "", nil); err == nil {
		t.Error("a refused restore wrote the certificate into cv2")
	}
	certSigns(t, keysClient(t, ts), "ref", "", cert)
	if _, err := c.DeleteCertificate(ctx, "ref", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PurgeDeletedCertificate(ctx, "ref", nil); err != nil {
		t.Fatal(err)
	}
	_, err = c.RestoreCertificate(ctx, azcertificates.RestoreCertificateParameters{CertificateBackup: b.Value}, nil)
	wantRefused(t, "restore after the purge", err, "is no longer in the token")
	_, err = c.GetCertificate(ctx, "ref", "", nil)
	wantCodeOf(t, "GetCertificate after a refused restore", err, 404, "CertificateNotFound")
	_, err = keysClient(t, ts).GetKey(ctx, "ref", "", nil)
	wantCodeOf(t, "GetKey after a refused restore", err, 404, "KeyNotFound")
}

// azcertificatesClient is an azcertificates client for a vault URL.
func azcertificatesClient(t *testing.T, url string, cred azcore.TokenCredential, hc *http.Client) *azcertificates.Client {
	t.Helper()
	c, err := azcertificates.NewClient(url, cred, &azcertificates.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: hc}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tenantCredential is an azidentity credential of a service principal of any tenant.
func tenantCredential(t *testing.T, ts *testServer, tenantID, clientID, secret string) (azcore.TokenCredential, *http.Client) {
	t.Helper()
	hc := loopbackClient(t, ts.caFile)
	cred, err := azidentity.NewClientSecretCredential(tenantID, clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: ts.Dev.Credentials.AuthorityHost}, Transport: hc},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cred, hc
}

// wantCerts checks that the PEM text value holds the certificates want, in that order.
func wantCerts(t *testing.T, what, value string, want ...[]byte) {
	t.Helper()
	got := pemCerts(t, value)
	if len(got) != len(want) {
		t.Fatalf("%s holds %d certificates; want %d", what, len(got), len(want))
	}
	for i := range want {
		if string(got[i]) != string(want[i]) {
			t.Errorf("%s: certificate %d is not the expected one (order wrong)", what, i)
		}
	}
}

// pemCerts returns the CERTIFICATE blocks of a PEM secret value, in order.
func pemCerts(t *testing.T, value string) [][]byte {
	t.Helper()
	var out [][]byte
	for rest := []byte(value); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return out
		}
		if b.Type == "CERTIFICATE" {
			out = append(out, b.Bytes)
		}
	}
}

// TestCertificatePreserveCertOrder: with preserveCertOrder the chain in a certificate's
// secret keeps the order it was given in, on import (PEM: the CA certificate before the
// leaf) and on merge (x5c with the CA first; PEM, and PKCS#12 without a key), and through
// backup and restore; without it the leaf comes first. Either way the certificate (cer) is
// the leaf, and the flag is returned on the certificate and the operation.
func TestCertificatePreserveCertOrder(t *testing.T) {
	ts := startDev(t)
	ctx := context.Background()
	c := certsClient(t, ts)
	sc := secretsClient(t, ts, ts.Dev.Credentials.VaultURL)
	ca := newTestCA(t)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "order.example.test"}}, leafKey)
	leaf := ca.sign(t, csr)
	pk8, _ := x509.MarshalPKCS8PrivateKey(leafKey)
	given := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk8})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf}))
	order := func(preserve bool, leaf []byte) [][]byte {
		if preserve {
			return [][]byte{ca.cert.Raw, leaf}
		}
		return [][]byte{leaf, ca.cert.Raw}
	}
	wantSecret := func(name string, want [][]byte) {
		t.Helper()
		sec, err := sc.GetSecret(ctx, name, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		wantCerts(t, "secret of "+name, *sec.Value, want...)
	}
	for _, preserve := range []bool{true, false} {
		name := map[bool]string{true: "import-kept", false: "import-leaf-first"}[preserve]
		imp, err := c.ImportCertificate(ctx, name, azcertificates.ImportCertificateParameters{Base64EncodedCertificate: to.Ptr(given), PreserveCertOrder: to.Ptr(preserve)}, nil)
		if err != nil {
			t.Fatalf("ImportCertificate(preserveCertOrder %v) = %v", preserve, err)
		}
		if string(imp.CER) != string(leaf) || (imp.PreserveCertOrder != nil && *imp.PreserveCertOrder) != preserve {
			t.Errorf("%s: cer is the leaf %v, preserveCertOrder %v; want true, %v", name, string(imp.CER) == string(leaf), imp.PreserveCertOrder, preserve)
		}
		wantSecret(name, order(preserve, leaf))

		name = map[bool]string{true: "merge-kept", false: "merge-leaf-first"}[preserve]
		pol := selfPolicy("application/x-pem-file", true)
		pol.IssuerParameters.Name = to.Ptr("Unknown")
		op, err := c.CreateCertificate(ctx, name, azcertificates.CreateCertificateParameters{CertificatePolicy: pol, PreserveCertOrder: to.Ptr(preserve)}, nil)
		if err != nil || (op.PreserveCertOrder != nil && *op.PreserveCertOrder) != preserve {
			t.Fatalf("CreateCertificate(preserveCertOrder %v) = %v, %v", preserve, op.PreserveCertOrder, err)
		}
		signed := ca.sign(t, op.CSR)
		merged, err := c.MergeCertificate(ctx, name, azcertificates.MergeCertificateParameters{X509Certificates: [][]byte{ca.cert.Raw, signed}}, nil)
		if err != nil || string(merged.CER) != string(signed) {
			t.Fatalf("MergeCertificate(CA first) = %v; want the leaf as cer", err)
		}
		wantSecret(name, order(preserve, signed))
	}

	// The merged order survives backup, purge and restore.
	b := backupAndPurge(t, c, "merge-kept")
	restored, err := c.RestoreCertificate(ctx, azcertificates.RestoreCertificateParameters{CertificateBackup: b}, nil)
	if err != nil || restored.PreserveCertOrder == nil || !*restored.PreserveCertOrder {
		t.Fatalf("RestoreCertificate = %v; want preserveCertOrder kept", err)
	}
	wantSecret("merge-kept", order(true, restored.CER))

	// A PKCS#12 secret without a key (not exportable) keeps the order too.
	pol := selfPolicy("application/x-pkcs12", false)
	pol.IssuerParameters.Name = to.Ptr("Unknown")
	op, err := c.CreateCertificate(ctx, "merge-pfx", azcertificates.CreateCertificateParameters{CertificatePolicy: pol, PreserveCertOrder: to.Ptr(true)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	signed := ca.sign(t, op.CSR)
	if _, err := c.MergeCertificate(ctx, "merge-pfx", azcertificates.MergeCertificateParameters{X509Certificates: [][]byte{ca.cert.Raw, signed}}, nil); err != nil {
		t.Fatal(err)
	}
	certs, err := pkcs12.DecodeTrustStore(secretPFX(t, sc, "merge-pfx", nil), "")
	if err != nil || len(certs) != 2 || !certs[0].Equal(ca.cert) || string(certs[1].Raw) != string(signed) {
		t.Errorf("PKCS#12 secret = %d certificates, %v; want the CA, then the leaf", len(certs), err)
	}
}

// backupAndPurge backs a certificate up, deletes and purges it, and returns the backup.
func backupAndPurge(t *testing.T, c *azcertificates.Client, name string) []byte {
	t.Helper()
	ctx := context.Background()
	b, err := c.BackupCertificate(ctx, name, nil)
	if err != nil {
		t.Fatalf("BackupCertificate(%s) = %v", name, err)
	}
	if _, err := c.DeleteCertificate(ctx, name, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PurgeDeletedCertificate(ctx, name, nil); err != nil {
		t.Fatalf("PurgeDeletedCertificate(%s) = %v", name, err)
	}
	return b.Value
}

// secretPFX reads a certificate's secret (as opts ask) and returns the PFX its value holds.
func secretPFX(t *testing.T, sc *azsecrets.Client, name string, opts *azsecrets.GetSecretOptions) []byte {
	t.Helper()
	sec, err := sc.GetSecret(context.Background(), name, "", opts)
	if err != nil {
		t.Fatalf("GetSecret(%s) = %v", name, err)
	}
	pfx, err := base64.StdEncoding.DecodeString(*sec.Value)
	if err != nil {
		t.Fatalf("secret of %s is not base64: %v", name, err)
	}
	return pfx
}
