package server

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/coffer-kms/coffer/internal/certificates"
)

// certsClient is an azcertificates client for the dev vault.
func certsClient(t *testing.T, ts *testServer) *azcertificates.Client {
	t.Helper()
	cred, hc := devCredential(t, ts, ts.Dev.Credentials.ClientSecret)
	c, err := azcertificates.NewClient(ts.Dev.Credentials.VaultURL, cred, &azcertificates.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: hc}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitForCertificate polls the pending operation as the SDK's users do until it is no
// longer inProgress, and returns its final status.
func waitForCertificate(t *testing.T, c *azcertificates.Client, name string) azcertificates.CertificateOperation {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		op, err := c.GetCertificateOperation(context.Background(), name, nil)
		if err != nil {
			t.Fatalf("GetCertificateOperation(%s) = %v", name, err)
		}
		if *op.Status != "inProgress" {
			return op.CertificateOperation
		}
		if time.Now().After(deadline) {
			t.Fatalf("operation of %s still inProgress after 10s", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// selfPolicy is a self-signed policy with SANs of every kind.
func selfPolicy(contentType string, exportable bool) *azcertificates.CertificatePolicy {
	return &azcertificates.CertificatePolicy{
		IssuerParameters: &azcertificates.IssuerParameters{Name: to.Ptr("Self")},
		KeyProperties:    &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeEC), Curve: to.Ptr(azcertificates.CurveNameP256), Exportable: to.Ptr(exportable)},
		SecretProperties: &azcertificates.SecretProperties{ContentType: to.Ptr(contentType)},
		X509CertificateProperties: &azcertificates.X509CertificateProperties{
			Subject: to.Ptr("CN=web.example.test, O=Coffer Test"),
			SubjectAlternativeNames: &azcertificates.SubjectAlternativeNames{
				DNSNames:           []*string{to.Ptr("web.example.test"), to.Ptr("*.web.example.test")},
				Emails:             []*string{to.Ptr("ops@example.test")},
				IPAddresses:        []*string{to.Ptr("192.0.2.7")},
				UserPrincipalNames: []*string{to.Ptr("svc@example.test")},
			},
			KeyUsage:         []*azcertificates.KeyUsageType{to.Ptr(azcertificates.KeyUsageTypeDigitalSignature)},
			EnhancedKeyUsage: []*string{to.Ptr("1.3.6.1.5.5.7.3.1")},
			ValidityInMonths: to.Ptr[int32](6),
		},
	}
}

// hasUPN reports whether a certificate's SAN extension carries the UPN.
func hasUPN(c *x509.Certificate, upn string) bool {
	for _, ext := range c.Extensions {
		if ext.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 17}) && strings.Contains(string(ext.Value), upn) {
			return true
		}
	}
	return false
}

