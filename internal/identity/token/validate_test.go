package token

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSignValidateRoundTrip(t *testing.T) {
	f := newFixture(t)
	raw, err := f.signer.Sign(Claims{Issuer: testIssuer, Audience: Audience{testAudience}, TenantID: testTenant,
		ObjectID: "oid-1", Subject: "oid-1", AppID: "app-1", AZP: "app-1", Roles: []string{"Reader"}})
	if err != nil {
		t.Fatalf("Sign = %v", err)
	}
	hb, _ := b64.DecodeString(strings.Split(raw, ".")[0])
	if want := `{"alg":"ES256","kid":"` + f.ecKID + `","typ":"JWT"}`; string(hb) != want {
		t.Errorf("header = %s; want %s", hb, want)
	}
	c, err := Validator{}.Validate(raw, f.expect())
	if err != nil {
		t.Fatalf("Validate(Sign(...)) = %v", err)
	}
	now := t0.Unix()
	if c.Issuer != testIssuer || len(c.Audience) != 1 || c.Audience[0] != testAudience || c.TenantID != testTenant ||
		c.ObjectID != "oid-1" || c.Subject != "oid-1" || c.AppID != "app-1" || c.AZP != "app-1" ||
		c.Version != "2.0" || len(c.Roles) != 1 || c.Roles[0] != "Reader" ||
		c.IssuedAt != now || c.NotBefore != now || c.ExpiresAt != now+3600 {
		t.Errorf("claims = %+v", c)
	}
	if id, err := b64.DecodeString(c.ID); err != nil || len(id) != 16 {
		t.Errorf("jti = %q; want 16 random bytes, base64url", c.ID)
	}
	// Audience is a string on the wire when there is one, as Entra sends it.
	pb, _ := b64.DecodeString(strings.Split(raw, ".")[1])
	if !strings.Contains(string(pb), `"aud":"`+testAudience+`"`) {
		t.Errorf("payload = %s; want aud as a string", pb)
	}
	// Two tokens never share a jti.
	raw2, _ := f.signer.Sign(Claims{Issuer: testIssuer, Audience: Audience{testAudience}})
	c2, err := Validator{}.Validate(raw2, Expect{Issuers: []string{testIssuer}, Audiences: []string{testAudience}, Now: t0, Keys: f.keys})
	if err != nil || c2.ID == c.ID {
		t.Errorf("second token: %v, jti %q vs %q", err, c2.ID, c.ID)
	}
}

func TestSignRefuses(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		c    Claims
	}{
		{"fail/no-issuer", Claims{Audience: Audience{testAudience}}},
		{"fail/no-audience", Claims{Issuer: testIssuer}},
		{"fail/exp-beyond-lifetime", Claims{Issuer: testIssuer, Audience: Audience{testAudience}, ExpiresAt: t0.Add(2 * time.Hour).Unix()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if raw, err := f.signer.Sign(tc.c); err == nil {
				t.Errorf("Sign(%+v) = %q, nil; want an error", tc.c, raw)
			}
		})
	}
}

