package bolt

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// dropCache runs after every failed commit. If the commit's write-back failed (fdatasync
// answered EIO, or ENOSPC on thin-provisioned storage), Linux keeps the pages it could not
// write in the page cache, marked clean, and bbolt, having rolled back, reuses those page ids.
// On ext4 a later commit that rewrites such a page (a block first allocated by the failed
// write-back) syncs without error, yet the page reads back as zeros once the cache is gone
// (after a remount or a reboot): the committed tree points at a page that is not there
// (TestFailedSyncThenCommitsSurviveCacheDrop). Dropping the file's clean cached pages makes
// the kernel read those pages, and the state of their blocks, back from the device before
// they are reused. Committed pages are on the device already (their commits synced); the
// pages bbolt's mmap holds stay cached, and those are committed ones, which a commit never
// overwrites.
func (b *Backend) dropCache() error {
	// The file bbolt has open, not the path's: the path may name another file by now.
	_ = b.file.Sync() // what is still dirty cannot be dropped; its error was bbolt's to report
	raw, err := b.file.SyscallConn()
	if err == nil {
		cerr := raw.Control(func(fd uintptr) { err = unix.Fadvise(int(fd), 0, 0, unix.FADV_DONTNEED) })
		err = errors.Join(cerr, err)
	}
	if err != nil {
		return fmt.Errorf("drop the page cache after a failed commit: %w", err)
	}
	return nil
}

// unlockFile releases bbolt's flock on the open file. Closing the file does not release it
// while bbolt's memory map still refers to the file, which it does when bbolt is wedged
// (fault.go) and cannot be closed.
func (b *Backend) unlockFile() error {
	raw, err := b.file.SyscallConn()
	if err == nil {
		cerr := raw.Control(func(fd uintptr) { err = unix.Flock(int(fd), unix.LOCK_UN) })
		err = errors.Join(cerr, err)
	}
	return err
}

// fileSize returns the size of the open file. It runs before every read, so it calls fstat
// on the descriptor: os.File.Stat allocates.
func (b *Backend) fileSize() (int64, error) {
	var st unix.Stat_t
	err := unix.Fstat(int(b.fd), &st)
	return st.Size, err
}
