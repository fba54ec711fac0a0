// Package archtest holds no code: its test enforces the dependency rules of
// CONVENTIONS.md (cli → server → api → domain → provider, storage) with `go list`, failing
// with the reason for each forbidden import.
package archtest
