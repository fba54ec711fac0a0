package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/byok"
	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/provider/soft"
	"github.com/coffer-kms/coffer/internal/records/recordstest"
	"github.com/coffer-kms/coffer/internal/storage/mem"
)

const testAuthority = "https://p.attest.localhost"

// simPolicy is a release policy that asks the test authority for a sim measurement.
func simPolicy(measurement string) []byte {
	return []byte(`{"version":"1.0.0","anyOf":[{"authority":"` + testAuthority + `","allOf":[` +
		`{"claim":"x-ms-attestation-type","equals":"sim"},{"claim":"x-ms-sim-launchmeasurement","equals":"` + measurement + `"}]}]}`)
}

// fakeVerifier accepts the tokens it holds, each for one authority.
type fakeVerifier map[string]map[string]any

func (f fakeVerifier) Verify(_ context.Context, authority, raw string) (map[string]any, error) {
	c, ok := f[raw]
	if !ok || c["iss"] != authority {
		return nil, errors.New("signature not verified")
	}
	return c, nil
}

func runtimeJWK(k *rsa.PrivateKey, ops ...string) map[string]any {
	e := base64.RawURLEncoding
	m := map[string]any{"kty": "RSA", "kid": "tee", "n": e.EncodeToString(k.N.Bytes()), "e": "AQAB"}
	if ops != nil {
		l := []any{}
		for _, o := range ops {
			l = append(l, o)
		}
		m["key_ops"] = l
	}
	return m
}