func TestCertificatesThroughAzureSDK(t *testing.T) {
	ts := startDev(t)
	ctx := context.Background()
	c := certsClient(t, ts)
	kc := keysClient(t, ts)
	sc := secretsClient(t, ts, ts.Dev.Credentials.VaultURL)

	// Create, self-signed, PEM content with the private key: 202, then poll to completion.
	created, err := c.CreateCertificate(ctx, "web", azcertificates.CreateCertificateParameters{
		CertificatePolicy: selfPolicy("application/x-pem-file", true), Tags: map[string]*string{"team": to.Ptr("web")},
	}, nil)
	if err != nil {
		t.Fatalf("CreateCertificate = %v", err)
	}
	if created.ID == nil || !strings.HasSuffix(string(*created.ID), "/certificates/web/pending") {
		t.Errorf("CreateCertificate operation id = %v", created.ID)
	}
	op := waitForCertificate(t, c, "web")
	if *op.Status != "completed" || op.Target == nil || !strings.HasSuffix(*op.Target, "/certificates/web") {
		t.Fatalf("operation = %s target %v; want completed", *op.Status, op.Target)
	}
	got, err := c.GetCertificate(ctx, "web", "", nil)
	if err != nil {
		t.Fatalf("GetCertificate = %v", err)
	}
	cert, err := x509.ParseCertificate(got.CER)
	if err != nil {
		t.Fatalf("cer does not parse: %v", err)
	}
	// Self-signed: verifies against itself; SANs, usages and validity as asked.
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "a.web.example.test", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("self-signed certificate does not verify: %v", err)
	}
	if cert.Subject.CommonName != "web.example.test" || len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.ParseIP("192.0.2.7")) ||
		len(cert.EmailAddresses) != 1 || !hasUPN(cert, "svc@example.test") {
		t.Errorf("certificate subject/SANs = %s %v %v %v", cert.Subject, cert.DNSNames, cert.IPAddresses, cert.EmailAddresses)
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("key usage = %v; want digitalSignature only", cert.KeyUsage)
	}
	if months := cert.NotAfter.Sub(cert.NotBefore).Hours() / 24 / 30; months < 5.8 || months > 6.2 {
		t.Errorf("validity = %v → %v; want 6 months", cert.NotBefore, cert.NotAfter)
	}
	thumb := sha1Sum(got.CER)
	if string(got.X509Thumbprint) != string(thumb) || !got.Attributes.Expires.Equal(cert.NotAfter) || *got.Tags["team"] != "web" {
		t.Errorf("bundle x5t/exp/tags = %x %v %v", got.X509Thumbprint, got.Attributes.Expires, got.Tags)
	}
	version := got.ID.Version()
	if got.KID.Version() != version || got.SID.Version() != version || got.Policy == nil || *got.Policy.IssuerParameters.Name != "Self" {
		t.Fatalf("kid/sid/policy = %v %v %+v; want the certificate's version", *got.KID, *got.SID, got.Policy)
	}

	// The key view: same version, managed, usable for sign; the signature checks against the
	// certificate's public key.
	key, err := kc.GetKey(ctx, "web", "", nil)
	if err != nil || key.Key.KID.Version() != version || key.Managed == nil || !*key.Managed {
		t.Fatalf("GetKey(web) = %+v, %v; want the managed key of the certificate's version", key.Key, err)
	}
	digest := sha256.Sum256([]byte("signed by the certificate key"))
	sig, err := kc.Sign(ctx, "web", version, azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest[:]}, nil)
	if err != nil {
		t.Fatalf("Sign with the certificate's key = %v", err)
	}
	pub := cert.PublicKey.(*ecdsa.PublicKey)
	r, s := new(big.Int).SetBytes(sig.Result[:32]), new(big.Int).SetBytes(sig.Result[32:])
	if !ecdsa.Verify(pub, digest[:], r, s) {
		t.Error("the certificate key's signature does not verify with the certificate")
	}
	// Its key usage (digitalSignature) decides its key_ops: it signs but does not encrypt.
	if len(key.Key.KeyOps) != 2 || *key.Key.KeyOps[0] != azkeys.KeyOperationSign {
		t.Errorf("key_ops = %v; want sign and verify (the certificate's key usage)", key.Key.KeyOps)
	}
	_, err = kc.Encrypt(ctx, "web", version, azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP), Value: []byte("x")}, nil)
	wantCode(t, err, 403, "Forbidden")
	// The secret view: PEM with the private key (exportable) matching the certificate.
	sec, err := sc.GetSecret(ctx, "web", "", nil)
	if err != nil || sec.Managed == nil || !*sec.Managed || *sec.ContentType != "application/x-pem-file" || sec.KID == nil || sec.KID.Version() != version {
		t.Fatalf("GetSecret(web) = %v; want the managed PEM secret", err)
	}
	keyBlock, rest := pem.Decode([]byte(*sec.Value))
	if keyBlock == nil || keyBlock.Type != "PRIVATE KEY" {
		t.Fatalf("secret does not start with a PKCS#8 key")
	}
	priv, err := x509.ParsePKCS8PrivateKey(keyBlock.Bytes)
	if err != nil || !priv.(*ecdsa.PrivateKey).PublicKey.Equal(pub) {
		t.Errorf("secret key does not match the certificate: %v", err)
	}
	if certBlock, _ := pem.Decode(rest); certBlock == nil || string(certBlock.Bytes) != string(got.CER) {
		t.Error("secret's certificate is not the certificate")
	}
	// Key and secret cannot be changed on their own.
	_, err = kc.DeleteKey(ctx, "web", nil)
	wantCode(t, err, 403, "Forbidden")
	_, err = sc.DeleteSecret(ctx, "web", nil)
	wantCode(t, err, 403, "Forbidden")
	_, err = sc.SetSecret(ctx, "web", azsecrets.SetSecretParameters{Value: to.Ptr("x")}, nil)
	wantCode(t, err, 403, "Forbidden")

	// A non-exportable PKCS#12 certificate: the secret carries the chain only.
	if _, err := c.CreateCertificate(ctx, "sealed", azcertificates.CreateCertificateParameters{CertificatePolicy: selfPolicy("application/x-pkcs12", false)}, nil); err != nil {
		t.Fatal(err)
	}
	waitForCertificate(t, c, "sealed")
	sealed, err := sc.GetSecret(ctx, "sealed", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	pfx, err := base64.StdEncoding.DecodeString(*sealed.Value)
	if err != nil || len(pfx) == 0 || strings.Contains(string(pfx), "PRIVATE KEY") {
		t.Fatalf("non-exportable secret = %v", err)
	}

	// Update: disabling the certificate disables its key too; policy get/update.
	if _, err := c.UpdateCertificate(ctx, "web", "", azcertificates.UpdateCertificateParameters{CertificateAttributes: &azcertificates.CertificateAttributes{Enabled: to.Ptr(false)}}, nil); err != nil {
		t.Fatal(err)
	}
	_, err = kc.Sign(ctx, "web", version, azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest[:]}, nil)
	wantCode(t, err, 403, "Forbidden")
	if _, err := c.UpdateCertificate(ctx, "web", version, azcertificates.UpdateCertificateParameters{CertificateAttributes: &azcertificates.CertificateAttributes{Enabled: to.Ptr(true)}}, nil); err != nil {
		t.Fatal(err)
	}
	pol, err := c.UpdateCertificatePolicy(ctx, "web", azcertificates.CertificatePolicy{
		X509CertificateProperties: &azcertificates.X509CertificateProperties{Subject: to.Ptr("CN=web2.example.test"), ValidityInMonths: to.Ptr[int32](3)},
	}, nil)
	if err != nil || *pol.X509CertificateProperties.Subject != "CN=web2.example.test" || *pol.KeyProperties.Curve != azcertificates.CurveNameP256 {
		t.Fatalf("UpdateCertificatePolicy = %+v, %v", pol.X509CertificateProperties, err)
	}
	if p, err := c.GetCertificatePolicy(ctx, "web", nil); err != nil || *p.X509CertificateProperties.Subject != "CN=web2.example.test" {
		t.Fatalf("GetCertificatePolicy = %v", err)
	}
	// A second version (create again) under the new policy; versions list both.
	if _, err := c.CreateCertificate(ctx, "web", azcertificates.CreateCertificateParameters{CertificatePolicy: &pol.CertificatePolicy}, nil); err != nil {
		t.Fatal(err)
	}
	waitForCertificate(t, c, "web")
	n := 0
	for vp := c.NewListCertificatePropertiesVersionsPager("web", nil); vp.More(); {
		p, err := vp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(p.Value)
	}
	if n != 2 {
		t.Errorf("versions = %d; want 2", n)
	}
	if kv, err := kc.GetKey(ctx, "web", "", nil); err != nil || kv.Key.KID.Version() == version {
		t.Errorf("the key's latest version did not follow the certificate: %v", err)
	}

	// Contacts and issuers.
	if _, err := c.SetContacts(ctx, azcertificates.Contacts{ContactList: []*azcertificates.Contact{{Email: to.Ptr("pki@example.test"), Name: to.Ptr("PKI")}}}, nil); err != nil {
		t.Fatal(err)
	}
	if ct, err := c.GetContacts(ctx, nil); err != nil || len(ct.ContactList) != 1 || *ct.ContactList[0].Email != "pki@example.test" {
		t.Fatalf("GetContacts = %v", err)
	}
	if _, err := c.DeleteContacts(ctx, nil); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetContacts(ctx, nil)
	wantCode(t, err, 404, "ContactsNotFound")
	if _, err := c.SetIssuer(ctx, "acme", azcertificates.SetIssuerParameters{Provider: to.Ptr("Other"), Credentials: &azcertificates.IssuerCredentials{AccountID: to.Ptr("acct"), Password: to.Ptr("issuer-password-canary")}}, nil); err != nil {
		t.Fatal(err)
	}
	is, err := c.GetIssuer(ctx, "acme", nil)
	if err != nil || *is.Provider != "Other" || (is.Credentials != nil && is.Credentials.Password != nil) {
		t.Fatalf("GetIssuer = %+v, %v; want the provider and no password", is.Issuer, err)
	}
	if up, err := c.UpdateIssuer(ctx, "acme", azcertificates.UpdateIssuerParameters{Provider: to.Ptr("Other2")}, nil); err != nil || *up.Provider != "Other2" {
		t.Fatalf("UpdateIssuer = %v", err)
	}
	issuers := 0
	for ip := c.NewListIssuerPropertiesPager(nil); ip.More(); {
		p, err := ip.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		issuers += len(p.Value)
	}
	if issuers != 1 {
		t.Errorf("issuers = %d; want 1", issuers)
	}
	// An issuer Coffer cannot sign with is refused at create.
	pol2 := selfPolicy("application/x-pem-file", true)
	pol2.IssuerParameters.Name = to.Ptr("acme")
	_, err = c.CreateCertificate(ctx, "via-acme", azcertificates.CreateCertificateParameters{CertificatePolicy: pol2}, nil)
	wantCode(t, err, 400, "BadParameter")
	if _, err := c.DeleteIssuer(ctx, "acme", nil); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetIssuer(ctx, "acme", nil)
	wantCode(t, err, 404, "CertificateIssuerNotFound")

	// Backup, delete (key and secret go too), recover, delete, purge, restore.
	backup, err := c.BackupCertificate(ctx, "web", nil)
	if err != nil || len(backup.Value) == 0 {
		t.Fatalf("BackupCertificate = %v", err)
	}
	del, err := c.DeleteCertificate(ctx, "web", nil)
	if err != nil || del.RecoveryID == nil || del.ScheduledPurgeDate == nil {
		t.Fatalf("DeleteCertificate = %v", err)
	}
	_, err = c.GetCertificate(ctx, "web", "", nil)
	wantCode(t, err, 404, "CertificateNotFound")
	_, err = kc.GetKey(ctx, "web", "", nil)
	wantCode(t, err, 404, "KeyNotFound")
	if _, err := kc.GetDeletedKey(ctx, "web", nil); err != nil {
		t.Errorf("the certificate's key is not soft-deleted with it: %v", err)
	}
	if _, err := c.GetDeletedCertificate(ctx, "web", nil); err != nil {
		t.Fatal(err)
	}
	deleted := 0
	for dp := c.NewListDeletedCertificatePropertiesPager(nil); dp.More(); {
		p, err := dp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		deleted += len(p.Value)
	}
	if deleted != 1 {
		t.Errorf("deleted certificates = %d; want 1", deleted)
	}
	_, err = c.CreateCertificate(ctx, "web", azcertificates.CreateCertificateParameters{CertificatePolicy: selfPolicy("application/x-pem-file", true)}, nil)
	wantCode(t, err, 409, "Conflict")
	if _, err := c.RecoverDeletedCertificate(ctx, "web", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.GetSecret(ctx, "web", "", nil); err != nil {
		t.Errorf("the certificate's secret did not come back with it: %v", err)
	}
	if _, err := c.DeleteCertificate(ctx, "web", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PurgeDeletedCertificate(ctx, "web", nil); err != nil {
		t.Fatal(err)
	}
	_, err = kc.GetDeletedKey(ctx, "web", nil)
	wantCode(t, err, 404, "KeyNotFound")
	restored, err := c.RestoreCertificate(ctx, azcertificates.RestoreCertificateParameters{CertificateBackup: backup.Value}, nil)
	if err != nil || restored.ID.Name() != "web" {
		t.Fatalf("RestoreCertificate = %v", err)
	}
	if _, err := kc.Sign(ctx, "web", restored.KID.Version(), azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest[:]}, nil); err != nil {
		t.Errorf("the restored certificate's key does not sign: %v", err)
	}
	_, err = c.RestoreCertificate(ctx, azcertificates.RestoreCertificateParameters{CertificateBackup: backup.Value}, nil)
	wantCode(t, err, 409, "Conflict")

	// Listing.
	names := map[string]bool{}
	for lp := c.NewListCertificatePropertiesPager(nil); lp.More(); {
		p, err := lp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range p.Value {
			names[it.ID.Name()] = true
		}
	}
	if !names["web"] || !names["sealed"] || len(names) != 2 {
		t.Errorf("listed = %v; want web and sealed", names)
	}
}

