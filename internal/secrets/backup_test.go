package secrets

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestBackupRestore(t *testing.T) {
	f := newFixture(t)
	first := f.setIn(f.v, "Precious", SetParams{Value: val("canary-one-8f3a"), ContentType: "text/plain", Tags: map[string]string{"a": "b"}})
	f.clk.Advance(1e9)
	second := f.setIn(f.v, "precious", SetParams{Value: val("canary-two-8f3a"), Attributes: &SecretAttributes{Enabled: ptr(false)}})
	blob, err := f.svc.Backup(f.ctx, f.v, f.base, "PRECIOUS")
	if err != nil {
		t.Fatalf("Backup = %v", err)
	}
	if blob.Value[0] != 2 || len(blob.Value) < 1+32+12+16 {
		t.Fatalf("Backup blob starts %x, %d bytes; want version 2", blob.Value[:1], len(blob.Value))
	}
	if bytes.Contains(blob.Value, []byte("canary-")) || bytes.Contains(blob.Value, []byte("Precious")) {
		t.Fatal("the backup blob holds a value or the name in clear")
	}
	blob2, _ := f.svc.Backup(f.ctx, f.v, f.base, "precious")
	if bytes.Equal(blob.Value, blob2.Value) {
		t.Error("two backups are byte-identical; want a fresh nonce each time")
	}

	// Restoring onto the existing name is a conflict; onto the deleted name too.
	_, err = f.svc.Restore(f.ctx, f.v, f.base, blob.Value)
	wantErr(t, "Restore(existing)", err, ErrConflict)
	if _, err := f.svc.Delete(f.ctx, f.v, f.base, "precious"); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Restore(f.ctx, f.v, f.base, blob.Value)
	wantErr(t, "Restore(deleted)", err, ErrDeletedButRecoverable)
	if err := f.svc.Purge(f.ctx, f.v, f.base, "precious"); err != nil {
		t.Fatal(err)
	}

	restored, err := f.svc.Restore(f.ctx, f.v, f.base, blob.Value)
	if err != nil {
		t.Fatalf("Restore after purge = %v", err)
	}
	if restored.ID != second.ID || restored.Value != nil || *restored.Attributes.Enabled {
		t.Errorf("Restore() = %s; want the latest (disabled) version, without its value", mustJSON(t, restored))
	}
	old, err := f.svc.Get(f.ctx, f.v, f.base, "precious", versionOf(first.ID))
	if err != nil || mustJSON(t, old) != mustJSON(t, first) {
		t.Errorf("Get(first version) after Restore = %s, %v; want %s", mustJSON(t, old), err, mustJSON(t, first))
	}
	_, err = f.svc.Get(f.ctx, f.v, f.base, "precious", "")
	wantErr(t, "Get(restored disabled latest)", err, ErrSecretDisabled)

	// Another vault of the same tenant accepts the blob; another tenant's vault does not.
	other := vault(tenantA, "vault2", 90, false)
	if _, err := f.svc.Restore(f.ctx, other, f.base, blob.Value); err != nil {
		t.Errorf("Restore into another vault of the tenant = %v", err)
	}
	foreign := vault(tenantB, "vaultb", 90, false)
	_, err = f.svc.Restore(f.ctx, foreign, f.base, blob.Value)
	wantErr(t, "Restore(other tenant)", err, ErrBadParameter)
	if _, err := f.svc.Get(f.ctx, foreign, f.base, "precious", ""); !isNotFound(err) {
		t.Errorf("Get in the other tenant after a refused restore = %v; want ErrSecretNotFound", err)
	}
	// Another installation (another backup key) cannot open it either.
	otherInstall := NewService(f.store, f.clk.Now, randomKey(t))
	_, err = otherInstall.Restore(f.ctx, vault(tenantA, "vault3", 90, false), f.base, blob.Value)
	wantErr(t, "Restore(other installation)", err, ErrBadParameter)
}

