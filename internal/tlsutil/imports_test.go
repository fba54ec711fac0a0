package tlsutil

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestImports enforces the package doc's dependency rules on the non-test sources.
func TestImports(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	forbidden := []struct{ prefix, why string }{
		{"github.com/coffer-kms/coffer/", "tlsutil is a leaf package: it must not import other Coffer packages"},
		{"net/http", "tlsutil builds TLS configurations; serving HTTP belongs to internal/server"},
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
			for _, fb := range forbidden {
				if path == strings.TrimSuffix(fb.prefix, "/") || strings.HasPrefix(path, fb.prefix) {
					t.Errorf("%s imports %q: %s", name, path, fb.why)
				}
			}
		}
	}
}
