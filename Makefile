# Coffer — see README.md. Every target works on a fresh Debian machine with Go installed.
GO ?= go
# The standard library of go1.26.8 has known vulnerabilities fixed in go1.26.10 (crypto/x509
# among them, SECURITY-NOTES F12): make builds and tests with go1.26.10, which the go command
# fetches from the module proxy once (about 76 MB). Plain `go` commands use your local Go.
export GOTOOLCHAIN ?= go1.26.10

.PHONY: dev test lint bench build vulncheck
build:
	$(GO) build -o bin/coffer ./cmd/coffer

dev:
	$(GO) run ./cmd/coffer server --dev

test:
	$(GO) test -count=1 -timeout 15m ./...

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./internal/barrier/ ./internal/storage/bolt/

# govulncheck against an offline database built from golang.org/x/vulndb (a few minutes).
vulncheck:
	./scripts/vulncheck.sh
