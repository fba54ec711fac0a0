package token

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzSignedClaims fuzzes what lies behind a valid signature: the protected header and the
// claims, signed with the fixture's key, as a tenant's own external issuer could sign them.
// Validate and VerifyClaims must fail with ErrInvalidToken, or accept only a header and a
// payload that encoding/json also reads as JSON objects, and claims Validate's contract
// allows.
func FuzzSignedClaims(f *testing.F) {
	fx := newFixture(f)
	hdr := `{"alg":"ES256","kid":"` + fx.ecKID + `"}`
	f.Add(hdr, fx.claims(nil))
	f.Add(hdr, fx.claims(map[string]any{"aud": []string{"x", testAudience}, "exp": 1e12}))
	f.Add(`{"alg":"ES256","kid":"`+fx.ecKID+`","typ":"JWT","x":"\ud800"}`, fx.claims(map[string]any{"nbf": nil, "iat": nil}))
	f.Add(hdr, `{"iss":"a","iss":"b"}`)
	f.Add(hdr, `{"exp":1.5,"aud":[]}`)
	sign := es256(fx.ecPriv)
	f.Fuzz(func(t *testing.T, header, payload string) {
		raw := compact(header, payload, sign)
		c, err := Validator{}.Validate(raw, fx.expect())
		if err != nil {
			if c != nil || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Validate = %v, %v; want nil and ErrInvalidToken", c, err)
			}
		} else {
			var h, p map[string]any
			if json.Unmarshal([]byte(header), &h) != nil || json.Unmarshal([]byte(payload), &p) != nil {
				t.Fatalf("Validate accepted header %q payload %q, which encoding/json refuses", header, payload)
			}
			now := fx.clk.Now().Unix()
			if c.Issuer != testIssuer || c.TenantID != testTenant || !c.Audience.Contains([]string{testAudience}) || c.ExpiresAt <= now-int64(MaxLeeway.Seconds()) {
				t.Fatalf("Validate accepted claims %+v", c)
			}
		}
		m, err := VerifyClaims(raw, fx.keys)
		if err != nil {
			if m != nil || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("VerifyClaims = %v, %v; want nil and ErrInvalidToken", m, err)
			}
			return
		}
		var p map[string]any
		if json.Unmarshal([]byte(payload), &p) != nil {
			t.Fatalf("VerifyClaims accepted payload %q, which encoding/json refuses", payload)
		}
	})
}
