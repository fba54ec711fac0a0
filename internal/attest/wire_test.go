package attest

import (
	"strings"
	"testing"
)

func TestDecodeRequest(t *testing.T) {
	tests := []struct {
		name, body string
		code, in   string
	}{
		{"ok/minimal", `{"report":"AAEC"}`, "", ""},
		{"ok/padded-base64", `{"report":"AAE=","runtimeData":{"data":"e30=","dataType":"JSON"},"nonce":"n"}`, "", ""},
		{"fail/not-json", `{`, CodeInvalidParameter, "malformed JSON"},
		{"fail/array", `[]`, CodeInvalidParameter, "not an attest request"},
		{"fail/unknown-member", `{"report":"AA","initTimeData":{}}`, CodeInvalidParameter, `unknown member "initTimeData"`},
		{"fail/no-report", `{}`, CodeInvalidParameter, `"report" (sevsnpvm, sim) or "quote" (tdxvm) is required`},
		{"fail/report-and-quote", `{"report":"AA","quote":"AA"}`, CodeInvalidParameter, `one of`},
		{"fail/report-not-base64url", `{"report":"a+b/"}`, CodeInvalidParameter, `"report" uses the standard alphabet`},
		{"fail/report-crlf", `{"report":"AA\r\nEC"}`, CodeInvalidParameter, `"report" contains a character outside`},
		{"fail/report-lf-in-padding", `{"report":"AAE\n="}`, CodeInvalidParameter, `"report" contains a character outside`},
		{"fail/report-non-canonical", `{"report":"AAF"}`, CodeInvalidParameter, `"report" is not canonical`},
		{"fail/report-bad-padding", `{"report":"AAE=="}`, CodeInvalidParameter, `"report" is not padded`},
		{"fail/runtime-data-crlf", `{"report":"AA","runtimeData":{"data":"e3\r\n0","dataType":"JSON"}}`, CodeInvalidParameter, `"runtimeData.data" contains a character outside`},
		{"fail/report-wrong-type", `{"report":5}`, CodeInvalidParameter, "wrong type"},
		{"fail/binary-runtime-data", `{"report":"AA","runtimeData":{"data":"AA","dataType":"Binary"}}`, CodeInvalidParameter, "dataType"},
		{"fail/empty-runtime-data", `{"report":"AA","runtimeData":{"data":"","dataType":"JSON"}}`, CodeInvalidParameter, "empty"},
		{"fail/trailing-data", `{"report":"AA"} {}`, CodeInvalidParameter, "unexpected data"},
		{"fail/long-nonce", `{"report":"AA","nonce":"` + strings.Repeat("n", MaxNonce+1) + `"}`, CodeInvalidParameter, "nonce"},
		{"fail/huge-report", `{"report":"` + strings.Repeat("A", MaxReport*4/3+8) + `"}`, CodeInvalidParameter, "larger than"},
		{"fail/huge-body", `{"report":"` + strings.Repeat("A", MaxBody) + `"}`, CodeInvalidParameter, "request body is larger"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := DecodeRequest([]byte(tc.body))
			if tc.code == "" {
				if err != nil || ev == nil || len(ev.Report) == 0 {
					t.Fatalf("DecodeRequest = %v, %v; want evidence", ev, err)
				}
				return
			}
			wantCode(t, err, tc.code, tc.in)
		})
	}
}

func TestParsePolicy(t *testing.T) {
	m := strings.Repeat("AB", 48)
	p, err := ParsePolicy([]byte(`{"types":["SevSnpVm","sim"],"measurements":["` + m + `"],"allowDebug":false,"minimumTcb":{"bootloader":1,"tee":0,"snp":8,"microcode":115}}`))
	if err != nil {
		t.Fatalf("ParsePolicy = %v", err)
	}
	if p.Types[0] != TypeSEVSNP || p.Measurements[0] != strings.ToLower(m) || p.MinimumTCB.Microcode != 115 || p.Hash() == "" {
		t.Errorf("policy = %+v", p)
	}
	for _, bad := range []struct{ doc, in string }{
		{`{"types":["sgx"]}`, "not an attestation type"},
		{`{"types":["sgx"]}`, "not an attestation type"},
		{`{"measurements":["abcd"]}`, "96 hex digits"},
		{`{"allowdebug":1}`, "wrong type"},
		{`{"minimumTcb":{"snp":256}}`, "wrong type"},
		{`{"extra":true}`, "unknown member"},
		{`{"measurements":[` + strings.Repeat(`"`+m+`",`, MaxMeasurements) + `"` + m + `"]}`, "at most"},
	} {
		if _, err := ParsePolicy([]byte(bad.doc)); err == nil {
			t.Errorf("ParsePolicy(%.60s) = nil; want an error containing %q", bad.doc, bad.in)
		} else {
			wantCode(t, err, CodeInvalidPolicy, bad.in)
		}
	}
}
