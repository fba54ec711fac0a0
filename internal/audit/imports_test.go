package audit

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestImports enforces the package doc's dependency rules on the non-test sources: standard
// library only (and internal/jsonenc), no net/http, no other Coffer package.
func TestImports(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			switch {
			case path == "github.com/coffer-kms/coffer/internal/jsonenc": // standard library only
			case strings.HasPrefix(path, "github.com/coffer-kms/coffer/"):
				t.Errorf("%s imports %q: audit is a leaf; the server wires it, it imports no Coffer package", name, path)
			case path == "net/http" || strings.HasPrefix(path, "net/http/"):
				t.Errorf("%s imports %q: audit builds and checks records; HTTP belongs to internal/api", name, path)
			case strings.Contains(strings.SplitN(path, "/", 2)[0], "."):
				t.Errorf("%s imports %q: audit uses only the standard library", name, path)
			}
		}
	}
}