// TestValidateAttacks is SECURITY-NOTES section A (A2–A13) as a table: every case must be
// rejected with ErrInvalidToken, and for the reason named (so that a case cannot pass by
// failing somewhere else, e.g. on a typo in its own construction).
func TestValidateAttacks(t *testing.T) {
	f := newFixture(t)
	ec, rs := es256(f.ecPriv), rs256(f.rsaPriv)
	ecHdr := `{"alg":"ES256","kid":"` + f.ecKID + `","typ":"JWT"}`
	rsHdr := `{"alg":"RS256","kid":"` + f.rsaKID + `"}`
	hdr := func(members string) string { return `{"alg":"ES256","kid":"` + f.ecKID + `",` + members + `}` }
	good := compact(ecHdr, f.claims(nil), ec)
	now := t0.Unix()

	spki, _ := x509.MarshalPKIXPublicKey(&f.ecPriv.PublicKey)
	spkiPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})
	ecX, _ := f.ecPriv.PublicKey.Bytes()
	rsaSPKI, _ := x509.MarshalPKIXPublicKey(&f.rsaPriv.PublicKey)
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaSPKI})
	attackerKey := newFixture(t).ecPriv
	attackerJWK, _ := ecJWK("attacker", &attackerKey.PublicKey)
	attackerJWKJSON, _ := json.Marshal(attackerJWK)

	segs := strings.Split(good, ".")
	tamperedPayload := segs[0] + "." + enc(f.claims(map[string]any{"oid": "oid-admin"})) + "." + segs[2]
	tamperedHeader := enc(`{"alg":"ES256","kid":"`+f.ecKID+`","typ":"jwt"}`) + "." + segs[1] + "." + segs[2]
	nested := strings.Repeat(`{"a":`, 20) + "1" + strings.Repeat("}", 20)

	tests := []struct {
		name   string
		raw    string
		expect func(*Expect) // optional change to the fixture's Expect
		want   error         // the reason, or nil for accepted
	}{
		// Controls: the same construction with nothing wrong is accepted.
		{name: "ok/es256", raw: good},
		{name: "ok/rs256-rsa-key", raw: compact(rsHdr, f.claims(nil), rs)},
		{name: "ok/ps256-rsa-key", raw: compact(`{"alg":"PS256","kid":"rsa-1"}`, f.claims(nil), ps256(f.rsaPriv))},
		{name: "ok/aud-array-with-ours", raw: compact(ecHdr, f.claims(map[string]any{"aud": []string{"https://other", testAudience}}), ec)},
		{name: "ok/expired-within-leeway", raw: compact(ecHdr, f.claims(map[string]any{"exp": now - 60}), ec)},
		{name: "ok/nbf-within-leeway", raw: compact(ecHdr, f.claims(map[string]any{"nbf": now + 60}), ec)},
		{name: "ok/no-tenant-expected", raw: compact(ecHdr, f.claims(map[string]any{"tid": nil}), ec), expect: func(e *Expect) { e.TenantID = "" }},
		{name: "ok/typ-at+jwt", raw: compact(hdr(`"typ":"at+jwt"`), f.claims(nil), ec)},

		// A2: alg none in any case, empty or stripped signature.
		{name: "fail/alg-none", raw: compact(`{"alg":"none","kid":"`+f.ecKID+`"}`, f.claims(nil), noSig), want: errEmptySegment},
		{name: "fail/alg-None", raw: compact(`{"alg":"None","kid":"`+f.ecKID+`"}`, f.claims(nil), noSig), want: errEmptySegment},
		{name: "fail/alg-NONE", raw: compact(`{"alg":"NONE","kid":"`+f.ecKID+`"}`, f.claims(nil), noSig), want: errEmptySegment},
		{name: "fail/alg-nOnE", raw: compact(`{"alg":"nOnE","kid":"`+f.ecKID+`"}`, f.claims(nil), noSig), want: errEmptySegment},
		{name: "fail/alg-none-with-signature", raw: compact(`{"alg":"none","kid":"`+f.ecKID+`"}`, f.claims(nil), ec), want: errAlgNotAllowed},
		{name: "fail/alg-none-no-kid", raw: compact(`{"alg":"none"}`, f.claims(nil), ec), want: errKIDMissing},
		{name: "fail/alg-lowercase-es256", raw: compact(`{"alg":"es256","kid":"`+f.ecKID+`"}`, f.claims(nil), ec), want: errAlgNotAllowed},
		{name: "fail/alg-missing", raw: compact(`{"kid":"`+f.ecKID+`"}`, f.claims(nil), ec), want: errAlgMissing},
		{name: "fail/empty-signature", raw: segs[0] + "." + segs[1] + ".", want: errEmptySegment},
		{name: "fail/stripped-signature", raw: segs[0] + "." + segs[1], want: errSegments},

		// A3: HMAC keyed with the public key (key confusion).
		{name: "fail/hs256-ec-spki-pem", raw: compact(`{"alg":"HS256","kid":"`+f.ecKID+`"}`, f.claims(nil), hs256(spkiPEM)), want: errAlgNotAllowed},
		{name: "fail/hs256-ec-spki-der", raw: compact(`{"alg":"HS256","kid":"`+f.ecKID+`"}`, f.claims(nil), hs256(spki)), want: errAlgNotAllowed},
		{name: "fail/hs256-ec-jwk-x", raw: compact(`{"alg":"HS256","kid":"`+f.ecKID+`"}`, f.claims(nil), hs256(ecX[1:33])), want: errAlgNotAllowed},
		{name: "fail/hs256-ec-jwk-x-text", raw: compact(`{"alg":"HS256","kid":"`+f.ecKID+`"}`, f.claims(nil), hs256([]byte(b64.EncodeToString(ecX[1:33])))), want: errAlgNotAllowed},
		{name: "fail/hs256-rsa-pem", raw: compact(`{"alg":"HS256","kid":"rsa-1"}`, f.claims(nil), hs256(rsaPEM)), want: errAlgNotAllowed},
		{name: "fail/hs256-rsa-jwk-n", raw: compact(`{"alg":"HS256","kid":"rsa-1"}`, f.claims(nil), hs256(f.rsaPriv.N.Bytes())), want: errAlgNotAllowed},
		{name: "fail/hs512-rsa-der", raw: compact(`{"alg":"HS512","kid":"rsa-1"}`, f.claims(nil), hs256(rsaSPKI)), want: errAlgNotAllowed},

		// A4: the header's alg does not fit the key.
		{name: "fail/es256-header-rsa-kid", raw: compact(`{"alg":"ES256","kid":"rsa-1"}`, f.claims(nil), ec), want: errAlgNotAllowed},
		{name: "fail/rs256-header-ec-kid", raw: compact(`{"alg":"RS256","kid":"`+f.ecKID+`"}`, f.claims(nil), rs), want: errAlgNotAllowed},
		{name: "fail/ps256-header-ec-kid", raw: compact(`{"alg":"PS256","kid":"`+f.ecKID+`"}`, f.claims(nil), ps256(f.rsaPriv)), want: errAlgNotAllowed},
		{name: "fail/es384-header-p256-kid", raw: compact(`{"alg":"ES384","kid":"`+f.ecKID+`"}`, f.claims(nil), ec), want: errAlgNotAllowed},
		{name: "fail/rs256-signed-by-other-rsa-key", raw: compact(rsHdr, f.claims(nil), rs256(rsaOther())), want: errSignature},

		// A5: audience.
		{name: "fail/wrong-aud", raw: compact(ecHdr, f.claims(map[string]any{"aud": "https://managedhsm.coffer.test"}), ec), want: errAudience},
		{name: "fail/aud-array-only-foreign", raw: compact(ecHdr, f.claims(map[string]any{"aud": []string{"https://a", "https://b"}}), ec), want: errAudience},
		{name: "fail/aud-missing", raw: compact(ecHdr, f.claims(map[string]any{"aud": nil}), ec), want: errAudience},
		{name: "fail/aud-null", raw: compact(ecHdr, strings.Replace(f.claims(nil), `"aud":"`+testAudience+`"`, `"aud":null`, 1), ec), want: errAudience},
		{name: "fail/aud-empty-array", raw: compact(ecHdr, f.claims(map[string]any{"aud": []string{}}), ec), want: errAudience},
		{name: "fail/aud-trailing-slash", raw: compact(ecHdr, f.claims(map[string]any{"aud": testAudience + "/"}), ec), want: errAudience},
		{name: "fail/aud-case-variant", raw: compact(ecHdr, f.claims(map[string]any{"aud": strings.ToUpper(testAudience)}), ec), want: errAudience},
		{name: "fail/aud-number", raw: compact(ecHdr, f.claims(map[string]any{"aud": 42}), ec), want: errPayload},

		// A6: issuer and tenant.
		{name: "fail/wrong-iss", raw: compact(ecHdr, f.claims(map[string]any{"iss": "https://evil.test/" + testTenant + "/v2.0"}), ec), want: errIssuer},
		{name: "fail/iss-trailing-slash", raw: compact(ecHdr, f.claims(map[string]any{"iss": testIssuer + "/"}), ec), want: errIssuer},
		{name: "fail/iss-without-v2.0", raw: compact(ecHdr, f.claims(map[string]any{"iss": strings.TrimSuffix(testIssuer, "/v2.0")}), ec), want: errIssuer},
		{name: "fail/iss-missing", raw: compact(ecHdr, f.claims(map[string]any{"iss": nil}), ec), want: errIssuer},
		{name: "fail/wrong-tid", raw: compact(ecHdr, f.claims(map[string]any{"tid": "99999999-2222-3333-4444-555555555555"}), ec), want: errTenant},
		{name: "fail/tid-missing", raw: compact(ecHdr, f.claims(map[string]any{"tid": nil}), ec), want: errTenant},

		// A7: times.
		{name: "fail/expired-beyond-leeway", raw: compact(ecHdr, f.claims(map[string]any{"exp": now - 121}), ec), want: errExpired},
		{name: "fail/expired-beyond-max-leeway", raw: compact(ecHdr, f.claims(map[string]any{"exp": now - 301}), ec), expect: func(e *Expect) { e.Leeway = time.Hour }, want: errExpired},
		{name: "fail/exp-missing", raw: compact(ecHdr, f.claims(map[string]any{"exp": nil}), ec), want: errExpMissing},
		{name: "fail/exp-string", raw: compact(ecHdr, f.claims(map[string]any{"exp": "9999999999"}), ec), want: errPayload},
		{name: "fail/exp-1e308", raw: compact(ecHdr, strings.Replace(f.claims(map[string]any{"exp": 7}), `"exp":7`, `"exp":1e308`, 1), ec), want: errPayload},
		{name: "fail/exp-float", raw: compact(ecHdr, f.claims(map[string]any{"exp": float64(now) + 3600.5}), ec), want: errPayload},
		{name: "fail/exp-negative", raw: compact(ecHdr, f.claims(map[string]any{"exp": -1}), ec), want: errExpired},
		{name: "fail/exp-zero", raw: compact(ecHdr, f.claims(map[string]any{"exp": 0}), ec), want: errExpMissing},
		{name: "fail/nbf-future", raw: compact(ecHdr, f.claims(map[string]any{"nbf": now + 600}), ec), want: errNotYetValid},
		{name: "fail/iat-far-future", raw: compact(ecHdr, f.claims(map[string]any{"iat": now + 86400}), ec), want: errIssuedFuture},

		// A8: kid.
		{name: "fail/unknown-kid", raw: compact(`{"alg":"ES256","kid":"nope"}`, f.claims(nil), ec), want: errUnknownKID},
		{name: "fail/kid-path-traversal", raw: compact(`{"alg":"ES256","kid":"../../etc/passwd"}`, f.claims(nil), ec), want: errUnknownKID},
		{name: "fail/kid-sql", raw: compact(`{"alg":"ES256","kid":"' OR 1=1 --"}`, f.claims(nil), ec), want: errUnknownKID},
		{name: "fail/kid-nul", raw: compact(`{"alg":"ES256","kid":"`+f.ecKID+`\u0000"}`, f.claims(nil), ec), want: errUnknownKID},
		{name: "fail/kid-10KB", raw: compact(`{"alg":"ES256","kid":"`+strings.Repeat("k", 10<<10)+`"}`, f.claims(nil), ec), want: errHeaderTooLong},
		{name: "fail/kid-300B", raw: compact(`{"alg":"ES256","kid":"`+strings.Repeat("k", 300)+`"}`, f.claims(nil), ec), want: errKIDTooLong},
		{name: "fail/kid-missing", raw: compact(`{"alg":"ES256"}`, f.claims(nil), ec), want: errKIDMissing},
		{name: "fail/kid-number", raw: compact(`{"alg":"ES256","kid":1}`, f.claims(nil), ec), want: errJSON},

		// A9, A10, A13: header parameters that choose keys or processing.
		{name: "fail/jku", raw: compact(hdr(`"jku":"https://evil.test/keys"`), f.claims(nil), ec), want: errForbiddenHeader},
		{name: "fail/x5u", raw: compact(hdr(`"x5u":"https://evil.test/cert"`), f.claims(nil), ec), want: errForbiddenHeader},
		{name: "fail/jwk-embedded-attacker-key", raw: compact(`{"alg":"ES256","kid":"attacker","jwk":`+string(attackerJWKJSON)+`}`, f.claims(nil), es256(attackerKey)), want: errForbiddenHeader},
		{name: "fail/x5c", raw: compact(hdr(`"x5c":["MIIB"]`), f.claims(nil), ec), want: errForbiddenHeader},
		{name: "fail/crit", raw: compact(hdr(`"crit":["exp"],"exp":1`), f.claims(nil), ec), want: errForbiddenHeader},
		{name: "fail/b64-false", raw: compact(hdr(`"b64":false,"crit":["b64"]`), f.claims(nil), ec), want: errForbiddenHeader},
		{name: "fail/zip", raw: compact(hdr(`"zip":"DEF"`), f.claims(nil), ec), want: errForbiddenHeader},
		{name: "fail/typ-not-jwt", raw: compact(hdr(`"typ":"JWE"`), f.claims(nil), ec), want: errTyp},
		{name: "fail/jwe-5-segments", raw: segs[0] + ".AAAA.AAAA.AAAA.AAAA", want: errSegments},
		{name: "fail/jws-json-serialization", raw: `{"payload":"` + segs[1] + `","signatures":[{"protected":"` + segs[0] + `","signature":"` + segs[2] + `"}]}`, want: errCharset},

		// Integrity.
		{name: "fail/tampered-payload", raw: tamperedPayload, want: errSignature},
		{name: "fail/tampered-header", raw: tamperedHeader, want: errSignature},
		{name: "fail/truncated", raw: good[:len(good)-10], want: errSignature},
		{name: "fail/truncated-one-char", raw: good[:len(good)-1], want: errBase64},
		{name: "fail/signature-of-other-token", raw: segs[0] + "." + enc(f.claims(map[string]any{"sub": "x"})) + "." + segs[2], want: errSignature},
		{name: "fail/der-ecdsa-signature", raw: compact(ecHdr, f.claims(nil), es256DER(f.ecPriv)), want: errSignature},
		{name: "fail/zero-signature", raw: segs[0] + "." + segs[1] + "." + b64.EncodeToString(make([]byte, 64)), want: errSignature},

		// A11: sizes, rejected by the length check before anything is parsed.
		{name: "fail/token-1MB", raw: segs[0] + "." + strings.Repeat("A", 1<<20) + "." + segs[2], want: errTooLong},
		{name: "fail/dots-100000", raw: strings.Repeat(".", 100000), want: errTooLong},
		{name: "fail/segments-10000", raw: strings.Repeat("AAAA.", 9999) + "AAAA", want: errTooLong},
		{name: "fail/segments-1000", raw: strings.Repeat("AAAA.", 999) + "AAAA", want: errSegments},
		{name: "fail/header-nested-deeply", raw: compact(hdr(`"x":`+nested), f.claims(nil), ec), want: errJSONDepth},
		{name: "fail/header-many-members", raw: compact(hdr(manyMembers(100)), f.claims(nil), ec), want: errJSONMembers},

		// A12: encoding.
		{name: "fail/empty", raw: "", want: errSegments},
		{name: "fail/padding-header", raw: enc(ecHdr+" ") + "=." + segs[1] + "." + segs[2], want: errCharset},
		{name: "fail/padding-signature", raw: good + "==", want: errCharset},
		{name: "fail/std-base64-plus", raw: segs[0] + "." + segs[1] + ".+" + segs[2][1:], want: errCharset},
		{name: "fail/std-base64-slash", raw: segs[0] + "." + segs[1] + "./" + segs[2][1:], want: errCharset},
		{name: "fail/whitespace-leading", raw: " " + good, want: errCharset},
		{name: "fail/whitespace-trailing-newline", raw: good + "\n", want: errCharset},
		{name: "fail/whitespace-inside", raw: segs[0][:4] + "\r\n" + segs[0][4:] + "." + segs[1] + "." + segs[2], want: errCharset},
		{name: "fail/bearer-prefix", raw: "Bearer " + good, want: errCharset},
		{name: "fail/trailing-bits", raw: segs[0] + "." + segs[1] + "." + flipLastBits(segs[2]), want: errBase64},
		{name: "fail/duplicate-alg", raw: compact(`{"alg":"none","alg":"ES256","kid":"`+f.ecKID+`"}`, f.claims(nil), ec), want: errDuplicateMember},
		{name: "fail/duplicate-alg-escaped", raw: compact(`{"alg":"none","\u0061lg":"ES256","kid":"`+f.ecKID+`"}`, f.claims(nil), ec), want: errDuplicateMember},
		{name: "fail/duplicate-alg-case", raw: compact(`{"alg":"ES256","ALG":"none","kid":"`+f.ecKID+`"}`, f.claims(nil), ec), want: errDuplicateMember},
		{name: "fail/alg-case-variant-name", raw: compact(`{"Alg":"ES256","kid":"`+f.ecKID+`"}`, f.claims(nil), ec), want: errCaseVariant},
		{name: "fail/duplicate-kid", raw: compact(`{"alg":"ES256","kid":"nope","kid":"`+f.ecKID+`"}`, f.claims(nil), ec), want: errDuplicateMember},
		{name: "fail/duplicate-aud-in-payload", raw: compact(ecHdr, `{"aud":"https://other","aud":"`+testAudience+`",`+f.claims(nil)[1:], ec), want: errDuplicateMember},
		{name: "fail/case-variant-exp-in-payload", raw: compact(ecHdr, `{"EXP":9999999999,`+f.claims(map[string]any{"exp": nil})[1:], ec), want: errCaseVariant},
		{name: "fail/header-array", raw: compact(`[]`, f.claims(nil), ec), want: errNotObject},
		{name: "fail/header-string", raw: compact(`"ES256"`, f.claims(nil), ec), want: errNotObject},
		{name: "fail/header-null", raw: compact(`null`, f.claims(nil), ec), want: errNotObject},
		{name: "fail/header-trailing-data", raw: compact(ecHdr+`{}`, f.claims(nil), ec), want: errJSON},
		{name: "fail/header-not-json", raw: compact(`{alg:ES256}`, f.claims(nil), ec), want: errJSON},
		{name: "fail/header-non-utf8", raw: compact(`{"alg":"ES256","kid":"`+f.ecKID+`","x":"`+"\xff\xfe"+`"}`, f.claims(nil), ec), want: errUTF8},
		{name: "fail/payload-non-utf8", raw: compact(ecHdr, `{"sub":"`+"\xc3\x28"+`",`+f.claims(nil)[1:], ec), want: errUTF8},
		{name: "fail/payload-array", raw: compact(ecHdr, `[`+f.claims(nil)+`]`, ec), want: errNotObject},
		{name: "fail/payload-empty", raw: compact(ecHdr, ``, ec), want: errNotObject},
		{name: "fail/payload-trailing-data", raw: compact(ecHdr, f.claims(nil)+`x`, ec), want: errJSON},

		// The validator fails closed when misconfigured.
		{name: "fail/expect-no-issuers", raw: good, expect: func(e *Expect) { e.Issuers = nil }, want: errMisconfigured},
		{name: "fail/expect-no-audiences", raw: good, expect: func(e *Expect) { e.Audiences = nil }, want: errMisconfigured},
		{name: "fail/expect-empty-audience", raw: good, expect: func(e *Expect) { e.Audiences = []string{""} }, want: errMisconfigured},
		{name: "fail/expect-no-keys", raw: good, expect: func(e *Expect) { e.Keys = nil }, want: errMisconfigured},
		{name: "fail/expect-no-now", raw: good, expect: func(e *Expect) { e.Now = time.Time{} }, want: errMisconfigured},
	}
	var variants, rejected, controls int
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exp := f.expect()
			if tc.expect != nil {
				tc.expect(&exp)
			}
			c, err := Validator{}.Validate(tc.raw, exp)
			if tc.want == nil {
				controls++
				if err != nil || c == nil {
					t.Fatalf("Validate(%.80q) = %v, %v; want claims, nil", tc.raw, c, err)
				}
				return
			}
			variants++
			if c != nil || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Validate(%.80q) = %+v, %v; want nil, ErrInvalidToken", tc.raw, c, err)
			}
			rejected++
			if !errors.Is(err, tc.want) {
				t.Errorf("Validate(%.80q) = %v; want %v", tc.raw, err, tc.want)
			}
			if tc.want == errTooLong && !strings.Contains(err.Error(), "too long") {
				t.Errorf("Validate(%.80q) = %v; want the reason to say \"too long\"", tc.raw, err)
			}
		})
	}
	if variants < 40 {
		t.Errorf("%d token variants; the §4 JWT figure asks for at least 40", variants)
	}
	t.Logf("JWT validator: %d token variants (A2–A13), %d rejected for the reason named; %d controls accepted", variants, rejected, controls)
}

