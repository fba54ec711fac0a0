package tlsutil

import (
	"fmt"
	"os"
	"path/filepath"
)

// writeFileAtomic replaces path with data: it writes a temporary file in the same directory
// with mode perm, fsyncs it, renames it over path and fsyncs the directory, so that after a
// crash path holds either its old content or data, never a mix. Errors name path.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("tlsutil: write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("tlsutil: write %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("tlsutil: write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("tlsutil: write %s: fsync: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("tlsutil: write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("tlsutil: write %s: %w", path, err)
	}
	if err = syncDir(dir); err != nil {
		return fmt.Errorf("tlsutil: write %s: fsync directory: %w", path, err)
	}
	return nil
}

// syncDir fsyncs a directory so that a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir) // #nosec G304 -- the directory of a file this package just wrote
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
