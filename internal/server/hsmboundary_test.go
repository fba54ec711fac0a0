package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/byok"
)

// The HSM boundary (SECURITY-NOTES H1, H2; §4 "HSM"): every private or secret key the
// server keeps in the token is sensitive and not extractable, and one that was generated
// there was never extractable; when the token fails under a running server, key
// operations answer 503 quickly, name no PKCS #11 return value, and never fall back to a
// software key.

// tokenKey is what the token says about one private or secret key object.
type tokenKey struct {
	class                                    uint
	label                                    string
	sensitive, extractable, neverExtractable bool
	alwaysSensitive, local, wrapWithTrusted  bool
	secretReadErr                            error
}

// tokenKeys lists every private and secret key object stored in the token labelled label
// (CKA_TOKEN true), through a second handle on the library the server uses, with the
// protection attributes and the error of reading its secret value.
func tokenKeys(t *testing.T, label, pin string) []tokenKey {
	t.Helper()
	c, s := userSession(t, label, pin)
	var out []tokenKey
	for _, class := range []uint{p11.CKO_PRIVATE_KEY, p11.CKO_SECRET_KEY} {
		if err := c.FindObjectsInit(s, []*p11.Attribute{p11.NewAttribute(p11.CKA_TOKEN, true), p11.NewAttribute(p11.CKA_CLASS, class)}); err != nil {
			t.Fatal(err)
		}
		var objs []p11.ObjectHandle
		for {
			batch, _, err := c.FindObjects(s, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(batch) == 0 {
				break
			}
			objs = append(objs, batch...)
		}
		if err := c.FindObjectsFinal(s); err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			attrs, err := c.GetAttributeValue(s, o, []*p11.Attribute{
				p11.NewAttribute(p11.CKA_LABEL, nil),
				p11.NewAttribute(p11.CKA_SENSITIVE, nil),
				p11.NewAttribute(p11.CKA_EXTRACTABLE, nil),
				p11.NewAttribute(p11.CKA_NEVER_EXTRACTABLE, nil),
				p11.NewAttribute(p11.CKA_ALWAYS_SENSITIVE, nil),
				p11.NewAttribute(p11.CKA_LOCAL, nil),
				p11.NewAttribute(p11.CKA_WRAP_WITH_TRUSTED, nil),
				p11.NewAttribute(p11.CKA_KEY_TYPE, nil),
			})
			if err != nil {
				t.Fatalf("GetAttributeValue: %v", err)
			}
			k := tokenKey{class: class, label: string(attrs[0].Value), sensitive: isTrueAttr(attrs[1]), extractable: isTrueAttr(attrs[2]),
				neverExtractable: isTrueAttr(attrs[3]), alwaysSensitive: isTrueAttr(attrs[4]), local: isTrueAttr(attrs[5]), wrapWithTrusted: isTrueAttr(attrs[6])}
			secret := uint(p11.CKA_VALUE) // secret keys and EC private keys
			if class == p11.CKO_PRIVATE_KEY && len(attrs[7].Value) > 0 && attrs[7].Value[0] == byte(p11.CKK_RSA) {
				secret = p11.CKA_PRIVATE_EXPONENT
			}
			_, k.secretReadErr = c.GetAttributeValue(s, o, []*p11.Attribute{p11.NewAttribute(secret, nil)})
			out = append(out, k)
		}
	}
	return out
}

// userSession opens a user session on the token labelled label through a second handle
// on the library the server uses; the test's cleanup closes it and dlcloses the handle.
func userSession(t *testing.T, label, pin string) (*p11.Ctx, p11.SessionHandle) {
	t.Helper()
	c, slot := softHSMSlot(t, label)
	s, err := c.OpenSession(slot, p11.CKF_SERIAL_SESSION)
	if err != nil {
		c.Destroy()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.CloseSession(s)
		c.Destroy()
	})
	if err := c.Login(s, p11.CKU_USER, pin); err != nil && !strings.Contains(err.Error(), "CKR_USER_ALREADY_LOGGED_IN") {
		t.Fatal(err)
	}
	return c, s
}

