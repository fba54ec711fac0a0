package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/coffer-kms/coffer/"

// rule forbids packages matching from (prefix of the path after the module) to import, even
// indirectly when deep is set, any package matching one of to, except the leaves in
// leafOK (standard-library-only packages, each with its own rule).
type rule struct {
	from   string
	to     []string
	deep   bool
	reason string
}

// leafOK are Coffer packages that import only the standard library (their rules below
// check it), so even the packages that may import nothing of Coffer may import them.
var leafOK = map[string]bool{mod + "internal/jsonenc": true, mod + "internal/strictb64": true}

// testOnly are packages that only tests may import (go list's Imports leaves out the test
// files, so any import of them it shows is from a non-test file).
var testOnly = map[string]bool{mod + "internal/crashtest": true, mod + "internal/testfs": true}

var rules = []rule{
	{"internal/storage", []string{mod + "internal/"}, false, "storage is the bottom layer: it imports no other Coffer package (storagetest may import storage)"},
	{"internal/shamir", []string{mod + "internal/", "net/http"}, true, "shamir is a leaf of pure arithmetic"},
	{"internal/keywrap", []string{mod + "internal/", "net/http"}, true, "keywrap is a leaf: AES key-wrap modes over crypto/aes"},
	{"internal/provider/malformed", []string{mod + "internal/", "net/http"}, true, "malformed is a leaf: test ciphertexts from the standard library only"},
	{"internal/azsd", []string{mod + "internal/", "net/http"}, true, "azsd is a leaf: the Azure security-domain format, run by the server and by custodians' CLI"},
	{"internal/byok", []string{"net/http", mod + "internal/server", mod + "internal/keys", mod + "internal/storage", mod + "internal/barrier"}, true, "byok builds blobs on the client: no server-side code"},
	{"internal/barrier", []string{"net/http", mod + "internal/server", mod + "internal/api", mod + "internal/storage/bolt"}, true, "the barrier is domain code: no HTTP, no concrete backend"},
	{"internal/authz", []string{"net/http", mod + "internal/"}, true, "authz is a pure decision over a snapshot"},
	{"internal/audit", []string{"net/http", mod + "internal/"}, true, "audit imports nothing of Coffer (but the jsonenc leaf) and no HTTP"},
	{"internal/jsonenc", []string{"net/http", mod + "internal/"}, true, "jsonenc is a leaf: JSON bytes from the standard library only"},
	{"internal/strictb64", []string{"net/http", mod + "internal/"}, true, "strictb64 is a leaf: the one base64 rule, from the standard library only"},
	{"internal/config", []string{mod + "internal/"}, false, "config stands alone"},
	{"internal/pki", []string{mod + "internal/", "net/http"}, true, "pki is X.509 and PKCS#12 encoding only"},
	{"internal/certificates", []string{"net/http", mod + "internal/api", mod + "internal/server", mod + "internal/storage/bolt"}, true, "certificates is domain code: no HTTP, no concrete backend"},
	{"internal/attest", []string{"net/http", mod + "internal/storage", mod + "internal/server", mod + "internal/api", mod + "internal/barrier"}, false, "attest verifies evidence; the server serves it and the barrier keeps its keys"},
	{"internal/skr", []string{"net/http", mod + "internal/"}, true, "the release policy is pure: parsing and evaluation, no I/O"},
	{"internal/api", []string{mod + "internal/storage/bolt", mod + "internal/storage/mem", mod + "internal/server", mod + "internal/cli"}, true, "the wire layer never picks a concrete backend"},
	{"internal/cli", []string{mod + "internal/barrier", mod + "internal/storage", mod + "internal/shamir"}, false, "the CLI talks to a server over HTTPS, not to storage"},
	{"internal/crashtest", []string{"net/http", mod + "internal/"}, true, "crashtest is a test-only leaf: strace parsing and crash states from the standard library only"},
	{"internal/", []string{"math/rand"}, false, "randomness comes from crypto/rand only (SECURITY-NOTES C7)"},
}

func TestDependencyRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \" \"}}|{{join .Deps \" \"}}", mod+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.SplitN(line, "|", 3)
		if len(parts) != 3 {
			continue
		}
		pkg := strings.TrimPrefix(parts[0], mod)
		if strings.HasSuffix(pkg, "storagetest") || strings.HasPrefix(pkg, "internal/archtest") {
			continue
		}
		for _, imp := range strings.Fields(parts[1]) {
			if testOnly[imp] {
				t.Errorf("%s imports %s: only tests may import it", pkg, imp)
			}
		}
		for _, r := range rules {
			if !strings.HasPrefix(pkg, r.from) {
				continue
			}
			checked++
			imports := strings.Fields(parts[1])
			if r.deep {
				imports = append(imports, strings.Fields(parts[2])...)
			}
			for _, imp := range imports {
				for _, bad := range r.to {
					if imp == bad || (strings.HasSuffix(bad, "/") && strings.HasPrefix(imp, bad)) {
						if strings.HasPrefix(imp, mod+r.from) || (r.from == "internal/storage" && imp == mod+"internal/storage") || leafOK[imp] {
							continue // a package may use its own sub-packages
						}
						t.Errorf("%s imports %s: %s", pkg, imp, r.reason)
					}
				}
			}
		}
	}
	if checked < 8 {
		t.Errorf("only %d package/rule pairs checked: the rules match nothing", checked)
	}
}
