package names

import (
	"regexp"
	"strings"
	"testing"
)

// The regular expressions the checks replace; every case below must agree with them.
var (
	objectRE  = regexp.MustCompile(`^[0-9a-zA-Z-]{1,127}$`)
	versionRE = regexp.MustCompile(`^[0-9a-f]{32}$`)
	segmentRE = regexp.MustCompile(`^[0-9a-zA-Z][0-9a-zA-Z._-]{0,63}$`)
	storeRE   = regexp.MustCompile(`^[a-zA-Z]([0-9a-zA-Z-]{0,22}[0-9a-zA-Z])?$`)
)

var cases = []string{
	"", "a", "-", "A-z-0", "key1", "has space", "dot.ted", "under_score", "ü", "a\x00b", "a\n",
	strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 65),
	strings.Repeat("b", 127), strings.Repeat("b", 128),
	"0123456789abcdef0123456789abcdef", "0123456789ABCDEF0123456789abcdef",
	"0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcdefa", "g123456789abcdef0123456789abcdef",
	".lead", "_lead", "-lead", "v", "v1", "1v", "v-", "v-1", "dev", strings.Repeat("v", 24), strings.Repeat("v", 25), "a--b", "00000000-0000-4000-8000-00000000c0ff", "t.e_n-a9",
}

func check(t *testing.T, s string) {
	t.Helper()
	if got, want := Object(s), objectRE.MatchString(s); got != want {
		t.Errorf("Object(%q) = %v; the expression says %v", s, got, want)
	}
	if got, want := Version(s), versionRE.MatchString(s); got != want {
		t.Errorf("Version(%q) = %v; the expression says %v", s, got, want)
	}
	if got, want := Store(s), storeRE.MatchString(s); got != want {
		t.Errorf("Store(%q) = %v; the expression says %v", s, got, want)
	}
	if got, want := Segment(s), segmentRE.MatchString(s); got != want {
		t.Errorf("Segment(%q) = %v; the expression says %v", s, got, want)
	}
}

func TestAgreesWithExpressions(t *testing.T) {
	for _, s := range cases {
		check(t, s)
	}
	// Every single byte, alone and inside an otherwise valid name.
	for c := 0; c < 256; c++ {
		b := string([]byte{byte(c)})
		check(t, b)
		check(t, "a"+b+"z")
		check(t, "0123456789abcdef0123456789abcde"+b)
	}
}

func FuzzAgreesWithExpressions(f *testing.F) {
	for _, s := range cases {
		f.Add(s)
	}
	f.Fuzz(check)
}

func BenchmarkObject(b *testing.B) {
	for range b.N {
		Object("a-reasonable-key-name-01")
	}
}