func isTrueAttr(a *p11.Attribute) bool { return len(a.Value) == 1 && a.Value[0] == 1 }

// checkTokenKeys asserts H1 for every key of tokenKeys and returns the counts: keys made
// in the token (CKA_LOCAL) and keys brought in by C_UnwrapKey (BYOK, restore), which
// PKCS #11 marks never-extractable false because they existed outside the token before.
func checkTokenKeys(t *testing.T, keys []tokenKey) (generated, unwrapped int) {
	t.Helper()
	for _, k := range keys {
		what := fmt.Sprintf("token key %q (class %d)", k.label, k.class)
		if !k.sensitive {
			t.Errorf("%s: CKA_SENSITIVE false", what)
		}
		if k.extractable && !k.wrapWithTrusted {
			t.Errorf("%s: CKA_EXTRACTABLE true and not bound to trusted wrapping keys", what)
		}
		if k.local && (!k.neverExtractable || !k.alwaysSensitive) {
			t.Errorf("%s: generated in the token but CKA_NEVER_EXTRACTABLE=%v CKA_ALWAYS_SENSITIVE=%v", what, k.neverExtractable, k.alwaysSensitive)
		}
		if !errors.Is(k.secretReadErr, p11.Error(p11.CKR_ATTRIBUTE_SENSITIVE)) {
			t.Errorf("%s: reading its secret value = %v; want CKR_ATTRIBUTE_SENSITIVE", what, k.secretReadErr)
		}
		if k.local {
			generated++
		} else {
			unwrapped++
		}
	}
	return generated, unwrapped
}

// TestHSMTokenKeysProtected (H1): after keys of every HSM type are generated in a vault
// and in a managed HSM pool, rotated, and brought in by BYOK, every private and secret key
// object in the token is sensitive and not extractable, its secret value does not read
// out, and each one generated in the token was never extractable nor ever readable.
func TestHSMTokenKeysProtected(t *testing.T) {
	ts := startDev(t, softHSMToken(t)...)
	ctx := context.Background()
	vault := keysClient(t, ts)
	pool := azkeysClient(t, ts, ts.Dev.Credentials.ManagedHSMURL)
	created := 0
	create := func(c *azkeys.Client, name string, p azkeys.CreateKeyParameters) {
		t.Helper()
		if _, err := c.CreateKey(ctx, name, p, nil); err != nil {
			t.Fatalf("CreateKey(%s) = %v", name, err)
		}
		created++
	}
	for i, c := range []*azkeys.Client{vault, pool} {
		sizes := []int32{2048, 3072, 4096}
		if i == 1 {
			sizes = sizes[:1] // RSA generation is slow on a shared machine; the pool's token is the same
		}
		for _, bits := range sizes {
			create(c, fmt.Sprintf("rsa-%d", bits), azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM), KeySize: to.Ptr(bits)})
		}
		for _, crv := range []azkeys.CurveName{azkeys.CurveNameP256, azkeys.CurveNameP384, azkeys.CurveNameP521} {
			create(c, "ec-"+string(crv), azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeECHSM), Curve: to.Ptr(crv)})
		}
		for _, bits := range []int32{128, 192, 256} {
			create(c, fmt.Sprintf("aes-%d", bits), azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeOctHSM), KeySize: to.Ptr(bits)})
		}
		if _, err := c.RotateKey(ctx, "rsa-2048", nil); err != nil {
			t.Fatalf("RotateKey = %v", err)
		}
		created++
	}
	kek, kid := createKEK(t, vault, "kek")
	created++
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	imported := 0
	for name, target := range map[string]struct {
		kty azkeys.KeyType
		key any
	}{"byok-rsa": {azkeys.KeyTypeRSAHSM, rk}, "byok-ec": {azkeys.KeyTypeECHSM, ek}, "byok-aes": {azkeys.KeyTypeOctHSM, randomBytes(32)}} {
		material, ok := target.key.([]byte)
		if !ok {
			var err error
			if material, err = x509.MarshalPKCS8PrivateKey(target.key); err != nil {
				t.Fatal(err)
			}
		}
		blob, err := byok.Build(kek, kid, "CKM_RSA_AES_KEY_WRAP", material, "H1")
		if err != nil {
			t.Fatal(err)
		}
		req := azkeys.JSONWebKey{Kty: to.Ptr(target.kty), T: blob}
		if target.kty == azkeys.KeyTypeECHSM {
			req.Crv = to.Ptr(azkeys.CurveNameP256)
		}
		if _, err := vault.ImportKey(ctx, name, azkeys.ImportKeyParameters{Key: &req}, nil); err != nil {
			t.Fatalf("ImportKey(%s) = %v", name, err)
		}
		imported++
	}
	keys := tokenKeys(t, "coffer", "4321")
	generated, unwrapped := checkTokenKeys(t, keys)
	// Every key made above is in the token (the server may keep more of its own, such as a
	// seal key): a listing that missed them would prove nothing.
	if generated < created || unwrapped < imported {
		t.Errorf("token lists %d generated and %d unwrapped private/secret keys; the test made %d and imported %d", generated, unwrapped, created, imported)
	}
	t.Logf("%d private/secret key objects in the token: %d generated there (never extractable), %d unwrapped into it (BYOK); all sensitive, none extractable, no secret value readable",
		len(keys), generated, unwrapped)
}