func manyMembers(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"m` + strconv.Itoa(i) + `":0`)
	}
	return b.String()
}

// flipLastBits sets the unused low bits of the last base64url character of s, which a
// strict decoder must refuse (the bytes would decode the same without Strict).
func flipLastBits(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[i|1])
}

func TestLeewayBounds(t *testing.T) {
	tests := []struct {
		name   string
		leeway time.Duration
		want   int64
	}{
		{"ok/default", 0, 120},
		{"ok/explicit", 30 * time.Second, 30},
		{"ok/negative-means-none", -time.Second, 0},
		{"ok/clamped-to-max", time.Hour, 300},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := Expect{Leeway: tc.leeway}
			if got := e.leeway(); got != tc.want {
				t.Errorf("Expect{Leeway: %v}.leeway() = %d; want %d", tc.leeway, got, tc.want)
			}
		})
	}
}

func TestAudienceJSON(t *testing.T) {
	tests := []struct {
		name, in string
		want     Audience
		wantErr  bool
	}{
		{name: "ok/string", in: `"a"`, want: Audience{"a"}},
		{name: "ok/array", in: `["a","b"]`, want: Audience{"a", "b"}},
		{name: "ok/null", in: `null`, want: nil},
		{name: "fail/number", in: `1`, wantErr: true},
		{name: "fail/object", in: `{"a":1}`, wantErr: true},
		{name: "fail/array-of-numbers", in: `[1]`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a Audience
			err := json.Unmarshal([]byte(tc.in), &a)
			if (err != nil) != tc.wantErr || strings.Join(a, ",") != strings.Join(tc.want, ",") {
				t.Errorf("Unmarshal(%s) = %q, %v; want %q, error %v", tc.in, a, err, tc.want, tc.wantErr)
			}
		})
	}
	for _, a := range []Audience{{"a"}, {"a", "b"}} {
		b, _ := json.Marshal(a)
		var back Audience
		if err := json.Unmarshal(b, &back); err != nil || strings.Join(back, ",") != strings.Join(a, ",") {
			t.Errorf("round trip of %q via %s = %q, %v", a, b, back, err)
		}
	}
}

func FuzzValidate(f *testing.F) {
	fx := newFixture(f)
	ec := es256(fx.ecPriv)
	good, err := fx.signer.Sign(Claims{Issuer: testIssuer, Audience: Audience{testAudience}, TenantID: testTenant})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(compact(`{"alg":"RS256","kid":"rsa-1"}`, fx.claims(nil), rs256(fx.rsaPriv)))
	f.Add(compact(`{"alg":"none","alg":"ES256","kid":"`+fx.ecKID+`"}`, fx.claims(nil), ec))
	f.Add(compact(`{"alg":"ES256","kid":"`+fx.ecKID+`"}`, `{"aud":["x",{"y":[1,2,{"z":null}]}],"exp":1e308}`, ec))
	f.Add(compact(`{"alg":"ES256","kid":"`+fx.ecKID+`","x":"\ud800\"\\"}`, fx.claims(nil), ec))
	f.Add("a.b.c")
	f.Add("..")
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := Validator{}.Validate(raw, fx.expect())
		if err != nil {
			if c != nil || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Validate(%q) = %v, %v; want nil and ErrInvalidToken", raw, c, err)
			}
			return
		}
		if c == nil || c.ExpiresAt == 0 || !c.Audience.Contains([]string{testAudience}) {
			t.Fatalf("Validate(%q) accepted claims %+v", raw, c)
		}
	})
}

func BenchmarkValidate(b *testing.B) {
	f := newFixture(b)
	raw, err := f.signer.Sign(Claims{Issuer: testIssuer, Audience: Audience{testAudience}, TenantID: testTenant,
		ObjectID: "oid-1", Subject: "oid-1", AppID: "app-1", AZP: "app-1"})
	if err != nil {
		b.Fatal(err)
	}
	exp := f.expect()
	exp.Keys = f.signer.KeySet()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (Validator{}).Validate(raw, exp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkES256Verify is the floor under BenchmarkValidate: one P-256 signature check.
func BenchmarkES256Verify(b *testing.B) {
	f := newFixture(b)
	input := "header.payload"
	sig, _ := b64.DecodeString(es256(f.ecPriv)(input))
	pub := &f.ecPriv.PublicKey
	for b.Loop() {
		if !verifySignature("ES256", pub, input, sig) {
			b.Fatal("verify failed")
		}
	}
}

func BenchmarkValidateRejectOversized(b *testing.B) {
	f := newFixture(b)
	raw := strings.Repeat(".", 100000)
	exp := f.expect()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (Validator{}).Validate(raw, exp); !errors.Is(err, errTooLong) {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	f := newFixture(b)
	c := Claims{Issuer: testIssuer, Audience: Audience{testAudience}, TenantID: testTenant, ObjectID: "oid-1", Subject: "oid-1"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.signer.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}
