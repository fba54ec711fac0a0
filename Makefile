# Coffer — see README.md. Every target works on a fresh Debian machine with Go installed.
GO ?= go

.PHONY: dev test lint bench build
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