// hsmOutageOps are key operations that need the token: each returns the raw answer.
func hsmOutageOps(c *oracleClient, gcm, rsaCT, kw answer) map[string]func(t *testing.T) answer {
	val := func(a answer) []byte { v, _ := a.value(); return v }
	post := func(path string, body map[string]any) func(t *testing.T) answer {
		return func(t *testing.T) answer { return c.do(t, "POST", path, body) }
	}
	var gcmOut struct{ IV, Tag string }
	_ = json.Unmarshal(gcm.body, &gcmOut)
	digest := b64u(make([]byte, 32))
	return map[string]func(t *testing.T) answer{
		"sign RSA-HSM PS256":       post("/keys/rsa/sign", map[string]any{"alg": "PS256", "value": digest}),
		"sign EC-HSM ES256":        post("/keys/ec/sign", map[string]any{"alg": "ES256", "value": digest}),
		"decrypt RSA-HSM":          post("/keys/rsa/decrypt", map[string]any{"alg": "RSA-OAEP", "value": b64u(val(rsaCT))}),
		"unwrapkey RSA-HSM":        post("/keys/rsa/unwrapkey", map[string]any{"alg": "RSA-OAEP", "value": b64u(val(rsaCT))}),
		"encrypt oct-HSM A256GCM":  post("/keys/aes/encrypt", map[string]any{"alg": "A256GCM", "value": b64u([]byte("x"))}),
		"decrypt oct-HSM A256GCM":  post("/keys/aes/decrypt", map[string]any{"alg": "A256GCM", "value": b64u(val(gcm)), "iv": gcmOut.IV, "tag": gcmOut.Tag}),
		"wrapkey oct-HSM A256KW":   post("/keys/aes/wrapkey", map[string]any{"alg": "A256KW", "value": b64u(make([]byte, 32))}),
		"unwrapkey oct-HSM A256KW": post("/keys/aes/unwrapkey", map[string]any{"alg": "A256KW", "value": b64u(val(kw))}),
		"create RSA-HSM":           post("/keys/new-rsa/create", map[string]any{"kty": "RSA-HSM", "key_size": 2048}),
		"create EC-HSM":            post("/keys/new-ec/create", map[string]any{"kty": "EC-HSM", "crv": "P-256"}),
		"create oct-HSM":           post("/keys/new-aes/create", map[string]any{"kty": "oct-HSM", "key_size": 256}),
		"rotate RSA-HSM":           post("/keys/rsa/rotate", map[string]any{}),
	}
}

