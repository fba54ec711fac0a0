package pkcs11

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/provider"
)

// tokenDir is the token directory newToken configured.
func tokenDir(t *testing.T) string {
	t.Helper()
	conf, err := os.ReadFile(os.Getenv("SOFTHSM2_CONF"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(conf), "\n") {
		if v, ok := strings.CutPrefix(line, "directories.tokendir = "); ok {
			return v
		}
	}
	t.Fatal("no tokendir in SOFTHSM2_CONF")
	return ""
}

// goneFixture makes an RSA-HSM and an oct-HSM key and a ciphertext of each, and returns
// the decrypt and unwrap calls to try once the token is gone.
func goneFixture(t *testing.T, p *Provider) map[string]func() error {
	t.Helper()
	ctx := context.Background()
	rk, err := p.Generate(ctx, provider.KeySpec{Type: provider.RSAHSM, Size: 2048})
	if err != nil {
		t.Fatal(err)
	}
	ak, err := p.Generate(ctx, provider.KeySpec{Type: provider.OctHSM, Size: 256})
	if err != nil {
		t.Fatal(err)
	}
	rct, err := rk.Encrypt(ctx, provider.EncryptParams{Algorithm: provider.AlgRSAOAEP, Value: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	act, err := ak.Encrypt(ctx, provider.EncryptParams{Algorithm: provider.AlgA256GCM, Value: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := ak.WrapKey(ctx, provider.EncryptParams{Algorithm: provider.AlgA256KW, Value: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]func() error{
		"rsa-decrypt": func() error {
			_, err := rk.Decrypt(ctx, provider.EncryptParams{Algorithm: provider.AlgRSAOAEP, Value: rct.Value})
			return err
		},
		"rsa-unwrap": func() error {
			_, err := rk.UnwrapKey(ctx, provider.EncryptParams{Algorithm: provider.AlgRSAOAEP, Value: rct.Value})
			return err
		},
		"gcm-decrypt": func() error {
			_, err := ak.Decrypt(ctx, provider.EncryptParams{Algorithm: provider.AlgA256GCM, Value: act.Value, IV: act.IV, Tag: act.Tag})
			return err
		},
		"kw-unwrap": func() error {
			_, err := ak.UnwrapKey(ctx, provider.EncryptParams{Algorithm: provider.AlgA256KW, Value: wrapped.Value})
			return err
		},
	}
}

// TestTokenGone: the token's files vanish and its sessions close under the provider. Every
// decrypt and unwrap is then ErrHSM (the server's 503), never ErrDecrypt (400, "your
// ciphertext is bad") and never a success, call after call.
func TestTokenGone(t *testing.T) {
	p := newToken(t)
	ops := goneFixture(t, p)
	dir := tokenDir(t)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.ctx.CloseAllSessions(p.slot); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		for name, op := range ops {
			if err := op(); !errors.Is(err, provider.ErrUnavailable) || errors.Is(err, provider.ErrDecrypt) || strings.Contains(err.Error(), "CKR_") {
				t.Errorf("%s #%d with the token gone = %v; want ErrUnavailable without CKR_ text", name, i, err)
			}
		}
	}
}

// TestTokenSessionsLost: every session is closed under the provider (the token restarted).
// Operations on the dead sessions answer ErrHSM, not ErrDecrypt; the provider replaces them
// and, within one pool's worth of calls, decrypts again.
func TestTokenSessionsLost(t *testing.T) {
	p := newToken(t)
	ops := goneFixture(t, p)
	if err := p.ctx.CloseAllSessions(p.slot); err != nil {
		t.Fatal(err)
	}
	for name, op := range ops {
		recovered := false
		for i := 0; i <= p.size; i++ {
			err := op()
			if err == nil {
				recovered = true
				break
			}
			if !errors.Is(err, provider.ErrUnavailable) {
				t.Errorf("%s on a lost session = %v; want ErrUnavailable", name, err)
			}
		}
		if !recovered {
			t.Errorf("%s never worked again after the sessions were lost", name)
		}
	}
}

// TestSessionWaitBounded: a token that hangs holds its sessions; an operation that finds
// none free for SessionWait fails with ErrHSM (503 through the API) instead of waiting for
// as long as its request lives, and works again once a session is free.
func TestSessionWaitBounded(t *testing.T) {
	const wait = 100 * time.Millisecond
	p := newToken(t, func(c *Config) { c.Sessions, c.SessionWait = 1, wait })
	ctx := context.Background()
	k, err := p.Generate(ctx, provider.KeySpec{Type: provider.ECHSM, Curve: provider.P256})
	if err != nil {
		t.Fatal(err)
	}
	digest := make([]byte, 32)
	hung, release := make(chan struct{}), make(chan struct{})
	go p.withSession(ctx, func(p11.SessionHandle) error { // a hung token call
		close(hung)
		<-release
		return nil
	})
	<-hung
	start := time.Now()
	_, err = k.Sign(ctx, provider.AlgES256, digest)
	took := time.Since(start)
	close(release)
	if !errors.Is(err, provider.ErrUnavailable) || !strings.Contains(err.Error(), "pkcs11-session-wait") {
		t.Fatalf("Sign with every session busy = %v; want ErrUnavailable naming pkcs11-session-wait", err)
	}
	if took < wait || took > wait+2*time.Second {
		t.Errorf("Sign failed after %s; want about %s", took, wait)
	}
	if _, err := k.Sign(ctx, provider.AlgES256, digest); err != nil {
		t.Errorf("Sign once the session is free = %v", err)
	}
}
