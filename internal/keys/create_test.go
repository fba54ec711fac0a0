package keys

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/names"
	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

func TestCreate(t *testing.T) {
	f := newFixture(t)
	nbf, exp := t0.Unix()-10, t0.Unix()+3600
	tests := []struct {
		name, key string
		p         CreateParams
		wantKty   provider.KeyType
		wantCrv   provider.Curve
		wantOps   []string
	}{
		{"ok/rsa-defaults", "rsa1", rsaKey, provider.RSA, "", []string{"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"}},
		{"ok/ec-defaults", "ec1", ecKey, provider.EC, provider.P256, []string{"sign", "verify"}},
		{"ok/ec-p384-ops-tags-window", "Ec-Mixed-Case", CreateParams{Kty: provider.EC, Curve: provider.P384, KeyOps: []string{"SIGN", "sign"},
			Tags: map[string]string{"env": "prod"}, Attributes: &KeyAttributes{NotBefore: &nbf, Expires: &exp}}, provider.EC, provider.P384, []string{"sign"}},
		{"ok/ec-secp256k1", "k1", CreateParams{Kty: provider.EC, Curve: provider.P256K}, provider.EC, provider.P256K, []string{"sign", "verify"}},
		{"ok/disabled", "off", CreateParams{Kty: provider.EC, Attributes: &KeyAttributes{Enabled: ptr(false)}}, provider.EC, provider.P256, []string{"sign", "verify"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := f.mustCreate(f.v, tt.key, tt.p)
			if b.Key == nil || b.Key.Kty != tt.wantKty || b.Key.Crv != tt.wantCrv {
				t.Fatalf("Create(%q).Key = %v; want kty %s crv %q", tt.key, b.Key, tt.wantKty, tt.wantCrv)
			}
			wantPrefix := f.base + "/keys/" + tt.key + "/"
			if !strings.HasPrefix(b.Key.KID, wantPrefix) || !names.Version(versionOf(b.Key.KID)) || len(b.Key.KID) != len(wantPrefix)+32 {
				t.Errorf("Create(%q).Key.KID = %q; want %s<32 hex>", tt.key, b.Key.KID, wantPrefix)
			}
			if strings.Join(b.Key.KeyOps, ",") != strings.Join(tt.wantOps, ",") {
				t.Errorf("Create(%q).Key.KeyOps = %v; want %v", tt.key, b.Key.KeyOps, tt.wantOps)
			}
			a := b.Attributes
			if a.Created == nil || *a.Created != t0.Unix() || a.Updated == nil || *a.Updated != t0.Unix() {
				t.Errorf("Create(%q) created/updated = %v/%v; want %d", tt.key, a.Created, a.Updated, t0.Unix())
			}
			if a.RecoveryLevel != "Recoverable+Purgeable" || a.RecoverableDays == nil || *a.RecoverableDays != 90 {
				t.Errorf("Create(%q) recovery = %q/%v; want Recoverable+Purgeable/90", tt.key, a.RecoveryLevel, a.RecoverableDays)
			}
			wantEnabled := tt.p.Attributes == nil || tt.p.Attributes.Enabled == nil || *tt.p.Attributes.Enabled
			if a.Enabled == nil || *a.Enabled != wantEnabled {
				t.Errorf("Create(%q).Attributes.Enabled = %v; want %v", tt.key, a.Enabled, wantEnabled)
			}
			got, err := f.svc.Get(f.ctx, f.v, f.base, strings.ToUpper(tt.key), "")
			if err != nil {
				t.Fatalf("Get(%q) = %v", strings.ToUpper(tt.key), err)
			}
			if mustJSON(t, got) != mustJSON(t, b) {
				t.Errorf("Get(%q) = %s;\nwant %s", tt.key, mustJSON(t, got), mustJSON(t, b))
			}
		})
	}
}

