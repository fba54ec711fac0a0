package server

import (
	"context"
	"encoding/pem"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// TestOutContentTypeKeepsPreservedOrder: a certificate merged with preserveCertOrder (x5c:
// the CA first) into an exportable PKCS#12 secret — which, holding the key, starts with the
// leaf — reads as PEM (outContentType) with the key and the chain in the order given, also
// after backup and restore; without preserveCertOrder the leaf comes first. PEM content read
// as PKCS#12 holds the key with the leaf first (docs/COMPAT.md).
func TestOutContentTypeKeepsPreservedOrder(t *testing.T) {
	ts := startDev(t)
	ctx := context.Background()
	c := certsClient(t, ts)
	sc := secretsClient(t, ts, ts.Dev.Credentials.VaultURL)
	ca := newTestCA(t)
	asPEM := &azsecrets.GetSecretOptions{OutContentType: to.Ptr(azsecrets.ContentTypePEM)}
	merge := func(name, contentType string, preserve bool) []byte {
		t.Helper()
		pol := selfPolicy(contentType, true)
		pol.IssuerParameters.Name = to.Ptr("Unknown")
		op, err := c.CreateCertificate(ctx, name, azcertificates.CreateCertificateParameters{CertificatePolicy: pol, PreserveCertOrder: to.Ptr(preserve)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		signed := ca.sign(t, op.CSR)
		if _, err := c.MergeCertificate(ctx, name, azcertificates.MergeCertificateParameters{X509Certificates: [][]byte{ca.cert.Raw, signed}}, nil); err != nil {
			t.Fatalf("MergeCertificate(%s) = %v", name, err)
		}
		return signed
	}
	// wantPEM reads name's secret as PEM and checks the key block comes first, then the
	// certificates in order want.
	wantPEM := func(what, name string, want ...[]byte) {
		t.Helper()
		sec, err := sc.GetSecret(ctx, name, "", asPEM)
		if err != nil || *sec.ContentType != "application/x-pem-file" {
			t.Fatalf("%s: GetSecret(outContentType PEM) = %v", what, err)
		}
		if b, _ := pem.Decode([]byte(*sec.Value)); b == nil || b.Type != "PRIVATE KEY" {
			t.Errorf("%s: the converted secret does not start with the private key", what)
		}
		wantCerts(t, what, *sec.Value, want...)
	}

	kept := merge("pfx-kept", "application/x-pkcs12", true)
	wantPEM("preserveCertOrder", "pfx-kept", ca.cert.Raw, kept)
	leafFirst := merge("pfx-leaf-first", "application/x-pkcs12", false)
	wantPEM("without preserveCertOrder", "pfx-leaf-first", leafFirst, ca.cert.Raw)

	b := backupAndPurge(t, c, "pfx-kept")
	if _, err := c.RestoreCertificate(ctx, azcertificates.RestoreCertificateParameters{CertificateBackup: b}, nil); err != nil {
		t.Fatal(err)
	}
	wantPEM("restored with preserveCertOrder", "pfx-kept", ca.cert.Raw, kept)

	// PEM kept in order, read as PKCS#12: the key's certificate first, then the CA.
	pemKept := merge("pem-kept", "application/x-pem-file", true)
	pfx := secretPFX(t, sc, "pem-kept", &azsecrets.GetSecretOptions{OutContentType: to.Ptr(azsecrets.ContentTypePFX)})
	_, leaf, cas, err := pkcs12.DecodeChain(pfx, "")
	if err != nil || string(leaf.Raw) != string(pemKept) || len(cas) != 1 || !cas[0].Equal(ca.cert) {
		t.Errorf("PEM secret as PKCS#12 = %v; want the key with the leaf, then the CA", err)
	}
}
