package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestPoolTokensSetting(t *testing.T) {
	lib := filepath.Join(t.TempDir(), "libtoken.so")
	if err := os.WriteFile(lib, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	token := []string{"--dev", "--pkcs11-library", lib, "--pkcs11-token-label", "coffer", "--pkcs11-pin-file", "/run/pin"}
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		want  []PoolToken
		wantE []string // substrings of the Validate error; nil for none
	}{
		{"ok/none", token, nil, nil, nil},
		{"ok/two-pools", append(token, "--pkcs11-pool-tokens", " PoolA=tok-a, poolb=tok b ,"), nil,
			[]PoolToken{{"poola", "tok-a"}, {"poolb", "tok b"}}, nil},
		{"ok/env", token, map[string]string{"COFFER_PKCS11_POOL_TOKENS": "poola=tok-a"}, []PoolToken{{"poola", "tok-a"}}, nil},
		{"fail/no-library", []string{"--dev", "--pkcs11-pool-tokens", "poola=tok-a"}, nil,
			[]PoolToken{{"poola", "tok-a"}}, []string{`setting "pkcs11-pool-tokens": needs the PKCS#11 library`}},
		{"fail/every-problem", append(token, "--pkcs11-pool-tokens", "1pool=a,poola,poolb=,poolc=tok-c,POOLC=tok-d,poold=tok-c,poole=coffer,managedhsm=m,poolf="+strings.Repeat("x", 33)), nil, nil, []string{
			`"1pool" is not a managed HSM pool name`,
			`pool "poola": the token label must be 1 to 32 bytes`,
			`pool "poolb": the token label must be 1 to 32 bytes`,
			`pool "poolc" is given twice`,
			`token "tok-c" is given to two pools`,
			`pool "poole": token "coffer" is the default token`,
			`"managedhsm" is not a managed HSM pool name`,
			`pool "poolf": the token label must be 1 to 32 bytes`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.args, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != nil && !reflect.DeepEqual(c.PKCS11PoolTokens, tt.want) {
				t.Errorf("PKCS11PoolTokens = %v; want %v", c.PKCS11PoolTokens, tt.want)
			}
			err = c.Validate()
			if tt.wantE == nil && err != nil {
				t.Errorf("Validate() = %v; want nil", err)
			}
			if tt.wantE != nil && err == nil {
				t.Fatalf("Validate() = nil; want %q", tt.wantE)
			}
			for _, w := range tt.wantE {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v\nwant it to contain %s", err, w)
				}
			}
		})
	}
}
