package skr

import "testing"

// FuzzReleasePolicy feeds arbitrary bytes to Parse. A document that parses must re-encode to
// a canonical form that parses to the same policy, and evaluating it must not panic.
func FuzzReleasePolicy(f *testing.F) {
	f.Add([]byte(cvmPolicy))
	f.Add([]byte(`{"version":"1.0.2","anyOf":[{"authority":"https://a.example","anyOf":[{"allOf":[{"claim":"x","equals":true},{"claim":"n","lessOrEquals":3.5}]},{"claim":"z","exists":false}]}]}`))
	f.Add([]byte(`{"Version":"1.0.0","ANYOF":[{"authority":"https://a.example:8443/p","allOf":[{"claim":"a.b.c","notEquals":"v"}]}]}`))
	f.Add([]byte(`{"version":"1.0.0","version":"1.0.0"}`))
	f.Add([]byte(`[1e400]`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := Parse(doc)
		if err != nil {
			if p != nil {
				t.Fatalf("Parse returned a policy and an error")
			}
			return
		}
		roundTrip(t, p)
		for _, a := range p.Authorities {
			p.Evaluate(a.URL, map[string]any{"a": map[string]any{"b": "c"}, "x": true})
		}
	})
}
