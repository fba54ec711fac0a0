//go:build !unix

package audit

import "os"

// lockFile is a no-op where flock is unavailable: run one writer per file.
func lockFile(*os.File) error { return nil }

// syncDir is a no-op where directories cannot be fsynced.
func syncDir(string) error { return nil }
