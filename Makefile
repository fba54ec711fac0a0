# Coffer — see README.md. Every target works on a fresh Debian machine with Go installed.
GO ?= go
# The standard library of go1.26.8 has known vulnerabilities fixed in go1.26.10 (crypto/x509
# among them, SECURITY-NOTES F12): make builds and tests with go1.26.10, which the go command
# fetches from the module proxy once (about 76 MB). Plain `go` commands use your local Go.
export GOTOOLCHAIN ?= go1.26.10

.PHONY: dev test lint bench build vulncheck fuzz
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

# Every fuzz target in the module, one after the other, for $(FUZZTIME) each: targets are
# found by their `func Fuzz` lines, so a new one runs without editing this file. Not part of
# `make test` (48 targets at 60 s each: about 53 min). A crasher is written to its
# package's testdata/fuzz/<Target>/; the run goes on and fails at the end naming the targets.
FUZZTIME ?= 60s
FUZZFLAGS ?= -parallel 1 -fuzzminimizetime 10s
fuzz:
	@failed=; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
	  for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "== $$(dirname $$f) $$t"; \
	    $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) $$(dirname $$f) || failed="$$failed $$t"; \
	  done; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed"; exit 1; fi
