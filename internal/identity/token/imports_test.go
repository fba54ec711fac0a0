package token

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports enforces the package documentation: non-test code imports the standard library
// and, of Coffer's packages, internal/storage and internal/strictb64 only; net/http only in remote.go; never
// math/rand.
func TestImports(t *testing.T) {
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
			first, _, _ := strings.Cut(path, "/")
			switch {
			case path == "github.com/coffer-kms/coffer/internal/storage", path == "github.com/coffer-kms/coffer/internal/strictb64":
			case strings.Contains(first, "."):
				t.Errorf("%s imports %q; package token may import only the standard library, internal/storage and internal/strictb64", name, path)
			case strings.HasPrefix(path, "math/rand"):
				t.Errorf("%s imports %q; use crypto/rand", name, path)
			case strings.HasPrefix(path, "net/http") && name != "remote.go":
				t.Errorf("%s imports %q; only remote.go may", name, path)
			}
		}
	}
}