func TestRestoreCorrupt(t *testing.T) {
	f := newFixture(t)
	f.set("s", "canary-corrupt-77")
	blob, err := f.svc.Backup(f.ctx, f.v, f.base, "s")
	if err != nil {
		t.Fatal(err)
	}
	target := vault(tenantA, "target", 90, false)
	cases := map[string][]byte{
		"empty":          nil,
		"version-only":   {1},
		"truncated":      blob.Value[:len(blob.Value)-1],
		"header-only":    blob.Value[:1+32+12+16],
		"wrong-version":  append([]byte{3}, blob.Value[1:]...),
		"as-version-1":   append([]byte{1}, blob.Value[1:]...),
		"extra-byte":     append(append([]byte(nil), blob.Value...), 0),
		"too-large":      make([]byte, MaxBackupBytes+1),
		"random-garbage": bytes.Repeat([]byte{0x01, 0xAA}, 64),
	}
	for i := 0; i < len(blob.Value); i += 7 {
		b := append([]byte(nil), blob.Value...)
		b[i] ^= 0x40
		cases[fmt.Sprintf("flip-%d", i)] = b
	}
	for name, b := range cases {
		_, err := f.svc.Restore(f.ctx, target, f.base, b)
		wantErr(t, "Restore("+name+")", err, ErrBadParameter)
		if err != nil && strings.Contains(err.Error(), "canary") {
			t.Errorf("Restore(%s) error carries the value", name)
		}
	}
	if p, _ := f.svc.List(f.ctx, target, f.base, ListOptions{}); len(p.Value) != 0 {
		t.Errorf("corrupt restores left %d secrets", len(p.Value))
	}
}

func TestBackupWithoutKey(t *testing.T) {
	f := newFixture(t)
	svc := NewService(f.store, f.clk.Now, []byte("short"))
	f.set("s", "v")
	if _, err := svc.Backup(f.ctx, f.v, f.base, "s"); err == nil {
		t.Error("Backup without a backup key succeeded")
	}
	if _, err := svc.Restore(f.ctx, f.v, f.base, []byte{1}); err == nil {
		t.Error("Restore without a backup key succeeded")
	}
	if _, err := svc.Get(f.ctx, f.v, f.base, "s", ""); err != nil {
		t.Errorf("Get without a backup key = %v; everything else works", err)
	}
}

func TestBackupTooLarge(t *testing.T) {
	f := newFixture(t)
	big := strings.Repeat("x", MaxValueBytes)
	for i := 0; i < MaxBackupBytes/MaxValueBytes+1; i++ {
		f.set("big", big)
	}
	_, err := f.svc.Backup(f.ctx, f.v, f.base, "big")
	wantErr(t, "Backup(over the blob limit)", err, ErrBadParameter)
}

func TestB64(t *testing.T) {
	for _, tt := range []struct {
		in   string
		ok   bool
		want string
	}{
		{`"AQID"`, true, "\x01\x02\x03"},
		{`"AQI"`, true, "\x01\x02"},
		{`""`, true, ""},
		{`"AQI="`, false, ""},
		{`"A+/B"`, false, ""},
		{`"AQ J"`, false, ""},
		{`"AQJ"`, false, ""}, // non-canonical trailing bits
		{`"A"`, false, ""},
		{`12`, false, ""},
	} {
		var b B64
		err := b.UnmarshalJSON([]byte(tt.in))
		if (err == nil) != tt.ok || (tt.ok && string(b) != tt.want) {
			t.Errorf("B64.UnmarshalJSON(%s) = %x, %v; want ok=%v", tt.in, []byte(b), err, tt.ok)
		}
	}
	out, _ := B64("\x01\x02\x03\xff").MarshalJSON()
	if string(out) != `"AQID_w"` {
		t.Errorf("B64.MarshalJSON = %s; want \"AQID_w\"", out)
	}
}
