//go:build !linux

package bolt

// dropCache is Linux-only (see cache_linux.go); elsewhere a failed commit leaves the cache.
func (b *Backend) dropCache() error { return nil }

// unlockFile is Linux-only (see cache_linux.go): elsewhere a wedged database stays locked
// until the process exits.
func (b *Backend) unlockFile() error { return nil }

// fileSize returns the size of the open file.
func (b *Backend) fileSize() (int64, error) {
	fi, err := b.file.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
