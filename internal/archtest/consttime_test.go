package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// secretName matches identifiers that hold secrets or authenticators (SECURITY-NOTES C6).
var secretName = regexp.MustCompile(`(?i)secret|token|mac|tag|password|share|digest`)

// TestSecretsComparedInConstantTime forbids ==, != , bytes.Equal and strings.EqualFold on
// values whose names say they are secrets, outside tests: those comparisons must use
// crypto/subtle or hmac.Equal. Comparisons with a literal, nil or len(...) are fine (they leak
// only emptiness or length, which is public).
func TestSecretsComparedInConstantTime(t *testing.T) {
	root := filepath.Join("..")
	fset := token.NewFileSet()
	checked := 0
	err := filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.Contains(path, "archtest") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			switch e := n.(type) {
			case *ast.BinaryExpr:
				if (e.Op == token.EQL || e.Op == token.NEQ) && (secretOperand(e.X) || secretOperand(e.Y)) && !public(e.X) && !public(e.Y) {
					t.Errorf("%s: %s compares a secret with %s; use subtle.ConstantTimeCompare or hmac.Equal", fset.Position(e.Pos()), render(e), e.Op)
				}
			case *ast.CallExpr:
				if sel, ok := e.Fun.(*ast.SelectorExpr); ok {
					if pkg, ok := sel.X.(*ast.Ident); ok && ((pkg.Name == "bytes" && sel.Sel.Name == "Equal") || (pkg.Name == "strings" && sel.Sel.Name == "EqualFold")) {
						for _, a := range e.Args {
							if secretOperand(a) {
								t.Errorf("%s: %s.%s on a secret; use subtle.ConstantTimeCompare or hmac.Equal", fset.Position(e.Pos()), pkg.Name, sel.Sel.Name)
							}
						}
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("only %d files checked", checked)
	}
}

// secretOperand reports whether an expression names a secret-like value (the last name in a
// selector chain, or an identifier; not a function call's result such as len(secret)).
func secretOperand(e ast.Expr) bool {
	switch v := e.(type) {
	case *ast.Ident:
		return secretName.MatchString(v.Name)
	case *ast.SelectorExpr:
		return secretName.MatchString(v.Sel.Name)
	case *ast.IndexExpr:
		return secretOperand(v.X)
	}
	return false
}

// public reports operands whose comparison reveals nothing secret: literals, nil, constants
// in upper case, len(...) and other calls.
func public(e ast.Expr) bool {
	switch v := e.(type) {
	case *ast.BasicLit:
		return true
	case *ast.Ident:
		return v.Name == "nil" || v.Name == "true" || v.Name == "false" || (len(v.Name) > 0 && v.Name[0] >= 'A' && v.Name[0] <= 'Z')
	case *ast.CallExpr:
		return true
	case *ast.SelectorExpr:
		// Package-level constants and sentinel values (token.KindX, tenancy.ErrNotFound).
		if x, ok := v.X.(*ast.Ident); ok && len(v.Sel.Name) > 0 && v.Sel.Name[0] >= 'A' && v.Sel.Name[0] <= 'Z' && x.Name != "" && x.Name[0] >= 'a' && x.Name[0] <= 'z' && x.Obj == nil {
			return true
		}
	}
	return false
}

func render(e *ast.BinaryExpr) string {
	name := func(x ast.Expr) string {
		switch v := x.(type) {
		case *ast.Ident:
			return v.Name
		case *ast.SelectorExpr:
			return "…." + v.Sel.Name
		}
		return "expr"
	}
	return name(e.X) + " " + e.Op.String() + " " + name(e.Y)
}
