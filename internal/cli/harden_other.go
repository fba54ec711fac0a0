//go:build !linux

package cli

// hardenProcess is a no-op where the Linux controls do not exist.
func hardenProcess() {}
