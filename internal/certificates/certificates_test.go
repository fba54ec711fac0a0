package certificates

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/keys"
	"github.com/coffer-kms/coffer/internal/provider/soft"
	"github.com/coffer-kms/coffer/internal/records/recordstest"
	"github.com/coffer-kms/coffer/internal/secrets"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/storage/mem"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

const base = "https://v1.localhost:8443"

type env struct {
	store   storage.Backend
	keys    *keys.Service
	secrets *secrets.Service
	certs   *Service
	vault   tenancy.Vault
	now     time.Time
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{store: mem.New(), vault: tenancy.Vault{TenantID: "t1", Kind: tenancy.KindVault, Name: "v1"}, now: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return e.now }
	bk := bytes.Repeat([]byte{7}, 32)
	e.keys = keys.NewService(e.store, soft.New(), clock, bk)
	e.secrets = secrets.NewService(e.store, clock, bk)
	e.certs = NewService(e.store, e.keys, e.secrets, clock, bk, nil)
	return e
}

func intPtr(v int) *int { return &v }

func ecPolicy(exportable bool) *Policy {
	return &Policy{
		KeyProps:    &KeyProps{Kty: "EC", Crv: "P-256", Exportable: &exportable},
		SecretProps: &SecretProps{ContentType: "application/x-pem-file"},
		X509Props:   &X509Props{Subject: "CN=unit.example.test", SANs: &SANs{DNSNames: []string{"unit.example.test"}}, ValidityMonths: intPtr(3)},
		Issuer:      &IssuerParams{Name: "Self"},
	}
}