func sha1Sum(b []byte) []byte {
	h := crypto.SHA1.New()
	h.Write(b)
	return h.Sum(nil)
}

// testCA is a certificate authority a test signs CSRs with.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Outside CA"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key}
}

// sign signs a CSR (DER) for 90 days.
func (ca *testCA) sign(t *testing.T, csrDER []byte) []byte {
	t.Helper()
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil || csr.CheckSignature() != nil {
		t.Fatalf("CSR does not parse or verify: %v", err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: csr.Subject, DNSNames: csr.DNSNames, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestCertificateCSRMergeAndTenantCA(t *testing.T) {
	ts := startDev(t)
	ctx := context.Background()
	c := certsClient(t, ts)

	// Unknown issuer: the operation waits with a CSR; an outside CA signs it; merge.
	pol := selfPolicy("application/x-pkcs12", true)
	pol.IssuerParameters.Name = to.Ptr("Unknown")
	op, err := c.CreateCertificate(ctx, "outside", azcertificates.CreateCertificateParameters{CertificatePolicy: pol}, nil)
	if err != nil || *op.Status != "inProgress" || len(op.CSR) == 0 {
		t.Fatalf("CreateCertificate(Unknown) = %+v, %v; want inProgress with a CSR", op.Status, err)
	}
	_, err = c.GetCertificate(ctx, "outside", "", nil)
	wantCode(t, err, 404, "CertificateNotFound")
	pending := 0
	for lp := c.NewListCertificatePropertiesPager(&azcertificates.ListCertificatePropertiesOptions{IncludePending: to.Ptr(true)}); lp.More(); {
		p, err := lp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pending += len(p.Value)
	}
	if pending != 1 {
		t.Errorf("includePending listing = %d; want the pending certificate", pending)
	}
	ca := newTestCA(t)
	// A certificate for another key is refused and changes nothing.
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherCSR, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, otherKey)
	_, err = c.MergeCertificate(ctx, "outside", azcertificates.MergeCertificateParameters{X509Certificates: [][]byte{ca.sign(t, otherCSR)}}, nil)
	wantCode(t, err, 400, "BadParameter")
	signed := ca.sign(t, op.CSR)
	merged, err := c.MergeCertificate(ctx, "outside", azcertificates.MergeCertificateParameters{X509Certificates: [][]byte{signed, ca.cert.Raw}}, nil)
	if err != nil || string(merged.CER) != string(signed) {
		t.Fatalf("MergeCertificate = %v", err)
	}
	if done := waitForCertificate(t, c, "outside"); *done.Status != "completed" {
		t.Errorf("operation after merge = %s", *done.Status)
	}
	_, err = c.MergeCertificate(ctx, "outside", azcertificates.MergeCertificateParameters{X509Certificates: [][]byte{signed}}, nil)
	wantCode(t, err, 404, "PendingCertificateNotFound")

	// Cancel and delete an operation.
	if _, err := c.CreateCertificate(ctx, "cancel-me", azcertificates.CreateCertificateParameters{CertificatePolicy: pol}, nil); err != nil {
		t.Fatal(err)
	}
	if up, err := c.UpdateCertificateOperation(ctx, "cancel-me", azcertificates.UpdateCertificateOperationParameter{CancellationRequested: to.Ptr(true)}, nil); err != nil || *up.Status != "cancelled" {
		t.Fatalf("cancel = %v", err)
	}
	if _, err := c.DeleteCertificateOperation(ctx, "cancel-me", nil); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetCertificateOperation(ctx, "cancel-me", nil)
	wantCode(t, err, 404, "PendingCertificateNotFound")

	// The tenant CA: without one, a TenantCA issuer cannot sign; after it exists,
	// certificates chain to it.
	if _, err := c.SetIssuer(ctx, "tenant-ca", azcertificates.SetIssuerParameters{Provider: to.Ptr("TenantCA")}, nil); err != nil {
		t.Fatal(err)
	}
	caPol := selfPolicy("application/x-pem-file", true)
	caPol.IssuerParameters.Name = to.Ptr("tenant-ca")
	_, err = c.CreateCertificate(ctx, "internal", azcertificates.CreateCertificateParameters{CertificatePolicy: caPol}, nil)
	wantCode(t, err, 400, "BadParameter")
	// Through the management API, with the dev principal's management token.
	dev := ts.Dev.Credentials
	status, mtok := rawToken(t, ts, ts.client, dev.TenantID, dev.ClientID, dev.ClientSecret, ts.resources().Base())
	if status != 200 {
		t.Fatalf("management token = %d", status)
	}
	caPath := "/v1/tenants/" + dev.TenantID + "/ca"
	if status, raw := ts.mcall(t, "GET", caPath, mtok, nil); status != 404 {
		t.Fatalf("GET %s before creation = %d %s; want 404", caPath, status, raw)
	}
	if status, _ := ts.mcall(t, "POST", caPath, mtok, map[string]any{"validityMonths": 5000}); status != 400 {
		t.Errorf("POST %s with 5000 months = %d; want 400", caPath, status)
	}
	var info certificates.CAInfo
	ts.mjson(t, "POST", caPath, mtok, nil, 201, &info)
	var shown certificates.CAInfo
	ts.mjson(t, "GET", caPath, mtok, nil, 200, &shown)
	if shown.Thumbprint != info.Thumbprint {
		t.Errorf("GET %s = %s; want the CA just made (%s)", caPath, shown.Thumbprint, info.Thumbprint)
	}
	block, _ := pem.Decode([]byte(info.CertificatePEM))
	caCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !caCert.IsCA {
		t.Fatalf("tenant CA = %v", err)
	}
	if _, err := c.CreateCertificate(ctx, "internal", azcertificates.CreateCertificateParameters{CertificatePolicy: caPol}, nil); err != nil {
		t.Fatal(err)
	}
	waitForCertificate(t, c, "internal")
	got, err := c.GetCertificate(ctx, "internal", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(got.CER)
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "web.example.test"}); err != nil {
		t.Errorf("certificate does not chain to the tenant CA: %v", err)
	}
	// After rotation new certificates chain to the new CA, not the old.
	var info2 certificates.CAInfo
	ts.mjson(t, "POST", caPath, mtok, map[string]any{"subject": "CN=Second CA", "validityMonths": 12}, 201, &info2)
	if info2.Thumbprint == info.Thumbprint || info2.Subject != "CN=Second CA" {
		t.Fatalf("rotated CA = %+v", info2)
	}
	if _, err := c.CreateCertificate(ctx, "internal", azcertificates.CreateCertificateParameters{CertificatePolicy: caPol}, nil); err != nil {
		t.Fatal(err)
	}
	waitForCertificate(t, c, "internal")
	got2, _ := c.GetCertificate(ctx, "internal", "", nil)
	leaf2, _ := x509.ParseCertificate(got2.CER)
	if _, err := leaf2.Verify(x509.VerifyOptions{Roots: roots, DNSName: "web.example.test"}); err == nil {
		t.Error("a certificate issued after rotation still chains to the old CA")
	}
}

// opensslPFX makes a PFX with the openssl command line, or skips naming why.
func opensslPFX(t *testing.T, password string) []byte {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed: the PFX-made-by-another-tool case needs it")
	}
	dir := t.TempDir()
	key, crt, pfx := filepath.Join(dir, "k.pem"), filepath.Join(dir, "c.pem"), filepath.Join(dir, "c.pfx")
	run := func(args ...string) {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt, "-days", "30", "-subj", "/CN=imported.example.test")
	run("pkcs12", "-export", "-inkey", key, "-in", crt, "-out", pfx, "-passout", "pass:"+password)
	b, err := os.ReadFile(pfx)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCertificateImport(t *testing.T) {
	ts := startDev(t)
	ctx := context.Background()
	c := certsClient(t, ts)
	kc := keysClient(t, ts)
	pfx := opensslPFX(t, "s3cret")
	value := base64.StdEncoding.EncodeToString(pfx)

	// Bad input first: nothing is stored.
	for _, tc := range []struct {
		name, value, pwd string
	}{
		{"wrong password", value, "nope"},
		{"corrupt", base64.StdEncoding.EncodeToString(append(pfx[:len(pfx)/2:len(pfx)/2], 1, 2, 3)), "s3cret"},
		{"not base64 nor PEM", "%%%", ""},
		{"certificate without key", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: newTestCA(t).cert.Raw})), ""},
	} {
		_, err := c.ImportCertificate(ctx, "imported", azcertificates.ImportCertificateParameters{Base64EncodedCertificate: to.Ptr(tc.value), Password: to.Ptr(tc.pwd)}, nil)
		var re *azcore.ResponseError
		if !errors.As(err, &re) || re.StatusCode != 400 || re.ErrorCode != "BadParameter" {
			t.Errorf("%s: ImportCertificate = %v; want 400 BadParameter", tc.name, err)
		}
	}
	// A key that does not match the certificate (PEM).
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherDER, _ := x509.MarshalPKCS8PrivateKey(other)
	mismatch := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: otherDER})) + string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: newTestCA(t).cert.Raw}))
	_, err := c.ImportCertificate(ctx, "imported", azcertificates.ImportCertificateParameters{Base64EncodedCertificate: to.Ptr(mismatch)}, nil)
	wantCode(t, err, 400, "BadParameter")
	_, err = c.GetCertificate(ctx, "imported", "", nil)
	wantCode(t, err, 404, "CertificateNotFound")
	_, err = kc.GetKey(ctx, "imported", "", nil)
	wantCode(t, err, 404, "KeyNotFound")

	// The openssl PFX imports; the policy is derived from it; the key decrypts.
	imp, err := c.ImportCertificate(ctx, "imported", azcertificates.ImportCertificateParameters{Base64EncodedCertificate: to.Ptr(value), Password: to.Ptr("s3cret")}, nil)
	if err != nil {
		t.Fatalf("ImportCertificate(openssl PFX) = %v", err)
	}
	cert, _ := x509.ParseCertificate(imp.CER)
	if cert.Subject.CommonName != "imported.example.test" || *imp.Policy.KeyProperties.KeyType != azcertificates.KeyTypeRSA || *imp.Policy.KeyProperties.KeySize != 2048 ||
		*imp.Policy.SecretProperties.ContentType != "application/x-pkcs12" || !strings.Contains(*imp.Policy.X509CertificateProperties.Subject, "imported.example.test") {
		t.Errorf("imported bundle/policy = %s %+v", cert.Subject, imp.Policy.KeyProperties)
	}
	enc, err := kc.Encrypt(ctx, "imported", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: []byte("hello")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := kc.Decrypt(ctx, "imported", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: enc.Result}, nil)
	if err != nil || string(dec.Result) != "hello" {
		t.Errorf("the imported key does not decrypt: %v", err)
	}

	// The PFX secret read as PEM (outContentType): the key and the certificate.
	sc := secretsClient(t, ts, ts.Dev.Credentials.VaultURL)
	asPEM, err := sc.GetSecret(ctx, "imported", "", &azsecrets.GetSecretOptions{OutContentType: to.Ptr(azsecrets.ContentTypePEM)})
	if err != nil || *asPEM.ContentType != "application/x-pem-file" {
		t.Fatalf("GetSecret(outContentType PEM) = %v", err)
	}
	kb, rest := pem.Decode([]byte(*asPEM.Value))
	cb, _ := pem.Decode(rest)
	if kb == nil || kb.Type != "PRIVATE KEY" || cb == nil || string(cb.Bytes) != string(imp.CER) {
		t.Errorf("converted secret is not the key followed by the certificate")
	}

	// Bad policies and names.
	bad := selfPolicy("application/x-pem-file", true)
	bad.KeyProperties = &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeRSA), KeySize: to.Ptr[int32](1024)}
	_, err = c.CreateCertificate(ctx, "weak", azcertificates.CreateCertificateParameters{CertificatePolicy: bad}, nil)
	wantCode(t, err, 400, "BadParameter")
	_, err = c.CreateCertificate(ctx, "bad_name", azcertificates.CreateCertificateParameters{CertificatePolicy: selfPolicy("application/x-pem-file", true)}, nil)
	wantCode(t, err, 400, "BadParameter")
}

