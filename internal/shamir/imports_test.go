package shamir

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports enforces the package documentation: the non-test code imports only these
// standard-library packages, so no other Coffer package, no math/rand and no third-party code.
func TestImports(t *testing.T) {
	allowed := map[string]bool{
		"crypto/rand": true, "crypto/sha256": true, "crypto/subtle": true, "encoding/base64": true,
		"errors": true, "fmt": true, "io": true, "strings": true, "unicode": true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !allowed[path] {
				t.Errorf("%s imports %q; package shamir may import only %v", name, path, keys(allowed))
			}
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