func TestPolicyDefaultsAndRejects(t *testing.T) {
	p, err := normalizePolicy(&Policy{X509Props: &X509Props{Subject: "CN=x"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.KeyProps.Kty != "RSA" || *p.KeyProps.KeySize != 2048 || !*p.KeyProps.Exportable || *p.KeyProps.ReuseKey ||
		p.SecretProps.ContentType != "application/x-pkcs12" || *p.X509Props.ValidityMonths != 12 || p.Issuer.Name != "Self" ||
		len(p.LifetimeActions) != 1 || p.LifetimeActions[0].Action.ActionType != ActionAutoRenew {
		t.Errorf("defaults = %+v %+v %+v", p.KeyProps, p.X509Props, p.LifetimeActions)
	}
	bad := map[string]*Policy{
		"nil":                  nil,
		"rsa 1024":             {KeyProps: &KeyProps{Kty: "RSA", KeySize: intPtr(1024)}, X509Props: &X509Props{Subject: "CN=x"}},
		"ec p-256k":            {KeyProps: &KeyProps{Kty: "EC", Crv: "P-256K"}, X509Props: &X509Props{Subject: "CN=x"}},
		"oct":                  {KeyProps: &KeyProps{Kty: "oct"}, X509Props: &X509Props{Subject: "CN=x"}},
		"content type":         {SecretProps: &SecretProps{ContentType: "text/plain"}, X509Props: &X509Props{Subject: "CN=x"}},
		"validity 0":           {X509Props: &X509Props{Subject: "CN=x", ValidityMonths: intPtr(0)}},
		"no subject, no SAN":   {X509Props: &X509Props{}},
		"bad dns":              {X509Props: &X509Props{SANs: &SANs{DNSNames: []string{"a..b"}}}},
		"bad key usage":        {X509Props: &X509Props{Subject: "CN=x", KeyUsage: []string{"everything"}}},
		"autorenew + Unknown":  {Issuer: &IssuerParams{Name: "Unknown"}, X509Props: &X509Props{Subject: "CN=x"}, LifetimeActions: []LifetimeAction{{Trigger: Trigger{LifetimePercentage: intPtr(80)}, Action: Action{ActionType: "AutoRenew"}}}},
		"both triggers":        {X509Props: &X509Props{Subject: "CN=x"}, LifetimeActions: []LifetimeAction{{Trigger: Trigger{LifetimePercentage: intPtr(80), DaysBeforeExpiry: intPtr(3)}, Action: Action{ActionType: "AutoRenew"}}}},
		"percentage 100":       {X509Props: &X509Props{Subject: "CN=x"}, LifetimeActions: []LifetimeAction{{Trigger: Trigger{LifetimePercentage: intPtr(100)}, Action: Action{ActionType: "AutoRenew"}}}},
		"days past validity":   {X509Props: &X509Props{Subject: "CN=x", ValidityMonths: intPtr(1)}, LifetimeActions: []LifetimeAction{{Trigger: Trigger{DaysBeforeExpiry: intPtr(28)}, Action: Action{ActionType: "EmailContacts"}}}},
		"unknown action":       {X509Props: &X509Props{Subject: "CN=x"}, LifetimeActions: []LifetimeAction{{Trigger: Trigger{LifetimePercentage: intPtr(80)}, Action: Action{ActionType: "Explode"}}}},
		"issuer name pattern":  {Issuer: &IssuerParams{Name: "no_underscores"}, X509Props: &X509Props{Subject: "CN=x"}},
		"exportable hsm key":   {KeyProps: &KeyProps{Kty: "RSA-HSM", Exportable: boolp(true)}, X509Props: &X509Props{Subject: "CN=x"}},
		"ec size/curve differ": {KeyProps: &KeyProps{Kty: "EC", Crv: "P-384", KeySize: intPtr(256)}, X509Props: &X509Props{Subject: "CN=x"}},
	}
	for name, p := range bad {
		if _, err := normalizePolicy(p); !errors.Is(err, ErrBadParameter) {
			t.Errorf("%s: normalizePolicy = %v; want ErrBadParameter", name, err)
		}
	}
}

// TestTakenNameChangesNothing: a certificate whose name a plain secret (or key) holds is a
// Conflict, and no key, secret or certificate version is left behind.
func TestTakenNameChangesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	v := secrets.Value("plain")
	if _, err := e.secrets.Set(ctx, e.vault, base, "taken", secrets.SetParams{Value: &v}); err != nil {
		t.Fatal(err)
	}
	before := dump(t, e.store)
	_, err := e.certs.Create(ctx, e.vault, base, "taken", CreateParams{Policy: ecPolicy(true)})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("Create over a plain secret = %v; want ErrConflict", err)
	}
	if after := dump(t, e.store); !equalDumps(before, after) {
		t.Errorf("a refused create changed storage: %d records before, %d after", len(before), len(after))
	}
	if _, err := e.keys.Get(ctx, e.vault, base, "taken", ""); !errors.Is(err, keys.ErrKeyNotFound) {
		t.Errorf("a key was left behind: %v", err)
	}
}

// dump reads every record of a store.
func dump(t *testing.T, s storage.Backend) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	opts := storage.ListOptions{}
	for {
		p, err := s.List(context.Background(), "", opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range p.Keys {
			b, err := s.Get(context.Background(), k)
			if err != nil {
				t.Fatal(err)
			}
			out[k] = b
		}
		if p.Next == "" {
			return out
		}
		opts.After = p.Next
	}
}

func equalDumps(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// TestNoKeyMaterialOutsideTheSecret: the private scalar of a certificate's key appears in no
// rendered answer except the exportable secret's value, and never in the non-exportable one.
func TestNoKeyMaterialOutsideTheSecret(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, exportable := range []bool{true, false} {
		name := map[bool]string{true: "open", false: "closed"}[exportable]
		op, err := e.certs.Create(ctx, e.vault, base, name, CreateParams{Policy: ecPolicy(exportable)})
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.certs.Get(ctx, e.vault, base, name, "")
		if err != nil {
			t.Fatal(err)
		}
		meta, err := readCert(ctx, e.store, scope{vault: e.vault, prefix: "tenants/t1/vaults/v1/"}, name, name)
		if err != nil {
			t.Fatal(err)
		}
		ver, err := readVersion(ctx, e.store, scope{vault: e.vault, prefix: "tenants/t1/vaults/v1/"}, name, meta, "")
		if err != nil {
			t.Fatal(err)
		}
		priv, err := x509.ParsePKCS8PrivateKey(ver.Key)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := priv.(*ecdsa.PrivateKey).Bytes()
		forms := []string{hex.EncodeToString(d), base64.StdEncoding.EncodeToString(d), base64.RawURLEncoding.EncodeToString(d), base64.StdEncoding.EncodeToString(ver.Key)[:40]}
		kb, _ := e.keys.Get(ctx, e.vault, base, name, "")
		pol, _ := e.certs.GetPolicy(ctx, e.vault, base, name)
		bk, _ := e.certs.Backup(ctx, e.vault, name)
		for what, v := range map[string]any{"create": op, "get": b, "key": kb, "policy": pol, "backup": bk} {
			j, _ := json.Marshal(v)
			for _, f := range forms {
				if strings.Contains(string(j), f) {
					t.Errorf("%s %s: the private key appears in the answer", name, what)
				}
			}
		}
		sec, err := e.secrets.Get(ctx, e.vault, base, name, "")
		if err != nil {
			t.Fatal(err)
		}
		hasKey := strings.Contains(string(*sec.Value), "PRIVATE KEY")
		if hasKey != exportable {
			t.Errorf("%s: secret holds the private key = %v; want %v", name, hasKey, exportable)
		}
	}
}

// backedUp creates certificate "b" and returns its backup.
func backedUp(t *testing.T, e *env) BackupResult {
	t.Helper()
	ctx := context.Background()
	if _, err := e.certs.Create(ctx, e.vault, base, "b", CreateParams{Policy: ecPolicy(true)}); err != nil {
		t.Fatal(err)
	}
	bk, err := e.certs.Backup(ctx, e.vault, "b")
	if err != nil {
		t.Fatal(err)
	}
	return bk
}

// TestBackupBlobRules: a tampered blob and a blob of another tenant restore nothing.
func TestBackupBlobRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	bk := backedUp(t, e)
	other := tenancy.Vault{TenantID: "t2", Kind: tenancy.KindVault, Name: "v2"}
	if _, err := e.certs.Restore(ctx, other, base, bk.Value); !errors.Is(err, ErrBadParameter) {
		t.Errorf("restore into another tenant = %v; want ErrBadParameter", err)
	}
	for _, i := range []int{0, 1, len(bk.Value) / 2, len(bk.Value) - 1} {
		bad := append([]byte(nil), bk.Value...)
		bad[i] ^= 1
		if _, err := e.certs.Restore(ctx, e.vault, base, bad); !errors.Is(err, ErrBadParameter) {
			t.Errorf("restore of a blob flipped at %d = %v; want ErrBadParameter", i, err)
		}
	}
	if _, err := e.certs.Restore(ctx, e.vault, base, bk.Value[:20]); !errors.Is(err, ErrBadParameter) {
		t.Errorf("restore of a truncated blob = %v", err)
	}
}

// failingMeta fails the next fail reads of certificate meta records inside transactions: a
// transient storage failure, not a missing record (reads outside transactions work).
type failingMeta struct {
	storage.Backend
	fail int
}

var errStorageDown = errors.New("storage is down")

func (f *failingMeta) Txn(ctx context.Context, fn func(storage.Tx) error) error {
	return f.Backend.Txn(ctx, func(tx storage.Tx) error { return fn(&failingMetaTx{Tx: tx, f: f}) })
}

type failingMetaTx struct {
	storage.Tx
	f *failingMeta
}

func (t *failingMetaTx) Get(ctx context.Context, key string) ([]byte, error) {
	if t.f.fail > 0 && strings.Contains(key, "/certs/") && strings.HasSuffix(key, "/meta") {
		t.f.fail--
		return nil, errStorageDown
	}
	return t.Tx.Get(ctx, key)
}

// TestRunDueKeepsEntriesOnStorageFailure: when the scheduler's read of a due certificate
// fails once (a transient storage failure), it reports the error and keeps the due purge
// for the next run, instead of taking the entry for a stale one (which swallowed the
// error); once storage works, the purge happens.
func TestRunDueKeepsEntriesOnStorageFailure(t *testing.T) {
	e := newEnv(t)
	fs := &failingMeta{Backend: e.store}
	clock := func() time.Time { return e.now }
	bk := bytes.Repeat([]byte{7}, 32)
	e.certs = NewService(fs, e.keys, e.secrets, clock, bk, nil)
	ctx := context.Background()
	if _, err := e.certs.Create(ctx, e.vault, base, "c1", CreateParams{Policy: ecPolicy(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.certs.Delete(ctx, e.vault, base, "c1"); err != nil {
		t.Fatal(err)
	}
	later := e.now.AddDate(0, 0, 100)
	fs.fail = 1
	if _, _, purged, err := e.certs.RunDue(ctx, later); !errors.Is(err, errStorageDown) || purged != 0 {
		t.Fatalf("RunDue with storage down = purged %d, %v; want 0 and the storage error", purged, err)
	}
	if _, _, purged, err := e.certs.RunDue(ctx, later); err != nil || purged != 1 {
		t.Fatalf("RunDue after storage recovered = purged %d, %v; want 1 (the entry was kept)", purged, err)
	}
}

// TestBackupBodyVersions: a body must say which versions have HSM keys: a version without a
// private key in a body without "v":2, a "v":2 body without the HSM key's backup, an
// unknown body version or a leaf position outside the chain are refused as corrupt, and
// nothing is restored.
func TestBackupBodyVersions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	bk := backedUp(t, e)
	aad := []byte(backupAAD + e.vault.TenantID)
	plain, err := e.certs.backup.Open(bk.Value, aad)
	if err != nil {
		t.Fatal(err)
	}
	other := tenancy.Vault{TenantID: e.vault.TenantID, Kind: tenancy.KindVault, Name: "v2"}
	for name, change := range map[string]func(*backupBody){
		"ok/as made":         func(*backupBody) {},
		"fail/no key, v1":    func(b *backupBody) { b.Versions[0].Key = nil },
		"fail/v2, no hsmKey": func(b *backupBody) { b.V = backupBodyHSM },
		"fail/v3":            func(b *backupBody) { b.V = 3 },
		"fail/leafAt":        func(b *backupBody) { b.Versions[0].LeafAt = len(b.Versions[0].Chain) },
	} {
		var body backupBody
		if err := json.Unmarshal(plain, &body); err != nil {
			t.Fatal(err)
		}
		change(&body)
		b, _ := json.Marshal(body)
		blob, err := e.certs.backup.Seal(b, aad)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.certs.Restore(ctx, other, base, blob)
		if strings.HasPrefix(name, "ok/") {
			if err != nil {
				t.Errorf("%s: Restore = %v", name, err)
			}
			if _, err := e.certs.Delete(ctx, other, base, "b"); err != nil {
				t.Fatal(err)
			}
			if err := e.certs.Purge(ctx, other, base, "b"); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if !errors.Is(err, ErrBadParameter) {
			t.Errorf("%s: Restore = %v; want ErrBadParameter", name, err)
		}
		if _, err := e.certs.Get(ctx, other, base, "b", ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: a refused restore left a certificate: %v", name, err)
		}
	}
}

// TestHSMPoliciesNormalize: HSM key policies may reuse keys and use the Unknown issuer
// (the key is made in the HSM, the CSR signed there); they still cannot be exportable.
func TestHSMPoliciesNormalize(t *testing.T) {
	for name, p := range map[string]*Policy{
		"hsm key + reuse":   {KeyProps: &KeyProps{Kty: "EC-HSM", ReuseKey: boolp(true)}, X509Props: &X509Props{Subject: "CN=x"}},
		"hsm key + Unknown": {KeyProps: &KeyProps{Kty: "RSA-HSM"}, Issuer: &IssuerParams{Name: "Unknown"}, X509Props: &X509Props{Subject: "CN=x"}},
	} {
		got, err := normalizePolicy(p)
		if err != nil || *got.KeyProps.Exportable {
			t.Errorf("%s: normalizePolicy = %v; want accepted, not exportable", name, err)
		}
	}
}

// selfSignedPEM is PEM text of a fresh P-256 key and a self-signed certificate for it.
func selfSignedPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "imported.unit.test"}, DNSNames: []string{"imported.unit.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	pk8, _ := x509.MarshalPKCS8PrivateKey(key)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk8})) + string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestImportPolicyWithoutX509Props: an import policy that names only the key and the
// content type takes the certificate's subject and names; with an HSM key type and no token
// (the software provider) the import is refused and stores nothing.
func TestImportPolicyWithoutX509Props(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	value := selfSignedPEM(t)
	keyOnly := func(kty string) *Policy {
		return &Policy{KeyProps: &KeyProps{Kty: kty, Crv: "P-256"}, SecretProps: &SecretProps{ContentType: "application/x-pem-file"}}
	}
	before := dump(t, e.store)
	_, err := e.certs.Import(ctx, e.vault, base, "hsm", ImportParams{Value: &value, Policy: keyOnly("EC-HSM")})
	if !errors.Is(err, keys.ErrBadParameter) {
		t.Errorf("Import(EC-HSM) without a token = %v; want the keys service's ErrBadParameter (400)", err)
	}
	if after := dump(t, e.store); !equalDumps(before, after) {
		t.Errorf("a refused import changed storage: %d records before, %d after", len(before), len(after))
	}
	b, err := e.certs.Import(ctx, e.vault, base, "soft", ImportParams{Value: &value, Policy: keyOnly("EC")})
	if err != nil {
		t.Fatalf("Import(key-only policy) = %v", err)
	}
	if xp := b.Policy.X509Props; xp.Subject != "CN=imported.unit.test" || xp.SANs == nil || len(xp.SANs.DNSNames) != 1 || b.Policy.KeyProps.Kty != "EC" {
		t.Errorf("policy = %+v, %+v; want the certificate's subject and DNS name, kty EC", xp, b.Policy.KeyProps)
	}
	// A policy without an issuer makes the import's issuer Unknown (no AutoRenew that would
	// replace it with a self-signed certificate), as an import without a policy does.
	if b.Policy.Issuer == nil || b.Policy.Issuer.Name != IssuerUnknown || len(b.Policy.LifetimeActions) != 1 || b.Policy.LifetimeActions[0].Action.ActionType != ActionEmailContacts {
		t.Errorf("imported policy issuer %+v, lifetime actions %+v; want Unknown and EmailContacts", b.Policy.Issuer, b.Policy.LifetimeActions)
	}
	self := keyOnly("EC")
	self.Issuer = &IssuerParams{Name: IssuerSelf}
	if b, err := e.certs.Import(ctx, e.vault, base, "self", ImportParams{Value: &value, Policy: self}); err != nil || b.Policy.Issuer.Name != IssuerSelf {
		t.Errorf("Import(policy naming Self) = %v, issuer %+v; want the issuer kept", err, b.Policy.Issuer)
	}
}

// TestRunDueGoesOnWhenADropFails: when dropping one stale entry fails, RunDue reports the
// failure, keeps that entry for the next run, and still handles the entries after it.
func TestRunDueGoesOnWhenADropFails(t *testing.T) {
	e := newEnv(t)
	fs := &recordstest.FailingDeletes{Backend: e.store, Prefix: schedulePrefix}
	e.certs = NewService(fs, e.keys, e.secrets, func() time.Time { return e.now }, bytes.Repeat([]byte{7}, 32), nil)
	ctx := context.Background()
	sc, err := newScope(e.vault, base)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ghost1", "ghost2"} {
		for _, prefix := range []string{purgePrefix, renewPrefix} {
			entry, _ := json.Marshal(scheduleEntry{TenantID: e.vault.TenantID, Vault: e.vault.Name, Name: name, Action: ActionAutoRenew})
			if err := e.store.Put(ctx, scheduleKey(prefix, e.now.Unix(), sc, name), entry); err != nil {
				t.Fatal(err)
			}
		}
	}
	left := func() int {
		page, err := e.store.List(ctx, schedulePrefix, storage.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Keys)
	}
	later := e.now.Add(time.Hour)
	fs.Fail(1)
	if _, _, _, err := e.certs.RunDue(ctx, later); !errors.Is(err, recordstest.ErrDeleteDown) {
		t.Errorf("RunDue with a failing drop = %v; want the storage error", err)
	}
	if n := left(); n != 1 {
		t.Errorf("%d schedule entries left after one failed drop; want 1 (the others were still handled)", n)
	}
	if _, _, _, err := e.certs.RunDue(ctx, later); err != nil || left() != 0 {
		t.Errorf("RunDue after storage recovered = %v, %d entries left; want nil, 0", err, left())
	}
}

// TestControlCharactersRefused: no control character reaches a certificate subject or an
// issuer's text (a NUL in a CN is the null-prefix attack); an issuer password stays opaque.
func TestControlCharactersRefused(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := ecPolicy(false)
	p.X509Props.Subject = "CN=www.bank.example\x00.evil.example"
	if _, err := e.certs.Create(ctx, e.vault, base, "nul", CreateParams{Policy: p}); !errors.Is(err, ErrBadParameter) {
		t.Errorf("Create with a NUL in the subject = %v; want ErrBadParameter", err)
	}
	for _, in := range []Issuer{
		{Provider: "a\x00b"},
		{Provider: "Test", Credentials: &IssuerCredentials{AccountID: "a\nb"}},
		{Provider: "Test", OrgDetails: &OrgDetails{ID: "org\r"}},
	} {
		if _, err := e.certs.SetIssuer(ctx, e.vault, base, "iss", in); !errors.Is(err, ErrBadParameter) {
			t.Errorf("SetIssuer(%+v) = %v; want ErrBadParameter", in, err)
		}
	}
	if _, err := e.certs.SetIssuer(ctx, e.vault, base, "iss", Issuer{Provider: "Test", Credentials: &IssuerCredentials{Password: "p\tw"}}); err != nil {
		t.Errorf("SetIssuer with a tab in the password = %v; want it taken as given", err)
	}
}

// TestUpdatePolicyNeedsAnIssuer: a policy update naming an issuer the vault does not have is
// refused, as a create is, rather than stored to fail at the next renewal.
func TestUpdatePolicyNeedsAnIssuer(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.certs.Create(ctx, e.vault, base, "c1", CreateParams{Policy: ecPolicy(false)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.certs.UpdatePolicy(ctx, e.vault, base, "c1", Policy{Issuer: &IssuerParams{Name: "nosuch"}}); !errors.Is(err, ErrIssuerNotFound) {
		t.Errorf("UpdatePolicy(issuer nosuch) = %v; want ErrIssuerNotFound", err)
	}
	if p, err := e.certs.GetPolicy(ctx, e.vault, base, "c1"); err != nil || p.Issuer.Name != IssuerSelf {
		t.Errorf("policy after the refused update = %+v, %v; want issuer Self", p.Issuer, err)
	}
	if _, err := e.certs.SetIssuer(ctx, e.vault, base, "acme", Issuer{Provider: "Test"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"acme", "Self"} {
		if _, err := e.certs.UpdatePolicy(ctx, e.vault, base, "c1", Policy{Issuer: &IssuerParams{Name: n}}); err != nil {
			t.Errorf("UpdatePolicy(issuer %s) = %v", n, err)
		}
	}
}