// TestHSMOutageAnswers503 (H2): the token disappears under the running server (its files
// deleted, every session closed). Every operation that needs the token answers 503
// ServiceUnavailable within 1 s, twice in a row (the second time the session pool has
// nothing left to reuse), with no PKCS #11 text; no key is created instead in software;
// software keys of the same vault keep working.
func TestHSMOutageAnswers503(t *testing.T) {
	ts := startDev(t, softHSMToken(t)...)
	c := newOracleClient(t, ts)
	for name, body := range map[string]map[string]any{
		"rsa": {"kty": "RSA-HSM", "key_size": 2048}, "ec": {"kty": "EC-HSM", "crv": "P-256"},
		"aes": {"kty": "oct-HSM", "key_size": 256}, "soft": {"kty": "RSA", "key_size": 2048},
	} {
		if a := c.do(t, "POST", "/keys/"+name+"/create", body); a.status != 200 {
			t.Fatalf("create %s: %s", name, a)
		}
	}
	if a := c.do(t, "POST", "/keys/rsa/rotate", map[string]any{}); a.status != 200 {
		t.Fatalf("rotate rsa: %s", a)
	}
	rsaCT := c.do(t, "POST", "/keys/rsa/encrypt", map[string]any{"alg": "RSA-OAEP", "value": b64u([]byte("x"))})
	gcm := c.do(t, "POST", "/keys/aes/encrypt", map[string]any{"alg": "A256GCM", "value": b64u([]byte("x"))})
	kw := c.do(t, "POST", "/keys/aes/wrapkey", map[string]any{"alg": "A256KW", "value": b64u(make([]byte, 32))})
	ops := hsmOutageOps(c, gcm, rsaCT, kw)
	for name, op := range ops { // each works while the token is there
		if strings.HasPrefix(name, "create ") || strings.HasPrefix(name, "rotate ") {
			continue
		}
		if a := op(t); a.status != 200 {
			t.Fatalf("%s before the outage: %s", name, a)
		}
	}

	removeToken(t)
	var slowest time.Duration
	for round := 1; round <= 2; round++ {
		for name, op := range ops {
			start := time.Now()
			a := op(t)
			took := time.Since(start)
			slowest = max(slowest, took)
			var e struct{ Error struct{ Code string } }
			_ = json.Unmarshal(a.body, &e)
			switch {
			case a.status != 503 || e.Error.Code != "ServiceUnavailable":
				t.Errorf("round %d, %s with the token gone: %s; want 503 ServiceUnavailable", round, name, a)
			case strings.Contains(string(a.body), "CKR_"):
				t.Errorf("round %d, %s: the 503 names a PKCS #11 return value: %s", round, name, a.body)
			}
			if took > time.Second {
				t.Errorf("round %d, %s took %v with the token gone; want an answer within 1 s", round, name, took)
			}
		}
	}
	// No software fallback: the keys the outage refused to create do not exist, and the
	// HSM keys are still HSM keys with one version each but the rotated one's.
	for _, name := range []string{"new-rsa", "new-ec", "new-aes"} {
		if a := c.do(t, "GET", "/keys/"+name, nil); a.status != 404 {
			t.Errorf("GET %s after the refused create: %s; want 404 (no key made in software instead)", name, a)
		}
	}
	for name, kty := range map[string]string{"rsa": "RSA-HSM", "ec": "EC-HSM", "aes": "oct-HSM"} {
		a := c.do(t, "GET", "/keys/"+name+"/versions", nil)
		var list struct{ Value []struct{ KID string } }
		if a.status != 200 || json.Unmarshal(a.body, &list) != nil {
			t.Fatalf("list versions of %s: %s", name, a)
		}
		want := 1
		if name == "rsa" {
			want = 2 // rotated once before the outage
		}
		if len(list.Value) != want {
			t.Errorf("%s has %d versions after the outage; want %d (a rotation may not succeed in software)", name, len(list.Value), want)
		}
		g := c.do(t, "GET", "/keys/"+name, nil)
		if g.status != 200 || !strings.Contains(string(g.body), `"kty":"`+kty+`"`) {
			t.Errorf("GET %s after the outage: %s; want the %s key", name, g, kty)
		}
	}
	if a := c.do(t, "POST", "/keys/soft/sign", map[string]any{"alg": "PS256", "value": b64u(make([]byte, 32))}); a.status != 200 {
		t.Errorf("a software key's sign during the HSM outage: %s; want 200", a)
	}
	t.Logf("%d operations × 2 rounds answered 503 with the token gone; slowest %v", len(ops), slowest)
}

