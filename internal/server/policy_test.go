package server

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

func policyFor(resource string) policy.TokenRequestOptions {
	return policy.TokenRequestOptions{Scopes: []string{resource + "/.default"}}
}

func selfSignedClientCert(t *testing.T) ([]*x509.Certificate, crypto.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "coffer test client"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return []*x509.Certificate{cert}, key
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func readAudit(t *testing.T, ts *testServer) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ts.cfg.DataDir, AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
