package skr

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const maa = "https://sharedeus.eus.attest.azure.net"

// cvmPolicy is the shape of Azure's documented confidential VM release policy.
const cvmPolicy = `{
  "version": "1.0.0",
  "anyOf": [{
    "authority": "https://sharedeus.eus.attest.azure.net/",
    "allOf": [
      {"claim": "x-ms-isolation-tee.x-ms-attestation-type", "equals": "sevsnpvm"},
      {"claim": "x-ms-isolation-tee.x-ms-compliance-status", "equals": "azure-compliant-cvm"}
    ]
  }]
}`

func TestParse(t *testing.T) {
	nested := `{"version":"1.0.2","anyOf":[{"authority":"https://a.example","anyOf":[
		{"allOf":[{"claim":"x","equals":true},{"anyOf":[{"claim":"svn","greaterOrEquals":3},{"claim":"y","exists":false}]}]},
		{"claim":"z","notEquals":"bad"}]}]}`
	deep := func(n int) string {
		s := `{"claim":"c","equals":1}`
		for i := 0; i < n; i++ {
			s = `{"allOf":[` + s + `]}`
		}
		return `{"version":"1.0.0","anyOf":[{"authority":"https://a.example","allOf":[` + s + `]}]}`
	}
	many := func(n int) string {
		c := make([]string, n)
		for i := range c {
			c[i] = `{"claim":"c","equals":1}`
		}
		return `{"version":"1.0.0","anyOf":[{"authority":"https://a.example","allOf":[` + strings.Join(c, ",") + `]}]}`
	}
	tests := []struct {
		name, doc string
		wantErr   string // "" means the policy parses
	}{
		{"ok/azure-cvm-policy", cvmPolicy, ""},
		{"ok/version-1.0.2-nested", nested, ""},
		{"ok/member-names-any-case", `{"VERSION":"1.0.0","anyof":[{"Authority":"https://a.example","ALLOF":[{"Claim":"c","Equals":"v"}]}]}`, ""},
		{"ok/every-operator", `{"version":"1.0.0","anyOf":[{"authority":"https://a.example","allOf":[
			{"claim":"a","equals":"s"},{"claim":"b","notEquals":false},{"claim":"c","less":10},
			{"claim":"d","lessOrEquals":-1.5},{"claim":"e","greater":0},{"claim":"f","greaterOrEquals":2},{"claim":"g","exists":true}]}]}`, ""},
		{"ok/depth-at-limit", deep(MaxDepth - 1), ""},
		{"ok/conditions-at-limit", many(MaxConditions - 1), ""},

		{"fail/not-json", `{"version":`, "not valid JSON"},
		{"fail/top-level-array", `[]`, "must be a JSON object"},
		{"fail/trailing-data", cvmPolicy + `{}`, "unexpected data after"},
		{"fail/unknown-version", strings.Replace(cvmPolicy, "1.0.0", "2.0.0", 1), `"version" must be one of`},
		{"fail/version-number", `{"version":1.0,"anyOf":[]}`, `"version" must be one of`},
		{"fail/missing-anyOf", `{"version":"1.0.0"}`, `"anyOf" must be a non-empty array`},
		{"fail/empty-anyOf", `{"version":"1.0.0","anyOf":[]}`, `"anyOf" must be a non-empty array`},
		{"fail/top-level-allOf", `{"version":"1.0.0","allOf":[]}`, `unknown member "allOf"`},
		{"fail/unknown-member", `{"version":"1.0.0","anyOf":[],"extra":1}`, `unknown member "extra"`},
		{"fail/duplicate-member", `{"version":"1.0.0","version":"1.0.2","anyOf":[]}`, `"version" appears twice`},
		{"fail/duplicate-member-other-case", `{"version":"1.0.0","Version":"1.0.0","anyOf":[]}`, `"version" appears twice`},
		{"fail/authority-missing", `{"version":"1.0.0","anyOf":[{"allOf":[{"claim":"c","equals":1}]}]}`, `"authority" must be a string`},
		{"fail/authority-http", `{"version":"1.0.0","anyOf":[{"authority":"http://a.example","allOf":[{"claim":"c","equals":1}]}]}`, "must be an https URL"},
		{"fail/authority-query", `{"version":"1.0.0","anyOf":[{"authority":"https://a.example/?x=1","allOf":[{"claim":"c","equals":1}]}]}`, "must be an https URL"},
		{"fail/authority-without-conditions", `{"version":"1.0.0","anyOf":[{"authority":"https://a.example"}]}`, `exactly one of "anyOf" or "allOf"`},
		{"fail/authority-both-groups", `{"version":"1.0.0","anyOf":[{"authority":"https://a.example","anyOf":[{"claim":"c","equals":1}],"allOf":[{"claim":"c","equals":1}]}]}`, `exactly one of "anyOf" or "allOf"`},
		{"fail/authority-claim-directly", `{"version":"1.0.0","anyOf":[{"authority":"https://a.example","claim":"c","equals":1}]}`, `unknown member "claim"`},
		{"fail/empty-allOf", `{"version":"1.0.0","anyOf":[{"authority":"https://a.example","allOf":[]}]}`, "non-empty arrays of conditions"},
		{"fail/claim-no-operator", `{"version":"1.0.0","anyOf":[{"authority":"https://a.example","allOf":[{"claim":"c"}]}]}`, "needs exactly one operator"},
		{"fail/claim-two-operators", `{"version":"1.0.0","anyOf":[{"authority":"https://a.example","allOf":[{"claim":"c","equals":1,"notEquals":2}]}]}`, "needs exactly one operator"},
		{"fail/claim-with-group", `{"version":"1.0.0","anyOf":[{"authority":"https://a.example","allOf":[{"claim":"c","allOf":[]}]}]}`, "needs an operator"},
		{"fail/claim-empty", `{"version":"1.0.0","anyOf":[{"authority":"https://a.example","allOf":[{"claim":"","equals":1}]}]}`, "must be a claim name"},
		{"fail/claim-empty-segment", `{"version":"1.0.0","anyOf":[{"authority":"https://a.example","allOf":[{"claim":"a..b","equals":1}]}]}`, "empty segment"},
		{"fail/claim-number", `{"version":"1.0.0","anyOf":[{"authority":"https://a.example","allOf":[{"claim":7,"equals":1}]}]}`, "must be a claim name"},
		{"fail/null-value", `{"version":"1.0.0","anyOf":[{"authority":"https://a.example","allOf":[{"claim":"c","equals":null}]}]}`, "null is not allowed"},
		{"fail/object-value", `{"version":"1.0.0","anyOf":[{"authority":"https://a.example","allOf":[{"claim":"c","equals":{}}]}]}`, "equals needs a string, number or boolean"},
		{"fail/greater-string", `{"version":"1.0.0","anyOf":[{"authority":"https://a.example","allOf":[{"claim":"c","greater":"1"}]}]}`, "greater needs a number"},
		{"fail/exists-string", `{"version":"1.0.0","anyOf":[{"authority":"https://a.example","allOf":[{"claim":"c","exists":"yes"}]}]}`, "exists needs true or false"},
		{"fail/number-exponent", `{"version":"1.0.0","anyOf":[{"authority":"https://a.example","allOf":[{"claim":"c","less":1e400}]}]}`, "plain decimals"},
		{"fail/too-deep", deep(MaxDepth), "nested"},
		{"fail/too-many-conditions", many(MaxConditions + 1), "more than 256 conditions"},
		{"fail/too-large", `{"version":"1.0.0","anyOf":[` + strings.Repeat(" ", MaxPolicySize) + `]}`, "at most 16384 are allowed"},
		{"fail/invalid-utf8", "{\"version\":\"1.0.0\xff\"}", "not valid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.doc))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse = %v; want a policy", err)
				}
				roundTrip(t, p)
				return
			}
			if err == nil || !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Parse = %v; want ErrInvalidPolicy containing %q", err, tc.wantErr)
			}
		})
	}
}

