package audit

import (
	"os"
	"syscall"
)

// datasync makes f's data durable without its timestamps (fdatasync): enough for bytes
// written over space that is already allocated and synced (prealloc.go).
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}