// TestHSMStartFailures (H2): a wrong PIN, a library that is not there or not PKCS #11, or a
// token label that does not exist stops the server at start with an error that says which
// setting is wrong; it does not start on software keys instead, and the PIN is not in
// the error.
func TestHSMStartFailures(t *testing.T) {
	flags := softHSMToken(t)
	pinFile := flags[len(flags)-1]
	wrongPIN := filepath.Join(t.TempDir(), "wrong-pin")
	if err := os.WriteFile(wrongPIN, []byte("98765"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPKCS11 := filepath.Join(t.TempDir(), "not-a-library.so")
	if err := os.WriteFile(notPKCS11, []byte("not an ELF file"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		lib, label, pin, want string
	}{
		"wrong-pin":     {softhsmLib, "coffer", wrongPIN, `setting "pkcs11-pin-file"`},
		"no-library":    {"/nonexistent/libpkcs11.so", "coffer", pinFile, `setting "pkcs11-library": cannot read /nonexistent/libpkcs11.so`},
		"not-pkcs11":    {notPKCS11, "coffer", pinFile, `setting "pkcs11-library" "` + notPKCS11},
		"no-such-token": {softhsmLib, "no-such-token", pinFile, `setting "pkcs11-token-label" "no-such-token"`},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := loadConfig(t, "--dev", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(),
				"--pkcs11-library", c.lib, "--pkcs11-token-label", c.label, "--pkcs11-pin-file", c.pin)
			s := New(cfg, io.Discard, &lockedWriter{})
			err := s.Start(context.Background())
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				s.Shutdown(ctx)
				t.Fatal("the server started")
			}
			msg := err.Error()
			t.Logf("Start = %s", msg)
			if !strings.Contains(msg, c.want) {
				t.Errorf("Start = %q; want it to name %q", msg, c.want)
			}
			for _, pin := range []string{"4321", "98765"} {
				if strings.Contains(msg, pin) {
					t.Errorf("Start = %q: contains a PIN", msg)
				}
			}
		})
	}
}

// TestHSMSessionPoolBounded (H2, session exhaustion): with one PKCS #11 session for the
// whole server, 24 concurrent operations on HSM keys queue for it and all succeed — an
// exhausted pool is waited for, never bypassed in software and never a 5xx. (A token that
// refuses to open a session answers 503: the second round of TestHSMOutageAnswers503, whose
// sessions were all closed, reopens none.)
func TestHSMSessionPoolBounded(t *testing.T) {
	ts := startDev(t, append(softHSMToken(t), "--pkcs11-sessions", "1")...)
	c := newOracleClient(t, ts)
	for name, body := range map[string]map[string]any{"rsa": {"kty": "RSA-HSM", "key_size": 2048}, "ec": {"kty": "EC-HSM", "crv": "P-256"}, "aes": {"kty": "oct-HSM", "key_size": 256}} {
		if a := c.do(t, "POST", "/keys/"+name+"/create", body); a.status != 200 {
			t.Fatalf("create %s: %s", name, a)
		}
	}
	digest := b64u(make([]byte, 32))
	calls := []struct{ path, alg, value string }{
		{"/keys/rsa/sign", "PS256", digest}, {"/keys/ec/sign", "ES256", digest}, {"/keys/aes/encrypt", "A256GCM", b64u([]byte("x"))},
	}
	const n = 24
	errs := make(chan string, n)
	for i := range n {
		go func() {
			cl := calls[i%len(calls)]
			body, _ := json.Marshal(map[string]any{"alg": cl.alg, "value": cl.value})
			req, _ := http.NewRequest("POST", c.url+cl.path+"?api-version=7.6", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+c.tok)
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.hc.Do(req) // not c.do: t.Fatal belongs to the test's goroutine
			if err != nil {
				errs <- fmt.Sprintf("%s %s: %v", cl.path, cl.alg, err)
				return
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- fmt.Sprintf("%s %s: %d %s", cl.path, cl.alg, resp.StatusCode, out)
				return
			}
			errs <- ""
		}()
	}
	for range n {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
}