// roundTrip checks that the canonical encoding parses to the same policy.
func roundTrip(t *testing.T, p *Policy) {
	t.Helper()
	b, err := p.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	q, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse(MarshalJSON) = %v for %s", err, b)
	}
	if !reflect.DeepEqual(p, q) {
		t.Fatalf("round trip changed the policy:\n%+v\n%+v", p, q)
	}
}

func claimsOf(t *testing.T, doc string) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(doc))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestEvaluate(t *testing.T) {
	cvm := `{"x-ms-isolation-tee":{"x-ms-attestation-type":"sevsnpvm","x-ms-compliance-status":"azure-compliant-cvm"}}`
	ops := `{"version":"1.0.0","anyOf":[{"authority":"https://a.example","allOf":[
		{"claim":"svn","greaterOrEquals":3},{"claim":"svn","less":10},{"claim":"debug","equals":false},
		{"claim":"type","notEquals":"sim"},{"claim":"nonce","exists":false}]}]}`
	anyPolicy := `{"version":"1.0.2","anyOf":[
		{"authority":"https://other.example","allOf":[{"claim":"m","exists":true}]},
		{"authority":"https://a.example","anyOf":[{"claim":"m","equals":"aa"},{"claim":"m","equals":"bb"}]}]}`
	tests := []struct {
		name, policy, iss, claims string
		want                      bool
		reason                    string
	}{
		{"ok/cvm", cvmPolicy, maa, cvm, true, "hold"},
		{"ok/cvm-issuer-other-case-and-slash", cvmPolicy, "https://SHAREDEUS.eus.attest.azure.net/", cvm, true, "hold"},
		{"ok/flat-dotted-claim", cvmPolicy, maa, `{"x-ms-isolation-tee.x-ms-attestation-type":"sevsnpvm","x-ms-isolation-tee.x-ms-compliance-status":"azure-compliant-cvm"}`, true, "hold"},
		{"ok/operators", ops, "https://a.example", `{"svn":3,"debug":false,"type":"sevsnpvm"}`, true, "hold"},
		{"ok/operators-float-claim", ops, "https://a.example", `{"svn":9.5,"debug":false,"type":"sevsnpvm"}`, true, "hold"},
		{"ok/anyOf-second-value", anyPolicy, "https://a.example", `{"m":"bb"}`, true, "hold"},

		{"fail/other-issuer", cvmPolicy, "https://evil.example", cvm, false, "no authority"},
		{"fail/issuer-prefix", cvmPolicy, maa + ".evil.example", cvm, false, "no authority"},
		{"fail/empty-issuer", cvmPolicy, "", cvm, false, "no authority"},
		{"fail/wrong-type", cvmPolicy, maa, `{"x-ms-isolation-tee":{"x-ms-attestation-type":"sim","x-ms-compliance-status":"azure-compliant-cvm"}}`, false, `"x-ms-isolation-tee.x-ms-attestation-type" equals`},
		{"fail/claim-missing", cvmPolicy, maa, `{"x-ms-isolation-tee":{"x-ms-attestation-type":"sevsnpvm"}}`, false, "x-ms-compliance-status"},
		{"fail/claim-not-object", cvmPolicy, maa, `{"x-ms-isolation-tee":"sevsnpvm"}`, false, "not satisfied"},
		{"fail/case-differs", cvmPolicy, maa, `{"x-ms-isolation-tee":{"x-ms-attestation-type":"SEVSNPVM","x-ms-compliance-status":"azure-compliant-cvm"}}`, false, "not satisfied"},
		{"fail/svn-too-low", ops, "https://a.example", `{"svn":2,"debug":false,"type":"sevsnpvm"}`, false, `"svn" greaterOrEquals`},
		{"fail/svn-too-high", ops, "https://a.example", `{"svn":10,"debug":false,"type":"sevsnpvm"}`, false, `"svn" less`},
		{"fail/svn-string", ops, "https://a.example", `{"svn":"5","debug":false,"type":"sevsnpvm"}`, false, `"svn" greaterOrEquals`},
		{"fail/debug-true", ops, "https://a.example", `{"svn":3,"debug":true,"type":"sevsnpvm"}`, false, `"debug" equals`},
		{"fail/debug-string", ops, "https://a.example", `{"svn":3,"debug":"false","type":"sevsnpvm"}`, false, `"debug" equals`},
		{"fail/notEquals-missing-claim", ops, "https://a.example", `{"svn":3,"debug":false}`, false, `"type" notEquals`},
		{"fail/notEquals-same", ops, "https://a.example", `{"svn":3,"debug":false,"type":"sim"}`, false, `"type" notEquals`},
		{"fail/exists-false-present", ops, "https://a.example", `{"svn":3,"debug":false,"type":"x","nonce":"n"}`, false, `"nonce" exists`},
		{"fail/anyOf-none", anyPolicy, "https://a.example", `{"m":"cc"}`, false, "none of"},
		{"fail/other-authority-conditions-do-not-count", anyPolicy, "https://a.example", `{"n":"x"}`, false, "none of"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.policy))
			if err != nil {
				t.Fatal(err)
			}
			d := p.Evaluate(tc.iss, claimsOf(t, tc.claims))
			if d.Allowed != tc.want || !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("Evaluate(%q, %s) = %+v; want allowed=%v, reason containing %q", tc.iss, tc.claims, d, tc.want, tc.reason)
			}
			if d.Allowed != (d.Authority != "") {
				t.Errorf("Evaluate: Allowed=%v but Authority=%q", d.Allowed, d.Authority)
			}
		})
	}
}

func TestReasonHasNoClaimValues(t *testing.T) {
	p, err := Parse([]byte(cvmPolicy))
	if err != nil {
		t.Fatal(err)
	}
	d := p.Evaluate(maa, claimsOf(t, `{"x-ms-isolation-tee":{"x-ms-attestation-type":"canary-7f3a","x-ms-compliance-status":"x"}}`))
	if d.Allowed || strings.Contains(d.Reason, "canary-7f3a") {
		t.Errorf("Evaluate reason %q must not echo claim values", d.Reason)
	}
}