func TestRelease(t *testing.T) {
	clk := recordstest.NewClock(t0)
	svc := NewService(mem.New(), soft.New(), clk.Now, make([]byte, 32))
	ctx, v, base := context.Background(), vault(tenantA, "vault1", 90, false), "https://vault1.coffer.test:8443"
	tee, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	exportable := func(name string) KeyBundle {
		b, err := svc.Create(ctx, v, base, name, CreateParams{Kty: provider.EC, Attributes: &KeyAttributes{Exportable: ptr(true)}, ReleasePolicy: &ReleasePolicy{Data: simPolicy("aa")}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	exp := exportable("exp")
	if _, err := svc.Create(ctx, v, base, "plain", CreateParams{Kty: provider.EC, ReleasePolicy: &ReleasePolicy{Data: simPolicy("aa")}}); err != nil {
		t.Fatal(err)
	}
	dis := exportable("dis")
	if _, err := svc.Update(ctx, v, base, "dis", "", UpdateParams{Attributes: &KeyAttributes{Enabled: ptr(false)}}); err != nil {
		t.Fatal(err)
	}
	_ = dis
	claims := func(meas string, mutate func(map[string]any)) map[string]any {
		c := map[string]any{"iss": testAuthority, "x-ms-attestation-type": "sim", "x-ms-sim-launchmeasurement": meas,
			"exp": json.Number("1767229200"), "nbf": json.Number("1767225600"), // t0+1h, t0
			"nonce": "n-1", "x-ms-runtime": map[string]any{"keys": []any{runtimeJWK(tee)}}}
		if mutate != nil {
			mutate(c)
		}
		return c
	}
	ver := fakeVerifier{
		"good":        claims("aa", nil),
		"tampered":    claims("bb", nil),
		"expired":     claims("aa", func(c map[string]any) { c["exp"] = json.Number("1767225000") }),
		"future":      claims("aa", func(c map[string]any) { c["nbf"] = json.Number("1767229200") }),
		"no-exp":      claims("aa", func(c map[string]any) { delete(c, "exp") }),
		"no-runtime":  claims("aa", func(c map[string]any) { delete(c, "x-ms-runtime") }),
		"sign-only":   claims("aa", func(c map[string]any) { c["x-ms-runtime"] = map[string]any{"keys": []any{runtimeJWK(tee, "verify")}} }),
		"other-iss":   claims("aa", func(c map[string]any) { c["iss"] = "https://evil.attest.localhost" }),
		"other-rtkey": claims("aa", func(c map[string]any) { c["x-ms-runtime"] = map[string]any{"keys": []any{runtimeJWK(other)}} }),
		// encoding/base64 skips CR/LF even in Strict mode: before strictb64 this key was used.
		"crlf-n": claims("aa", func(c map[string]any) {
			k := runtimeJWK(tee)
			n := k["n"].(string)
			k["n"] = n[:16] + "\r\n" + n[16:]
			c["x-ms-runtime"] = map[string]any{"keys": []any{k}}
		}),
		"padded-n": claims("aa", func(c map[string]any) {
			k := runtimeJWK(tee)
			k["n"] = base64.URLEncoding.EncodeToString(tee.N.Bytes())
			c["x-ms-runtime"] = map[string]any{"keys": []any{k}}
		}),
	}
	var signed []map[string]any
	r := &Releaser{Keys: svc, Verifier: ver, Sign: func(c map[string]any) (string, error) {
		signed = append(signed, c)
		b, err := json.Marshal(c)
		return string(b), err
	}}

	tests := []struct {
		name, key, target, nonce, enc string
		want                          error
		reason                        string
	}{
		{"fail/tampered-measurement", "exp", "tampered", "", "", ErrReleaseDenied, "x-ms-sim-launchmeasurement"},
		{"fail/expired-token", "exp", "expired", "", "", ErrReleaseDenied, "expired"},
		{"fail/token-not-yet-valid", "exp", "future", "", "", ErrReleaseDenied, "nbf"},
		{"fail/token-without-exp", "exp", "no-exp", "", "", ErrReleaseDenied, "no exp"},
		{"fail/untrusted-or-forged-token", "exp", "forged", "", "", ErrReleaseDenied, "not a valid token"},
		{"fail/other-issuer", "exp", "other-iss", "", "", ErrReleaseDenied, "not a valid token"},
		{"fail/no-runtime-key", "exp", "no-runtime", "", "", ErrReleaseDenied, "x-ms-runtime"},
		{"fail/runtime-key-n-with-crlf", "exp", "crlf-n", "", "", ErrReleaseDenied, `keys[0]: base64url field "n" contains a character outside`},
		{"fail/runtime-key-n-padded", "exp", "padded-n", "", "", ErrReleaseDenied, `keys[0]: base64url field "n" is padded`},
		{"fail/runtime-key-not-for-encryption", "exp", "sign-only", "", "", ErrReleaseDenied, "x-ms-runtime"},
		{"fail/nonce-mismatch", "exp", "good", "n-2", "", ErrReleaseDenied, "nonce"},
		{"fail/not-exportable", "plain", "good", "", "", ErrReleaseDenied, "not exportable"},
		{"fail/disabled", "dis", "good", "", "", ErrReleaseDenied, "disabled"},
		{"fail/no-such-key", "nokey", "good", "", "", ErrKeyNotFound, ""},
		{"fail/no-target", "exp", "", "", "", ErrBadParameter, ""},
		{"fail/target-too-long", "exp", strings.Repeat("a", MaxReleaseTarget+1), "", "", ErrBadParameter, ""},
		{"fail/nonce-too-long", "exp", "good", strings.Repeat("n", MaxReleaseNonce+1), "", ErrBadParameter, ""},
		{"fail/unknown-enc", "exp", "good", "", "RSA-OAEP", ErrBadParameter, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, reason, err := r.Release(ctx, v, base, tt.key, "", ReleaseParams{Target: tt.target, Nonce: tt.nonce, Enc: tt.enc})
			wantErr(t, "Release", err, tt.want)
			if res.Value != "" {
				t.Errorf("Release returned a value on error")
			}
			if !strings.Contains(reason, tt.reason) || (tt.want == ErrReleaseDenied && !strings.HasPrefix(reason, "denied: ")) {
				t.Errorf("reason = %q; want it to mention %q", reason, tt.reason)
			}
		})
	}
	if len(signed) != 0 {
		t.Fatalf("%d results were signed on refused releases", len(signed))
	}

	for _, tc := range []struct {
		enc  string
		hash crypto.Hash
	}{{"", crypto.SHA1}, {EncRSAAESKeyWrap256, crypto.SHA256}, {EncRSAAESKeyWrap384, crypto.SHA384}} {
		t.Run("ok/"+tc.hash.String(), func(t *testing.T) {
			res, reason, err := r.Release(ctx, v, base, "exp", versionOf(exp.Key.KID), ReleaseParams{Target: "good", Nonce: "n-1", Enc: tc.enc, APIVersion: "7.6"})
			if err != nil || !strings.HasPrefix(reason, "granted: ") {
				t.Fatalf("Release = %v, %q", err, reason)
			}
			var payload struct {
				Iss     string         `json:"iss"`
				Request map[string]any `json:"request"`
				Resp    struct {
					Key KeyBundle `json:"key"`
				} `json:"response"`
			}
			if err := json.Unmarshal([]byte(res.Value), &payload); err != nil {
				t.Fatal(err)
			}
			if payload.Iss != base || payload.Request["kid"] != exp.Key.KID || payload.Request["api-version"] != "7.6" || payload.Request["nonce"] != "n-1" {
				t.Errorf("payload = %s", res.Value)
			}
			var blob byok.Blob
			if err := json.Unmarshal(payload.Resp.Key.Key.T, &blob); err != nil {
				t.Fatalf("key_hsm: %v", err)
			}
			if blob.Header.KID != "tee" || blob.Header.Alg != "dir" || (tc.enc != "" && blob.Header.Enc != tc.enc) {
				t.Errorf("key_hsm header = %+v", blob.Header)
			}
			ct, _ := base64.RawURLEncoding.DecodeString(blob.Ciphertext)
			der, err := byok.Open(tee, tc.hash, ct)
			if err != nil {
				t.Fatalf("the TEE cannot open the released key: %v", err)
			}
			if _, err := byok.Open(other, tc.hash, ct); err == nil {
				t.Error("another RSA key opened the released key")
			}
			priv, err := x509.ParsePKCS8PrivateKey(der)
			if err != nil {
				t.Fatal(err)
			}
			pub := priv.(*ecdsa.PrivateKey).PublicKey
			if new(big.Int).SetBytes(exp.Key.X).Cmp(pub.X) != 0 || new(big.Int).SetBytes(exp.Key.Y).Cmp(pub.Y) != 0 {
				t.Error("the released key is not the key's private half")
			}
		})
	}

	// A token carrying another runtime key gets the key wrapped to that key only.
	res, _, err := r.Release(ctx, v, base, "exp", "", ReleaseParams{Target: "other-rtkey"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(res.Value, "\"d\"") {
		t.Error("the release result carries a private JWK member")
	}

	// The clock moves past the token's exp: the same token is refused.
	clk.Advance(2 * time.Hour)
	if _, _, err := r.Release(ctx, v, base, "exp", "", ReleaseParams{Target: "good"}); !errors.Is(err, ErrReleaseDenied) {
		t.Errorf("Release with a token expired by the clock = %v; want ErrReleaseDenied", err)
	}
}

func TestReleasePolicyValidation(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name string
		data string
	}{
		{"no-anyOf", `{"version":"1.0.0"}`},
		{"empty-anyOf", `{"version":"1.0.0","anyOf":[]}`},
		{"http-authority", `{"version":"1.0.0","anyOf":[{"authority":"http://a","allOf":[{"claim":"c","equals":"x"}]}]}`},
		{"unknown-operator", `{"version":"1.0.0","anyOf":[{"authority":"https://a","allOf":[{"claim":"c","like":"x"}]}]}`},
	} {
		t.Run("fail/"+tc.name, func(t *testing.T) {
			_, err := f.svc.Create(f.ctx, f.v, f.base, "k", CreateParams{Kty: provider.EC, Attributes: &KeyAttributes{Exportable: ptr(true)}, ReleasePolicy: &ReleasePolicy{Data: []byte(tc.data)}})
			wantErr(t, "Create", err, ErrBadParameter)
			if err != nil && !strings.Contains(err.Error(), "not a valid release policy") {
				t.Errorf("Create error = %v; want it to say the policy is invalid", err)
			}
		})
	}
	b := f.mustCreate(f.v, "k", CreateParams{Kty: provider.EC, Attributes: &KeyAttributes{Exportable: ptr(true)}, ReleasePolicy: &ReleasePolicy{Immutable: true, Data: simPolicy("aa")}})
	_, err := f.svc.Update(f.ctx, f.v, f.base, "k", versionOf(b.Key.KID), UpdateParams{ReleasePolicy: &ReleasePolicy{Data: simPolicy("bb")}})
	wantErr(t, "Update(immutable policy)", err, ErrBadParameter)
	_, err = f.svc.Update(f.ctx, f.v, f.base, "k", "", UpdateParams{ReleasePolicy: &ReleasePolicy{Data: []byte(`{"version":"9"}`)}})
	wantErr(t, "Update(invalid policy)", err, ErrBadParameter)
}
