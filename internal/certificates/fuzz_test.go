package certificates

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/tenancy"
)

// FuzzRestoreBody fuzzes what is behind a certificate backup blob's AEAD: the body is sealed
// with the installation's key and restored into a fresh vault. Restore must fail with
// ErrBadParameter alone, or restore a certificate that reads back and whose own backup
// restores into another vault of the tenant.
func FuzzRestoreBody(f *testing.F) {
	ctx := context.Background()
	seed := newEnv(f)
	for i, p := range []*Policy{ecPolicy(true), ecPolicy(false)} {
		name := []string{"exportable", "fixed"}[i]
		for j := 0; j < 2; j++ {
			if _, err := seed.certs.Create(ctx, seed.vault, base, name, CreateParams{Policy: p, Tags: map[string]string{"n": name}}); err != nil {
				f.Fatal(err)
			}
		}
		bk, err := seed.certs.Backup(ctx, seed.vault, name)
		if err != nil {
			f.Fatal(err)
		}
		plain, err := seed.certs.backup.Open(bk.Value, []byte(backupAAD+seed.vault.TenantID))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(plain)
	}
	f.Fuzz(func(t *testing.T, plain []byte) {
		e := newEnv(t)
		blob, err := e.certs.backup.Seal(plain, []byte(backupAAD+e.vault.TenantID))
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.certs.Restore(ctx, e.vault, base, blob)
		if err != nil {
			if !errors.Is(err, ErrBadParameter) {
				t.Fatalf("Restore = %v; want ErrBadParameter or success", err)
			}
			return
		}
		name := strings.TrimPrefix(got.ID, base+"/certificates/")
		name = name[:strings.IndexByte(name, '/')]
		latest, err := e.certs.Get(ctx, e.vault, base, name, "")
		if err != nil || latest.ID != got.ID || !bytes.Equal(latest.CER, got.CER) {
			t.Fatalf("Get(%q) after Restore = %s, %v; want %s", name, latest.ID, err, got.ID)
		}
		if _, err := x509.ParseCertificate(latest.CER); err != nil {
			t.Fatalf("a restored certificate does not parse: %v", err)
		}
		again, err := e.certs.Backup(ctx, e.vault, name)
		if err != nil {
			t.Fatalf("Backup of a restored certificate = %v", err)
		}
		other := tenancy.Vault{TenantID: e.vault.TenantID, Kind: tenancy.KindVault, Name: "v2"}
		if _, err := e.certs.Restore(ctx, other, base, again.Value); err != nil {
			t.Fatalf("Restore of the restored certificate's backup = %v", err)
		}
	})
}

// FuzzMerge merges arbitrary x5c chains (MergeCertificate) into a pending Unknown-issuer
// request whose key is reused from the certificate's first version, so a seed signed for it
// stays valid. A merge must fail with ErrBadParameter, or (only when a certificate in x5c is
// for the pending key) make a version whose certificate is that one.
func FuzzMerge(f *testing.F) {
	ctx := context.Background()
	e := newEnv(f)
	reuse, exportable := true, true
	policy := func(issuer string) *Policy {
		p := ecPolicy(exportable)
		p.KeyProps.ReuseKey, p.Issuer = &reuse, &IssuerParams{Name: issuer}
		return p
	}
	if _, err := e.certs.Create(ctx, e.vault, base, "m", CreateParams{Policy: policy("Self")}); err != nil {
		f.Fatal(err)
	}
	pend := func(tb testing.TB) *x509.CertificateRequest {
		if _, err := e.certs.Create(ctx, e.vault, base, "m", CreateParams{Policy: policy("Unknown")}); err != nil {
			tb.Fatal(err)
		}
		op, err := e.certs.GetOperation(ctx, e.vault, base, "m")
		if err != nil {
			tb.Fatal(err)
		}
		csr, err := x509.ParseCertificateRequest(op.CSR)
		if err != nil {
			tb.Fatal(err)
		}
		return csr
	}
	csr := pend(f)
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	now := e.now
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Fuzz CA"}, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		f.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: csr.Subject, DNSNames: csr.DNSNames, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(0, 3, 0),
		KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, csr.PublicKey, caKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(leafDER, caDER)
	f.Add(leafDER, []byte(nil))
	f.Add(caDER, leafDER)
	f.Add(caDER, []byte(nil))

	f.Fuzz(func(t *testing.T, first, second []byte) {
		x5c := []DER{first}
		if len(second) > 0 {
			x5c = append(x5c, second)
		}
		got, err := e.certs.Merge(ctx, e.vault, base, "m", MergeParams{X5C: x5c})
		if err != nil {
			if !errors.Is(err, ErrBadParameter) {
				t.Fatalf("Merge = %v; want ErrBadParameter or success", err)
			}
			return
		}
		if !bytes.Equal(got.CER, first) && !bytes.Equal(got.CER, second) {
			t.Fatalf("Merge made a version whose certificate is not one of x5c")
		}
		leaf, err := x509.ParseCertificate(got.CER)
		if err != nil || !samePublic(leaf.PublicKey, csr.PublicKey) {
			t.Fatalf("Merge accepted a certificate that is not for the pending key (%v)", err)
		}
		pend(t) // the next merge has a pending request again
	})
}