func TestCreateRefused(t *testing.T) {
	f := newFixture(t)
	hsm := tenancy.Vault{TenantID: tenantA, Name: "pool1", Kind: tenancy.KindManagedHSM}
	manyTags := map[string]string{}
	for i := 0; i < 16; i++ {
		manyTags[strings.Repeat("t", i+1)] = "v"
	}
	policy := &ReleasePolicy{Data: simPolicy("aa")}
	tests := []struct {
		name, key string
		v         *tenancy.Vault
		p         CreateParams
		want      error
	}{
		{"fail/name-empty", "", nil, ecKey, ErrBadParameter},
		{"fail/name-slash", "a/b", nil, ecKey, ErrBadParameter},
		{"fail/name-dots", "..", nil, ecKey, ErrBadParameter},
		{"fail/name-underscore", "a_b", nil, ecKey, ErrBadParameter},
		{"fail/name-128", strings.Repeat("a", 128), nil, ecKey, ErrBadParameter},
		{"fail/name-unicode", "ké", nil, ecKey, ErrBadParameter},
		{"fail/kty-missing", "k", nil, CreateParams{}, ErrBadParameter},
		{"fail/kty-unknown", "k", nil, CreateParams{Kty: "DSA"}, ErrBadParameter},
		{"fail/oct-in-vault", "k", nil, CreateParams{Kty: provider.Oct}, ErrBadParameter},
		{"fail/oct-hsm-without-token", "k", &hsm, CreateParams{Kty: provider.OctHSM}, ErrKeyTypeNotSupported},
		{"fail/oct-hsm-in-vault-without-token", "k", nil, CreateParams{Kty: provider.OctHSM, KeySize: 256}, ErrKeyTypeNotSupported},
		{"fail/rsa-hsm-unsupported-by-soft", "k", nil, CreateParams{Kty: provider.RSAHSM}, ErrBadParameter},
		{"fail/rsa-1024", "k", nil, CreateParams{Kty: provider.RSA, KeySize: 1024}, ErrBadParameter},
		{"fail/rsa-exponent-3", "k", nil, CreateParams{Kty: provider.RSA, PublicExponent: 3}, ErrBadParameter},
		{"fail/ec-exponent", "k", nil, CreateParams{Kty: provider.EC, PublicExponent: 65537}, ErrBadParameter},
		{"fail/ec-curve", "k", nil, CreateParams{Kty: provider.EC, Curve: "P-192"}, ErrBadParameter},
		{"fail/op-unknown", "k", nil, CreateParams{Kty: provider.EC, KeyOps: []string{"sign", "launch"}}, ErrBadParameter},
		{"fail/too-many-tags", "k", nil, CreateParams{Kty: provider.EC, Tags: manyTags}, ErrBadParameter},
		{"fail/tag-name-long", "k", nil, CreateParams{Kty: provider.EC, Tags: map[string]string{strings.Repeat("n", 513): "v"}}, ErrBadParameter},
		{"fail/tag-value-long", "k", nil, CreateParams{Kty: provider.EC, Tags: map[string]string{"n": strings.Repeat("v", 257)}}, ErrBadParameter},
		{"fail/tag-name-empty", "k", nil, CreateParams{Kty: provider.EC, Tags: map[string]string{"": "v"}}, ErrBadParameter},
		{"fail/exp-before-nbf", "k", nil, CreateParams{Kty: provider.EC, Attributes: &KeyAttributes{NotBefore: ptr(int64(100)), Expires: ptr(int64(100))}}, ErrBadParameter},
		{"fail/exp-negative", "k", nil, CreateParams{Kty: provider.EC, Attributes: &KeyAttributes{Expires: ptr(int64(-1))}}, ErrBadParameter},
		{"fail/exp-year-10000", "k", nil, CreateParams{Kty: provider.EC, Attributes: &KeyAttributes{Expires: ptr(int64(253402300800))}}, ErrBadParameter},
		{"fail/exportable-without-policy", "k", nil, CreateParams{Kty: provider.EC, Attributes: &KeyAttributes{Exportable: ptr(true)}}, ErrBadParameter},
		{"fail/policy-not-json", "k", nil, CreateParams{Kty: provider.EC, ReleasePolicy: &ReleasePolicy{Data: []byte("{")}}, ErrBadParameter},
		{"fail/policy-empty", "k", nil, CreateParams{Kty: provider.EC, ReleasePolicy: &ReleasePolicy{}}, ErrBadParameter},
		{"fail/policy-content-type", "k", nil, CreateParams{Kty: provider.EC, ReleasePolicy: &ReleasePolicy{ContentType: "text/plain", Data: policy.Data}}, ErrBadParameter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := f.v
			if tt.v != nil {
				v = *tt.v
			}
			gen := f.prov.generates.Load()
			_, err := f.svc.Create(f.ctx, v, f.base, tt.key, tt.p)
			wantErr(t, "Create("+tt.key+")", err, tt.want)
			if !errors.Is(err, ErrBadParameter) {
				t.Errorf("Create(%q) = %v; want it to wrap ErrBadParameter as well", tt.key, err)
			}
			if tt.want == ErrBadParameter && f.prov.generates.Load() != gen && !strings.Contains(tt.name, "unsupported") && !strings.Contains(tt.name, "exponent-3") {
				t.Errorf("Create(%q) reached the provider before refusing", tt.key)
			}
		})
	}
	page, err := f.svc.List(f.ctx, f.v, f.base, ListOptions{})
	if err != nil || len(page.Value) != 0 {
		t.Errorf("List after refused creates = %d items, %v; want none", len(page.Value), err)
	}
}

