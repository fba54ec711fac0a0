// Package testfs mounts small real filesystems for tests that must see a full disk or a
// failing device: a tmpfs whose writes fail with ENOSPC; an ext4 file system on a loop
// device over a tmpfs, whose writes succeed into the page cache and whose fsync then fails,
// as on thin-provisioned storage (Thin); the same file system mounted errors=remount-ro,
// which a test turns read-only under open files (Thin.ForceReadOnly); and an ext4 file
// system whose device fails every write with EIO until the test heals it (Flaky). Mounting
// needs root; without it, or without mount, losetup, mkfs.ext4 or chattr, the calling test
// is skipped with the reason.
//
// Only tests import this package.
package testfs

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Tmpfs mounts a tmpfs of size (mount's syntax: "64k", "2m") on a new temporary directory,
// unmounts it at cleanup and returns the directory. It skips t if it cannot mount.
func Tmpfs(t testing.TB, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting a small tmpfs to fill needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot mount a tmpfs here (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { umount(t, dir) })
	return dir
}

// Fill writes a file of n bytes at path: space a test gives back later by removing it.
func Fill(t testing.TB, path string, n int) {
	t.Helper()
	if err := os.WriteFile(path, make([]byte, n), 0o600); err != nil {
		t.Fatalf("fill %s: %v", path, err)
	}
}

// FillRest writes path until the file system is full, to the last byte; called again on the
// same path it appends whatever space has come free since (a failed append the code under
// test made gives its space back, which a smaller write could then take).
func FillRest(t testing.TB, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", path, err)
			}
			break
		}
	}
	for _, n := range []int{1024, 256, 64, 16, 1} {
		for {
			if _, err := f.Write(chunk[:n]); err != nil {
				break
			}
		}
	}
}

// Thin is an ext4 file system (no journal) in a sparse image on a tmpfs of a smaller size,
// mounted through a loop device: once the tmpfs is full, writes still land in the page
// cache but their write-back fails, so fsync and fdatasync fail with ENOSPC, and the
// kernel may then drop the pages it could not write.
type Thin struct {
	// Dir is where the ext4 file system is mounted.
	Dir string
	// Backing is the tmpfs that holds the image: a file written there takes space from the
	// "device", and removing it gives the space back.
	Backing string

	t      testing.TB
	loop   string
	errors string // the errors= mount option
}

// NewThin mounts a Thin file system of imageSize on a tmpfs of backingSize (mount's syntax)
// and tears it down at cleanup. It skips t if any tool or the loop device is missing.
func NewThin(t testing.TB, backingSize, imageSize string) *Thin {
	t.Helper()
	back := Tmpfs(t, backingSize)
	return newExt4(t, back, filepath.Join(back, "ext4.img"), imageSize, "continue")
}

// NewFragile is NewThin mounted errors=remount-ro, as many distributions mount ext4: after
// ForceReadOnly every write to it fails with EROFS, also through files open for writing.
func NewFragile(t testing.TB, backingSize, imageSize string) *Thin {
	t.Helper()
	back := Tmpfs(t, backingSize)
	return newExt4(t, back, filepath.Join(back, "ext4.img"), imageSize, "remount-ro")
}

// newExt4 makes an ext4 file system (no journal) in a sparse image of size at img, mounts it
// through a loop device with errors=onError, and tears it down at cleanup.
func newExt4(t testing.TB, back, img, size, onError string) *Thin {
	t.Helper()
	for _, tool := range []string{"losetup", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s is not installed", tool)
		}
	}
	run(t, "truncate", "-s", size, img)
	run(t, "mkfs.ext4", "-q", "-O", "^has_journal", "-E", "lazy_itable_init=0", img)
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("skipped: no loop device here (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	th := &Thin{Dir: t.TempDir(), Backing: back, t: t, loop: strings.TrimSpace(string(out)), errors: onError}
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "--detach", th.loop).CombinedOutput(); err != nil {
			t.Errorf("losetup --detach %s: %v: %s", th.loop, err, out)
		}
	})
	th.mount()
	t.Cleanup(func() { umount(t, th.Dir) })
	return th
}

func (th *Thin) mount() {
	th.t.Helper()
	run(th.t, "mount", "-t", "ext4", "-o", "errors="+th.errors, th.loop, th.Dir)
}

// ForceReadOnly reports an error to the ext4 driver (its trigger_fs_error in sysfs), as a
// corrupt block found on disk would: a file system mounted by NewFragile then fails every
// write and sync with EROFS, files open for writing included. (A plain `mount -o
// remount,ro` is refused, "mount point is busy", while any file is open for writing.) Linux
// 6.x keeps it read-only ("emergency_ro") until it is unmounted: Remount clears it. It
// skips t if the kernel has no trigger_fs_error.
func (th *Thin) ForceReadOnly() {
	th.t.Helper()
	if th.errors != "remount-ro" {
		th.t.Fatalf("ForceReadOnly on %s, mounted errors=%s; make it with NewFragile", th.Dir, th.errors)
	}
	ctl := filepath.Join("/sys/fs/ext4", filepath.Base(th.loop), "trigger_fs_error")
	if _, err := os.Stat(ctl); err != nil {
		th.t.Skipf("skipped: this kernel cannot report an ext4 error on demand: %v", err)
	}
	if err := os.WriteFile(ctl, []byte("testfs: ForceReadOnly\n"), 0); err != nil {
		th.t.Fatalf("report an error to ext4 on %s: %v", th.loop, err)
	}
}

// Remount unmounts and mounts the file system again, which drops its page cache: files then
// read what really reached the device, as after a power cut. Nothing may hold files open.
func (th *Thin) Remount() {
	th.t.Helper()
	run(th.t, "umount", th.Dir)
	th.mount()
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
}

func umount(t testing.TB, dir string) {
	if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
		t.Errorf("umount %s: %v: %s", dir, err, out)
	}
}

// Flaky is an ext4 file system whose device fails every write with EIO while Fail is in
// effect, and works again after Heal, as a disk with a bad path or a network volume that
// comes back. Its image lives in a Thin file system; Fail makes the image file immutable
// there, so that the loop device's writes into it fail and the block layer reports EIO:
// writes into the page cache still succeed, and fsync and fdatasync fail with EIO.
type Flaky struct {
	// Dir is where the flaky file system is mounted.
	Dir string

	inner *Thin
	img   string
}

// NewFlaky mounts a Flaky file system of size (mount's syntax) and tears it down at cleanup.
// It skips t if a tool or a loop device is missing.
func NewFlaky(t testing.TB, size string) *Flaky {
	t.Helper()
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Skip("skipped: chattr is not installed")
	}
	outer := NewThin(t, "128m", "256m") // room for the inner image and its metadata
	img := filepath.Join(outer.Dir, "flaky.img")
	inner := newExt4(t, outer.Dir, img, size, "continue")
	f := &Flaky{Dir: inner.Dir, inner: inner, img: img}
	t.Cleanup(f.Heal) // runs before the unmounts, which were registered first
	return f
}

// Fail makes every later write-back to the device fail with EIO.
func (f *Flaky) Fail() { run(f.inner.t, "chattr", "+i", f.img) }

// Heal makes the device take writes again.
func (f *Flaky) Heal() { run(f.inner.t, "chattr", "-i", f.img) }

// Remount unmounts and mounts the file system again, dropping its page cache (Thin.Remount).
func (f *Flaky) Remount() { f.inner.Remount() }
