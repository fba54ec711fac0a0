#!/usr/bin/env bash
# Runs govulncheck offline against a vulnerability database built from the Go module
# golang.org/x/vulndb (vuln.go.dev is not reachable from CI; the module proxy is). See
# SECURITY-NOTES F12. Exit status is govulncheck's: non-zero when reachable code calls a
# known-vulnerable function of a dependency or of the standard library.
set -euo pipefail
cd "$(dirname "$0")/.."
VULNDB_VERSION=${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}
GOVULNCHECK_VERSION=${GOVULNCHECK_VERSION:-v1.9.0}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dir=$(go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
mkdir -p "$work/repo"
cp -r "$dir/data" "$work/repo/"
chmod -R u+w "$work/repo"
git -C "$work/repo" init -q
git -C "$work/repo" add -A
git -C "$work/repo" -c user.email=ci@coffer.invalid -c user.name=ci commit -qm db
go run "golang.org/x/vulndb/cmd/gendb@$VULNDB_VERSION" -repo "$work/repo" -out "$work/db" 2>/dev/null
go run "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION" -db "file://$work/db" ./...