func TestCreateExportable(t *testing.T) {
	f := newFixture(t)
	policy := &ReleasePolicy{Data: simPolicy("aa")}
	b := f.mustCreate(f.v, "exp", CreateParams{Kty: provider.EC, Attributes: &KeyAttributes{Exportable: ptr(true)}, ReleasePolicy: policy})
	if b.ReleasePolicy == nil || b.ReleasePolicy.ContentType != defaultReleaseContentType || string(b.ReleasePolicy.Data) != string(policy.Data) {
		t.Errorf("Create(exportable).ReleasePolicy = %+v; want the policy with the default content type", b.ReleasePolicy)
	}
	if b.Attributes.Exportable == nil || !*b.Attributes.Exportable {
		t.Errorf("Create(exportable).Attributes.Exportable = %v; want true", b.Attributes.Exportable)
	}
	// A second exportable version inherits the policy.
	b2 := f.mustCreate(f.v, "exp", CreateParams{Kty: provider.EC, Attributes: &KeyAttributes{Exportable: ptr(true)}})
	if b2.ReleasePolicy == nil || string(b2.ReleasePolicy.Data) != string(policy.Data) {
		t.Errorf("second exportable version ReleasePolicy = %+v; want inherited", b2.ReleasePolicy)
	}
}

func TestImport(t *testing.T) {
	f := newFixture(t)
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk := ecJWK(priv)
	b, err := f.svc.Import(f.ctx, f.v, f.base, "imported", ImportParams{Key: jwk, Tags: map[string]string{"src": "byok"}})
	if err != nil {
		t.Fatalf("Import = %v", err)
	}
	if b.Key.Kty != provider.EC || b.Key.Crv != provider.P256 || string(b.Key.X) != string(jwk.X) || string(b.Key.Y) != string(jwk.Y) {
		t.Errorf("Import().Key = %v; want the imported public key", b.Key)
	}
	if b.Key.Private() {
		t.Errorf("Import().Key carries private members")
	}
	if b.Tags["src"] != "byok" {
		t.Errorf("Import().Tags = %v", b.Tags)
	}
	// The imported key signs, and the signature verifies with the original public key.
	d := digest("imported")
	r, err := f.svc.Sign(f.ctx, f.v, f.base, "imported", "", SignParams{Algorithm: provider.AlgES256, Value: d})
	if err != nil {
		t.Fatalf("Sign(imported) = %v", err)
	}
	if len(r.Value) != 64 || !ecdsa.Verify(&priv.PublicKey, d, new(big.Int).SetBytes(r.Value[:32]), new(big.Int).SetBytes(r.Value[32:])) {
		t.Errorf("Sign(imported) signature does not verify with the original key")
	}

	tests := []struct {
		name string
		p    ImportParams
		want error
	}{
		{"fail/no-key", ImportParams{}, ErrBadParameter},
		{"fail/hsm-on-soft", ImportParams{Key: jwk, HSM: true}, ErrBadParameter},
		{"fail/public-only", ImportParams{Key: &provider.JWK{Kty: provider.EC, Crv: provider.P256, X: jwk.X, Y: jwk.Y}}, ErrBadParameter},
		{"fail/bad-op", ImportParams{Key: &provider.JWK{Kty: provider.EC, Crv: provider.P256, X: jwk.X, Y: jwk.Y, D: jwk.D, KeyOps: []string{"fly"}}}, ErrBadParameter},
		{"fail/wrong-d", ImportParams{Key: &provider.JWK{Kty: provider.EC, Crv: provider.P256, X: jwk.X, Y: jwk.Y, D: make([]byte, 32)}}, provider.ErrInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.Import(f.ctx, f.v, f.base, "bad", tt.p)
			wantErr(t, "Import(bad)", err, tt.want)
			if err != nil && strings.Contains(err.Error(), string(jwk.D)) {
				t.Errorf("Import error carries key bytes")
			}
		})
	}
}

