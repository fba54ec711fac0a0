//go:build !linux

package audit

import "os"

// datasync makes f's data durable; outside Linux it is a full fsync.
func datasync(f *os.File) error { return f.Sync() }
