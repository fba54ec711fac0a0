package mgmt

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestImports enforces the package doc's dependency rule on the non-test sources: the
// management API reaches storage, the barrier and tokens only through the interfaces the
// server wires.
func TestImports(t *testing.T) {
	const mod = "github.com/coffer-kms/coffer/internal/"
	forbidden := []string{"storage", "barrier", "server", "cli", "identity", "idp", "provider", "config"}
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
			for _, bad := range forbidden {
				if path == mod+bad || strings.HasPrefix(path, mod+bad+"/") {
					t.Errorf("%s imports %q: mgmt gets storage, identity and the audit log through interfaces the server wires", name, path)
				}
			}
		}
	}
}