// ecJWK returns the private JWK of an EC P-256 key.
func ecJWK(priv *ecdsa.PrivateKey) *provider.JWK {
	b, err := priv.Bytes()
	if err != nil {
		panic(err)
	}
	pub, _ := priv.PublicKey.Bytes() // 0x04 ‖ X ‖ Y
	return &provider.JWK{Kty: provider.EC, Crv: provider.P256, X: pub[1:33], Y: pub[33:], D: b}
}

func TestVersions(t *testing.T) {
	f := newFixture(t)
	first := f.mustCreate(f.v, "Multi", ecKey)
	f.clk.Advance(60e9)
	second := f.mustCreate(f.v, "multi", CreateParams{Kty: provider.EC, Curve: provider.P384})
	if !strings.HasPrefix(second.Key.KID, f.base+"/keys/Multi/") {
		t.Errorf("second version kid = %q; want the first version's casing", second.Key.KID)
	}
	latest, err := f.svc.Get(f.ctx, f.v, f.base, "MULTI", "")
	if err != nil || latest.Key.KID != second.Key.KID {
		t.Errorf("Get(latest) = %v, %v; want %s", latest.Key, err, second.Key.KID)
	}
	old, err := f.svc.Get(f.ctx, f.v, f.base, "multi", strings.ToUpper(versionOf(first.Key.KID)))
	if err != nil || old.Key.KID != first.Key.KID || old.Key.Crv != provider.P256 {
		t.Errorf("Get(first version) = %v, %v; want %s", old.Key, err, first.Key.KID)
	}
	for _, tt := range []struct {
		name, key, version string
		want               error
	}{
		{"fail/unknown-version", "multi", strings.Repeat("0", 32), ErrKeyNotFound},
		{"fail/short-version", "multi", "abc", ErrBadParameter},
		{"fail/non-hex-version", "multi", strings.Repeat("g", 32), ErrBadParameter},
		{"fail/unknown-key", "nope", "", ErrKeyNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.Get(f.ctx, f.v, f.base, tt.key, tt.version)
			wantErr(t, "Get", err, tt.want)
		})
	}
	page, err := f.svc.ListVersions(f.ctx, f.v, f.base, "multi", ListOptions{})
	if err != nil || len(page.Value) != 2 || page.NextToken != "" {
		t.Fatalf("ListVersions = %d items, token %q, %v; want 2, no token", len(page.Value), page.NextToken, err)
	}
	got := map[string]bool{}
	for _, it := range page.Value {
		got[it.KID] = true
	}
	if !got[first.Key.KID] || !got[second.Key.KID] {
		t.Errorf("ListVersions kids = %v; want %s and %s", got, first.Key.KID, second.Key.KID)
	}
	list, err := f.svc.List(f.ctx, f.v, f.base, ListOptions{})
	if err != nil || len(list.Value) != 1 || list.Value[0].KID != f.base+"/keys/Multi" {
		t.Errorf("List = %+v, %v; want one versionless item", list.Value, err)
	}
}
