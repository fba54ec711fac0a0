package attest

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzParsePolicy: a tenant writes its attestation policy through the management API. What
// ParsePolicy accepts is normalized once and for all: its JSON parses back to the same
// policy; what it refuses, it refuses with an *Error (a 400).
func FuzzParsePolicy(f *testing.F) {
	m := `"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"`
	for _, s := range []string{
		`{"types":["SEVSNPVM","sim"],"measurements":[` + m + `],"allowDebug":true,"minimumTcb":{"bootloader":3,"tee":0,"snp":8,"microcode":115}}`,
		`{"types":["tdxvm"],"tdx":{"rtmr0":[` + m + `],"allowTcbNotUpToDate":true}}`,
		`{}`, `{"types":["x"]}`, `{"measurements":["AB"]}`, `{"types":[],"types":["sim"]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := ParsePolicy(doc)
		if err != nil {
			var e *Error
			if p != nil || !errors.As(err, &e) {
				t.Fatalf("ParsePolicy = %v, %v; want nil and an *Error", p, err)
			}
			return
		}
		out, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := ParsePolicy(out)
		if err != nil {
			t.Fatalf("ParsePolicy(%s) of its own output = %v", out, err)
		}
		if again, _ := json.Marshal(p2); string(again) != string(out) { // nil and empty lists mean the same
			t.Fatalf("ParsePolicy(%s) = %s; want the same policy", out, again)
		}
	})
}
