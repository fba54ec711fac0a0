package keys

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestImports enforces the package doc's dependency rules on the non-test sources: no
// net/http, no concrete storage backend, no concrete provider.
func TestImports(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	const mod = "github.com/coffer-kms/coffer/internal/"
	allowed := map[string]bool{mod + "provider": true, mod + "storage": true, mod + "tenancy": true, mod + "attrs": true, mod + "records": true, mod + "names": true, mod + "strictb64": true,
		mod + "skr": true} // skr: the pure release-policy grammar (no I/O), like attrs
	fset := token.NewFileSet()
	checked := 0
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			switch {
			case path == "net/http" || strings.HasPrefix(path, "net/http/"):
				t.Errorf("%s imports %q: the keys domain never speaks HTTP; that is internal/api", name, path)
			case strings.HasPrefix(path, mod) && !allowed[path]:
				t.Errorf("%s imports %q: keys uses only the provider, storage and tenancy contracts; the server wires concrete implementations", name, path)
			case path == "math/rand" || strings.HasPrefix(path, "math/rand/"):
				t.Errorf("%s imports %q: randomness comes from crypto/rand only", name, path)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no source files checked")
	}
}
