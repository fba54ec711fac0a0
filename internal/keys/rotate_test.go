package keys

import (
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/provider"
)

func TestRotate(t *testing.T) {
	f := newFixture(t)
	orig := f.mustCreate(f.v, "spin", CreateParams{Kty: provider.EC, Curve: provider.P521, KeyOps: []string{"sign", "verify"}, Tags: map[string]string{"team": "x"},
		Attributes: &KeyAttributes{Expires: ptr(t0.Unix() + 3600)}})
	d := make([]byte, 64) // ES512 signs a SHA-512 digest
	copy(d, digest("before"))
	oldSig, err := f.svc.Sign(f.ctx, f.v, f.base, "spin", "", SignParams{Algorithm: provider.AlgES512, Value: d})
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(time.Minute)
	rot, err := f.svc.Rotate(f.ctx, f.v, f.base, "SPIN")
	if err != nil {
		t.Fatalf("Rotate = %v", err)
	}
	if rot.Key.KID == orig.Key.KID || !strings.HasPrefix(rot.Key.KID, f.base+"/keys/spin/") {
		t.Errorf("Rotate().Key.KID = %q; want a new version of spin", rot.Key.KID)
	}
	if rot.Key.Kty != provider.EC || rot.Key.Crv != provider.P521 || string(rot.Key.X) == string(orig.Key.X) {
		t.Errorf("Rotate().Key = %v; want new P-521 material", rot.Key)
	}
	if strings.Join(rot.Key.KeyOps, ",") != "sign,verify" || rot.Tags["team"] != "x" || !*rot.Attributes.Enabled {
		t.Errorf("Rotate() = %s; want key_ops, tags kept and enabled", mustJSON(t, rot))
	}
	if rot.Attributes.Expires != nil {
		t.Errorf("Rotate() without a policy expiry set exp = %d; want none", *rot.Attributes.Expires)
	}
	if *rot.Attributes.Created != t0.Unix()+60 {
		t.Errorf("Rotate().Created = %d; want %d", *rot.Attributes.Created, t0.Unix()+60)
	}
	latest, _ := f.svc.Get(f.ctx, f.v, f.base, "spin", "")
	if latest.Key.KID != rot.Key.KID {
		t.Errorf("Get(latest) after Rotate = %s; want %s", latest.Key.KID, rot.Key.KID)
	}
	// The old version still verifies its signature and still signs.
	if ok, err := f.svc.Verify(f.ctx, f.v, f.base, "spin", versionOf(orig.Key.KID), VerifyParams{Algorithm: provider.AlgES512, Digest: d, Signature: oldSig.Value}); err != nil || !ok.Value {
		t.Errorf("Verify(old version) after Rotate = %+v, %v; want true", ok, err)
	}
	if _, err := f.svc.Sign(f.ctx, f.v, f.base, "spin", versionOf(orig.Key.KID), SignParams{Algorithm: provider.AlgES512, Value: d}); err != nil {
		t.Errorf("Sign(old version) after Rotate = %v", err)
	}
	if ok, _ := f.svc.Verify(f.ctx, f.v, f.base, "spin", "", VerifyParams{Algorithm: provider.AlgES512, Digest: d, Signature: oldSig.Value}); ok.Value {
		t.Errorf("the new version verifies the old version's signature")
	}

	// With a policy expiry, the rotated version expires after it.
	if _, err := f.svc.UpdateRotationPolicy(f.ctx, f.v, f.base, "spin", KeyRotationPolicy{Attributes: &RotationPolicyAttributes{ExpiryTime: "P90D"}}); err != nil {
		t.Fatal(err)
	}
	rot2, err := f.svc.Rotate(f.ctx, f.v, f.base, "spin")
	if err != nil {
		t.Fatal(err)
	}
	if want := f.clk.Now().AddDate(0, 0, 90).Unix(); rot2.Attributes.Expires == nil || *rot2.Attributes.Expires != want {
		t.Errorf("Rotate() with expiryTime P90D exp = %v; want %d", rot2.Attributes.Expires, want)
	}
	page, _ := f.svc.ListVersions(f.ctx, f.v, f.base, "spin", ListOptions{})
	if len(page.Value) != 3 {
		t.Errorf("versions after two rotations = %d; want 3", len(page.Value))
	}
	_, err = f.svc.Rotate(f.ctx, f.v, f.base, "missing")
	wantErr(t, "Rotate(missing)", err, ErrKeyNotFound)
}

