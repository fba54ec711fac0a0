package pki

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports pins the package's dependencies: the standard library (no net/http at any depth,
// no direct math/rand), golang.org/x/crypto and go-pkcs12 — no other module, no Coffer package.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}|{{.ImportPath}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	direct, err := exec.Command("go", "list", "-f", "{{join .Imports \"\\n\"}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, direct)
	}
	for _, imp := range strings.Fields(string(direct)) {
		if strings.HasPrefix(imp, "math/rand") {
			t.Errorf("pki imports %s: randomness comes from crypto/rand only", imp)
		}
	}
	allowed := []string{"golang.org/x/crypto/", "software.sslmate.com/src/go-pkcs12", "github.com/coffer-kms/coffer/internal/pki"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		nonStd, path, _ := strings.Cut(line, "|")
		if path == "net/http" {
			t.Errorf("pki depends on net/http: it is pure crypto and encoding")
		}
		if nonStd == "" {
			continue
		}
		ok := false
		for _, a := range allowed {
			ok = ok || strings.HasPrefix(nonStd, a)
		}
		if !ok {
			t.Errorf("pki depends on %s: only the standard library, golang.org/x/crypto and go-pkcs12 are allowed", nonStd)
		}
	}
}
