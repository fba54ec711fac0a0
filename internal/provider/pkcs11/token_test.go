package pkcs11

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/coffer-kms/coffer/internal/provider"
)

// TestHandlesNameTheirToken: every handle records the token's label; a handle without one
// (made before per-pool tokens) still loads; a handle naming another token is refused with
// ErrUnavailable (503) by Load, Destroy and a BYOK import, never looked up in this token.
func TestHandlesNameTheirToken(t *testing.T) {
	p := newToken(t)
	ctx := context.Background()
	rsaKey, err := p.Generate(ctx, provider.KeySpec{Type: provider.RSAHSM, Size: 2048})
	if err != nil {
		t.Fatal(err)
	}
	aesKey, err := p.Generate(ctx, provider.KeySpec{Type: provider.OctHSM, Size: 128})
	if err != nil {
		t.Fatal(err)
	}
	if p.Label() != "coffer-test" {
		t.Fatalf("Label() = %q; want coffer-test", p.Label())
	}
	for _, k := range []provider.Key{rsaKey, aesKey} {
		h := k.Handle()
		if got := HandleToken(h); got != "coffer-test" {
			t.Errorf("HandleToken(%s handle) = %q; want coffer-test", k.Type(), got)
		}
		tests := []struct {
			name    string
			handle  []byte
			wantErr error
		}{
			{"ok/own-token", h, nil},
			{"ok/no-token", bytes.Replace(h, []byte(`,"tok":"coffer-test"`), nil, 1), nil},
			{"fail/other-token", bytes.Replace(h, []byte(`"tok":"coffer-test"`), []byte(`"tok":"pool-b"`), 1), provider.ErrUnavailable},
			{"ok/empty-token", bytes.Replace(h, []byte(`"tok":"coffer-test"`), []byte(`"tok":""`), 1), nil},
			{"fail/label-too-long", bytes.Replace(h, []byte(`"tok":"coffer-test"`), []byte(`"tok":"`+string(bytes.Repeat([]byte("x"), 33))+`"`), 1), provider.ErrInvalidKey},
		}
		for _, tt := range tests {
			t.Run(string(k.Type())+"/"+tt.name, func(t *testing.T) {
				_, err := p.Load(ctx, tt.handle)
				if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("Load = %v; want %v", err, tt.wantErr)
				}
				if tt.wantErr != nil {
					if err := p.Destroy(ctx, tt.handle); !errors.Is(err, tt.wantErr) {
						t.Errorf("Destroy = %v; want %v", err, tt.wantErr)
					}
				}
			})
		}
		// The refused Destroy left the key in the token.
		if _, err := p.Load(ctx, h); err != nil {
			t.Errorf("Load after refused Destroys = %v", err)
		}
	}
	other := bytes.Replace(rsaKey.Handle(), []byte(`"tok":"coffer-test"`), []byte(`"tok":"pool-b"`), 1)
	if _, err := p.ImportTransfer(ctx, provider.Transfer{KEK: other, Type: provider.OctHSM}); err == nil {
		t.Error("ImportTransfer with another token's KEK succeeded")
	}
	if got := HandleToken([]byte(`{"v":1}`)); got != "" {
		t.Errorf("HandleToken(invalid) = %q; want empty", got)
	}
}
