package token

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// wycheproofFile is the subset of a Wycheproof JOSE vector file these tests read.
type wycheproofFile struct {
	TestGroups []struct {
		Comment string          `json:"comment"`
		Public  json.RawMessage `json:"public"`
		Tests   []struct {
			TcID    json.Number     `json:"tcId"`
			Comment string          `json:"comment"`
			JWS     json.RawMessage `json:"jws"`
			Result  string          `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

// supportedAlgs are the algorithms Coffer's validator offers; a "valid" vector using any
// other (HS*, RS384/512, PS384/512, ES512) must be rejected by policy.
var supportedAlgs = map[string]bool{"ES256": true, "ES384": true, "RS256": true, "PS256": true}

// TestWycheproofJWS runs the Wycheproof JWS and JWK vectors (testdata/wycheproof, see
// SOURCE.md) through the signature layer of Validate (the payloads are not JWT claims):
// every "invalid" vector, including the AlgIsNone, WrongPrimitive, modified-signature,
// base64 and wrong-key-use groups, must be rejected; every "valid" vector must be accepted
// if its alg is one we support with a key we accept, and rejected otherwise.
func TestWycheproofJWS(t *testing.T) {
	var total, accepted, rejectedByPolicy int
	invalid, invalidRejected := map[string]int{}, map[string]int{}
	for _, name := range []string{"json_web_signature_test.json", "json_web_key_test.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "wycheproof", name))
		if err != nil {
			t.Fatal(err)
		}
		var file wycheproofFile
		if err := json.Unmarshal(b, &file); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for gi, g := range file.TestGroups {
			keys := &StaticKeySet{}
			if g.Public != nil {
				doc := g.Public
				if !strings.Contains(string(doc), `"keys"`) {
					doc = json.RawMessage(`{"keys":[` + string(doc) + `]}`)
				}
				if keys, err = ParseJWKS(doc); err != nil {
					t.Fatalf("%s group %d (%s): ParseJWKS = %v", name, gi, g.Comment, err)
				}
			}
			for _, tc := range g.Tests {
				total++
				raw := string(tc.JWS)
				var s string
				if json.Unmarshal(tc.JWS, &s) == nil {
					raw = s // compact; otherwise the JSON serialization, which must fail
				}
				_, err := verifyJWS(raw, keys)
				id := name + " tc" + tc.TcID.String() + " " + g.Comment + "/" + tc.Comment
				if tc.Result == "invalid" {
					invalid[name]++
					if err != nil {
						invalidRejected[name]++
					}
				}
				switch {
				case tc.Result == "invalid" && err == nil:
					t.Errorf("%s: invalid vector accepted", id)
				case tc.Result == "valid" && err != nil:
					if supportedAlgs[headerAlg(raw)] && keys.Len() > 0 {
						t.Errorf("%s: valid vector with a supported alg and key rejected: %v", id, err)
					}
					rejectedByPolicy++
				case tc.Result == "valid":
					if !supportedAlgs[headerAlg(raw)] {
						t.Errorf("%s: accepted alg %q we do not support", id, headerAlg(raw))
					}
					accepted++
				}
			}
		}
	}
	if total != 427 || accepted == 0 {
		t.Errorf("ran %d vectors, %d accepted; want 427 with some accepted", total, accepted)
	}
	if n := invalid["json_web_signature_test.json"]; n != 355 {
		t.Errorf("json_web_signature_test.json has %d invalid vectors; want the 355 of the §4 JWT figure", n)
	}
	t.Logf("Wycheproof JWS/JWK: %d vectors; %d valid accepted, %d valid rejected by policy; invalid rejected: json_web_signature_test %d/%d, json_web_key_test %d/%d",
		total, accepted, rejectedByPolicy, invalidRejected["json_web_signature_test.json"], invalid["json_web_signature_test.json"],
		invalidRejected["json_web_key_test.json"], invalid["json_web_key_test.json"])
}

// headerAlg returns the alg of a compact JWS's header, or "".
func headerAlg(raw string) string {
	h, _, _ := strings.Cut(raw, ".")
	b, err := b64.DecodeString(h)
	if err != nil {
		return ""
	}
	var v struct {
		Alg string `json:"alg"`
	}
	_ = json.Unmarshal(b, &v)
	return v.Alg
}