// TestCertificateAutoRenewAndNotice moves the server's clock past a policy's lifetime
// triggers: the scheduler renews an AutoRenew certificate (a new version with new validity,
// key and secret following) and records an EmailContacts notice for another.
func TestCertificateAutoRenewAndNotice(t *testing.T) {
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	cfg := loadConfig(t, "--dev", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--scheduler-interval", "50ms")
	ts := startWithClock(t, cfg, "", clock)
	ctx := context.Background()
	c := certsClient(t, ts)
	renew := selfPolicy("application/x-pem-file", true)
	renew.X509CertificateProperties.ValidityInMonths = to.Ptr[int32](1)
	renew.LifetimeActions = []*azcertificates.LifetimeAction{{
		Trigger: &azcertificates.LifetimeActionTrigger{LifetimePercentage: to.Ptr[int32](50)},
		Action:  &azcertificates.LifetimeActionType{ActionType: to.Ptr(azcertificates.CertificatePolicyActionAutoRenew)},
	}}
	notice := selfPolicy("application/x-pem-file", true)
	notice.X509CertificateProperties.ValidityInMonths = to.Ptr[int32](12)
	notice.LifetimeActions = []*azcertificates.LifetimeAction{{
		Trigger: &azcertificates.LifetimeActionTrigger{DaysBeforeExpiry: to.Ptr[int32](30)},
		Action:  &azcertificates.LifetimeActionType{ActionType: to.Ptr(azcertificates.CertificatePolicyActionEmailContacts)},
	}}
	for name, p := range map[string]*azcertificates.CertificatePolicy{"renewing": renew, "noticed": notice} {
		if _, err := c.CreateCertificate(ctx, name, azcertificates.CreateCertificateParameters{CertificatePolicy: p}, nil); err != nil {
			t.Fatal(err)
		}
		waitForCertificate(t, c, name)
	}
	if _, err := c.SetContacts(ctx, azcertificates.Contacts{ContactList: []*azcertificates.Contact{{Email: to.Ptr("pki@example.test")}}}, nil); err != nil {
		t.Fatal(err)
	}
	first, err := c.GetCertificate(ctx, "renewing", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Read through the services: after the jump the SDK's cached token is expired for the
	// server's clock.
	id, err := ts.ident()
	if err != nil {
		t.Fatal(err)
	}
	base := ts.Dev.Credentials.VaultURL
	latest := func() (certificates.CertificateBundle, int) {
		b, err := id.certs.Get(ctx, *ts.devVault, base, "renewing", "")
		if err != nil {
			t.Fatal(err)
		}
		p, err := id.certs.ListVersions(ctx, *ts.devVault, base, "renewing", certificates.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return b, len(p.Value)
	}
	if _, n := latest(); n != 1 {
		t.Fatalf("versions before the trigger = %d", n)
	}
	offset.Store(int64(20 * 24 * time.Hour)) // past 50% of one month
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, n := latest(); n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the scheduler did not renew the certificate within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	renewed, _ := latest()
	leaf, err := x509.ParseCertificate(renewed.CER)
	if err != nil || renewed.ID == string(*first.ID) || !leaf.NotAfter.After(*first.Attributes.Expires) {
		t.Fatalf("renewed version %s expires %v; want a new version expiring after %v", renewed.ID, leaf.NotAfter, first.Attributes.Expires)
	}
	k, err := id.keys.Get(ctx, *ts.devVault, base, "renewing", "")
	if err != nil || !strings.HasSuffix(renewed.KID, "/"+k.Key.KID[strings.LastIndex(k.Key.KID, "/")+1:]) {
		t.Errorf("the key's latest version (%v) does not follow the renewal (%s)", err, renewed.KID)
	}
	// The 12-month certificate is not due for its notice yet; 11 months on it is.
	if evs, _ := id.certs.Events(ctx, *ts.devVault); len(evs) != 0 {
		t.Fatalf("events before the notice is due = %+v", evs)
	}
	offset.Store(int64(340 * 24 * time.Hour))
	deadline = time.Now().Add(10 * time.Second)
	for {
		evs, err := id.certs.Events(ctx, *ts.devVault)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > 0 {
			if evs[0].Certificate != "noticed" || len(evs[0].Contacts) != 1 || evs[0].Contacts[0] != "pki@example.test" {
				t.Errorf("notice = %+v", evs[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no EmailContacts notice within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Two more rounds, run here so that they surely happen (a fixed sleep may see none on a
	// loaded machine): the notice is recorded once.
	ts.runDue(ctx)
	ts.runDue(ctx)
	if evs, _ := id.certs.Events(ctx, *ts.devVault); len(evs) != 1 {
		t.Errorf("notices = %d; want exactly one per version", len(evs))
	}
}

// TestCertificateWithHSMKey: with a PKCS#11 token, a certificate policy of kty RSA-HSM or
// EC-HSM gets its key generated in the token; the certificate (self-signed through the
// token) verifies, its key signs in the token, and its secret carries no private key.
func TestCertificateWithHSMKey(t *testing.T) {
	flags := softHSMToken(t)
	ts := startDev(t, flags...)
	ctx := context.Background()
	c := certsClient(t, ts)
	kc := keysClient(t, ts)
	sc := secretsClient(t, ts, ts.Dev.Credentials.VaultURL)
	for _, tc := range []struct {
		name string
		kp   *azcertificates.KeyProperties
		alg  azkeys.SignatureAlgorithm
	}{
		{"hsm-rsa", &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeRSAHSM), KeySize: to.Ptr[int32](2048)}, azkeys.SignatureAlgorithmRS256},
		{"hsm-ec", &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeECHSM), Curve: to.Ptr(azcertificates.CurveNameP384)}, azkeys.SignatureAlgorithmES384},
	} {
		pol := selfPolicy("application/x-pem-file", false)
		pol.KeyProperties = tc.kp
		if _, err := c.CreateCertificate(ctx, tc.name, azcertificates.CreateCertificateParameters{CertificatePolicy: pol}, nil); err != nil {
			t.Fatalf("%s: CreateCertificate = %v", tc.name, err)
		}
		waitForCertificate(t, c, tc.name)
		got, err := c.GetCertificate(ctx, tc.name, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(got.CER)
		if err != nil {
			t.Fatal(err)
		}
		if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
			t.Errorf("%s: the token-signed self-signed certificate does not verify: %v", tc.name, err)
		}
		key, err := kc.GetKey(ctx, tc.name, "", nil)
		if err != nil || string(*key.Key.Kty) != string(*tc.kp.KeyType) || key.Key.KID.Version() != got.ID.Version() {
			t.Fatalf("%s: GetKey = %v %v; want the %s key of the certificate's version", tc.name, key.Key, err, *tc.kp.KeyType)
		}
		h := crypto.SHA256
		if tc.alg == azkeys.SignatureAlgorithmES384 {
			h = crypto.SHA384
		}
		hh := h.New()
		hh.Write([]byte("hsm certificate"))
		digest := hh.Sum(nil)
		sig, err := kc.Sign(ctx, tc.name, "", azkeys.SignParameters{Algorithm: to.Ptr(tc.alg), Value: digest}, nil)
		if err != nil {
			t.Fatalf("%s: Sign = %v", tc.name, err)
		}
		switch pub := cert.PublicKey.(type) {
		case *rsa.PublicKey:
			if err := rsa.VerifyPKCS1v15(pub, h, digest, sig.Result); err != nil {
				t.Errorf("%s: the key's signature does not verify with the certificate: %v", tc.name, err)
			}
		case *ecdsa.PublicKey:
			n := len(sig.Result) / 2
			if !ecdsa.Verify(pub, digest, new(big.Int).SetBytes(sig.Result[:n]), new(big.Int).SetBytes(sig.Result[n:])) {
				t.Errorf("%s: the key's signature does not verify with the certificate", tc.name)
			}
		}
		sec, err := sc.GetSecret(ctx, tc.name, "", nil)
		if err != nil || strings.Contains(*sec.Value, "PRIVATE KEY") || !strings.Contains(*sec.Value, "CERTIFICATE") {
			t.Errorf("%s: the secret of an HSM certificate = %v; want the chain only", tc.name, err)
		}
	}
	// Exportable HSM keys are refused (backups: TestCertificateBackupRestoreWithHSMKey).
	pol := selfPolicy("application/x-pem-file", true)
	pol.KeyProperties = &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeRSAHSM), Exportable: to.Ptr(true)}
	_, err := c.CreateCertificate(ctx, "hsm-export", azcertificates.CreateCertificateParameters{CertificatePolicy: pol}, nil)
	wantCode(t, err, 400, "BadParameter")
}

// TestAuditSyncInterval: with --audit-sync-interval the record of a request is in the
// audit file when the response arrives (written before it; the sync follows), and the log
// verifies.
func TestAuditSyncInterval(t *testing.T) {
	ts := startDev(t, "--audit-sync-interval", "200ms")
	ctx := context.Background()
	c := certsClient(t, ts)
	if _, err := c.SetContacts(ctx, azcertificates.Contacts{ContactList: []*azcertificates.Contact{{Email: to.Ptr("a@example.test")}}}, nil); err != nil {
		t.Fatal(err)
	}
	log, err := os.ReadFile(filepath.Join(ts.cfg.DataDir, AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), `"CertificateContactsSet"`) {
		t.Fatal("the audit record of an answered request is not in the file")
	}
}

// TestProbesAreAudited: health, readiness, metrics and the identity provider's discovery
// documents leave an audit record each (issue 3: every request, authenticated or not).
func TestProbesAreAudited(t *testing.T) {
	ts := startDev(t)
	hc := loopbackClient(t, ts.caFile)
	tenant := ts.Dev.Credentials.TenantID
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/v1/sys/seal-status", "/" + tenant + "/v2.0/.well-known/openid-configuration", "/" + tenant + "/discovery/v2.0/keys"} {
		resp, err := hc.Get(ts.URL() + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d", p, resp.StatusCode)
		}
	}
	log, err := os.ReadFile(filepath.Join(ts.cfg.DataDir, AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"Health", "Ready", "Metrics", "SealStatus", "OpenIDConfiguration", "JWKS"} {
		if !strings.Contains(string(log), `"op":"`+op+`"`) {
			t.Errorf("no audit record for %s", op)
		}
	}
}

// TestBadAttestationFilesStopTheStart: a malformed --attest-sim-keys or
// --attest-tdx-collateral file is refused at start, naming the setting.
func TestBadAttestationFilesStopTheStart(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, setting := range []string{"attest-sim-keys", "attest-tdx-collateral"} {
		cfg := loadConfig(t, "--dev", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--"+setting, bad)
		s := New(cfg, io.Discard, io.Discard)
		err := s.Start(context.Background())
		if err == nil {
			s.Shutdown(context.Background())
		}
		if err == nil || !strings.Contains(err.Error(), setting) {
			t.Errorf("start with a bad --%s = %v; want an error naming the setting", setting, err)
		}
	}
}

// TestCertificateListKeepsIncludePending pages through an includePending listing one item
// a page: every nextLink keeps includePending, so the later pages still list pending
// certificates.
func TestCertificateListKeepsIncludePending(t *testing.T) {
	ts := startDev(t)
	ctx := context.Background()
	c := certsClient(t, ts)
	for _, name := range []string{"pending1", "pending2", "pending3"} {
		pol := selfPolicy("application/x-pkcs12", true)
		pol.IssuerParameters.Name = to.Ptr("Unknown")
		if _, err := c.CreateCertificate(ctx, name, azcertificates.CreateCertificateParameters{CertificatePolicy: pol}, nil); err != nil {
			t.Fatalf("CreateCertificate(%s) = %v", name, err)
		}
	}
	dev := ts.Dev.Credentials
	hc := loopbackClient(t, ts.caFile)
	_, tok := rawToken(t, ts, hc, dev.TenantID, dev.ClientID, dev.ClientSecret, ts.resources().Base())
	items, pages, next := pageAll(t, hc, tok, dev.VaultURL+"certificates?api-version=7.6&maxresults=1&includePending=true")
	if len(items) != 3 || pages != 3 || !strings.Contains(next, "includePending=true") {
		t.Errorf("includePending listing, one a page = %d items in %d pages (first nextLink %q); want 3 in 3", len(items), pages, next)
	}
}