func TestRotationPolicyGetUpdate(t *testing.T) {
	f := newFixture(t)
	f.mustCreate(f.v, "Pol", ecKey)
	def, err := f.svc.GetRotationPolicy(f.ctx, f.v, f.base, "pol")
	if err != nil {
		t.Fatal(err)
	}
	if def.ID != f.base+"/keys/Pol/rotationpolicy" || len(def.LifetimeActions) != 1 ||
		def.LifetimeActions[0].Action.Type != ActionNotify || def.LifetimeActions[0].Trigger.TimeBeforeExpiry != "P30D" {
		t.Errorf("GetRotationPolicy(default) = %s; want notify 30 days before expiry", mustJSON(t, def))
	}
	// The default policy read back can be written back.
	if _, err := f.svc.UpdateRotationPolicy(f.ctx, f.v, f.base, "pol", def); err != nil {
		t.Errorf("UpdateRotationPolicy(default policy) = %v", err)
	}
	f.clk.Advance(time.Hour)
	p := KeyRotationPolicy{
		ID: "ignored",
		LifetimeActions: []LifetimeAction{
			{Trigger: LifetimeTrigger{TimeAfterCreate: "P1Y"}, Action: LifetimeActionType{Type: "ROTATE"}},
			{Trigger: LifetimeTrigger{TimeBeforeExpiry: "P10D"}, Action: LifetimeActionType{Type: "notify"}},
		},
		Attributes: &RotationPolicyAttributes{ExpiryTime: "P2Y", Created: ptr(int64(1))},
	}
	got, err := f.svc.UpdateRotationPolicy(f.ctx, f.v, f.base, "pol", p)
	if err != nil {
		t.Fatalf("UpdateRotationPolicy = %v", err)
	}
	if got.ID != def.ID || got.LifetimeActions[0].Action.Type != ActionRotate || got.LifetimeActions[1].Action.Type != ActionNotify ||
		got.Attributes.ExpiryTime != "P2Y" || *got.Attributes.Created != t0.Unix() || *got.Attributes.Updated != t0.Unix()+3600 {
		t.Errorf("UpdateRotationPolicy = %s; want canonical types, created from the first update, updated now", mustJSON(t, got))
	}
	read, _ := f.svc.GetRotationPolicy(f.ctx, f.v, f.base, "POL")
	if mustJSON(t, read) != mustJSON(t, got) {
		t.Errorf("GetRotationPolicy = %s; want %s", mustJSON(t, read), mustJSON(t, got))
	}
	_, err = f.svc.GetRotationPolicy(f.ctx, f.v, f.base, "missing")
	wantErr(t, "GetRotationPolicy(missing)", err, ErrKeyNotFound)
	_, err = f.svc.UpdateRotationPolicy(f.ctx, f.v, f.base, "missing", p)
	wantErr(t, "UpdateRotationPolicy(missing)", err, ErrKeyNotFound)
}

func TestCheckRotationPolicy(t *testing.T) {
	rot := func(after, before string) LifetimeAction {
		return LifetimeAction{Trigger: LifetimeTrigger{TimeAfterCreate: after, TimeBeforeExpiry: before}, Action: LifetimeActionType{Type: ActionRotate}}
	}
	notify := func(after, before string) LifetimeAction {
		return LifetimeAction{Trigger: LifetimeTrigger{TimeAfterCreate: after, TimeBeforeExpiry: before}, Action: LifetimeActionType{Type: ActionNotify}}
	}
	expiry := func(e string) *RotationPolicyAttributes { return &RotationPolicyAttributes{ExpiryTime: e} }
	tests := []struct {
		name    string
		actions []LifetimeAction
		attrs   *RotationPolicyAttributes
		ok      bool
	}{
		{"ok/empty", nil, nil, true},
		{"ok/rotate-after-create", []LifetimeAction{rot("P90D", "")}, nil, true},
		{"ok/rotate-after-create-with-expiry", []LifetimeAction{rot("P90D", "")}, expiry("P1Y"), true},
		{"ok/rotate-before-expiry", []LifetimeAction{rot("", "P30D")}, expiry("P90D"), true},
		{"ok/rotate-and-notify", []LifetimeAction{rot("P3M", ""), notify("", "P30D")}, expiry("P1Y2M"), true},
		{"ok/notify-without-expiry", []LifetimeAction{notify("", "P30D")}, nil, true},
		{"ok/hours", []LifetimeAction{rot("PT168H", "")}, nil, true},
		{"ok/weeks", []LifetimeAction{rot("P2W", "")}, nil, true},
		{"ok/expiry-only", nil, expiry("P28D"), true},
		{"fail/two-rotates", []LifetimeAction{rot("P30D", ""), rot("P60D", "")}, nil, false},
		{"fail/two-notifies", []LifetimeAction{notify("", "P30D"), notify("", "P20D")}, expiry("P1Y"), false},
		{"fail/three-actions", []LifetimeAction{rot("P30D", ""), notify("", "P30D"), notify("", "P20D")}, expiry("P1Y"), false},
		{"fail/unknown-type", []LifetimeAction{{Trigger: LifetimeTrigger{TimeAfterCreate: "P30D"}, Action: LifetimeActionType{Type: "Delete"}}}, nil, false},
		{"fail/no-trigger", []LifetimeAction{rot("", "")}, nil, false},
		{"fail/both-triggers", []LifetimeAction{rot("P30D", "P30D")}, expiry("P1Y"), false},
		{"fail/notify-after-create", []LifetimeAction{notify("P30D", "")}, nil, false},
		{"fail/before-expiry-without-expiry", []LifetimeAction{rot("", "P30D")}, nil, false},
		{"fail/expiry-too-short", nil, expiry("P27D"), false},
		{"fail/expiry-hours-too-short", nil, expiry("PT48H"), false},
		{"fail/rotate-too-soon", []LifetimeAction{rot("P6D", "")}, nil, false},
		{"fail/rotate-too-close-to-expiry", []LifetimeAction{rot("P25D", "")}, expiry("P30D"), false},
		{"fail/rotate-after-expiry", []LifetimeAction{rot("P60D", "")}, expiry("P30D"), false},
		{"fail/before-expiry-too-early", []LifetimeAction{rot("", "P25D")}, expiry("P30D"), false},
		{"fail/before-expiry-too-small", []LifetimeAction{rot("", "P6D")}, expiry("P30D"), false},
		{"fail/bad-duration", []LifetimeAction{rot("90D", "")}, nil, false},
		{"fail/bad-expiry", nil, expiry("P1X"), false},
		{"fail/zero", []LifetimeAction{rot("P0D", "")}, nil, false},
		{"fail/negative", []LifetimeAction{rot("-P30D", "")}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CheckRotationPolicy(KeyRotationPolicy{LifetimeActions: tt.actions, Attributes: tt.attrs}, t0)
			if tt.ok {
				if err != nil || got == nil || len(got.LifetimeActions) != len(tt.actions) {
					t.Errorf("CheckRotationPolicy = %v, %v; want it accepted", got, err)
				}
				return
			}
			wantErr(t, "CheckRotationPolicy", err, ErrBadParameter)
		})
	}
}
