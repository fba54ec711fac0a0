// Package testfs mounts small real filesystems for tests that must see a full disk or a
// failing fsync: a tmpfs whose writes fail with ENOSPC, and an ext4 file system on a loop
// device over a tmpfs, whose writes succeed into the page cache and whose fsync then fails,
// as on thin-provisioned storage. Mounting needs root; without it, or without mount,
// losetup and mkfs.ext4, the calling test is skipped with the reason.
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

	t    testing.TB
	loop string
}

// NewThin mounts a Thin file system of imageSize on a tmpfs of backingSize (mount's syntax)
// and tears it down at cleanup. It skips t if any tool or the loop device is missing.
func NewThin(t testing.TB, backingSize, imageSize string) *Thin {
	t.Helper()
	for _, tool := range []string{"losetup", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s is not installed", tool)
		}
	}
	back := Tmpfs(t, backingSize)
	img := filepath.Join(back, "ext4.img")
	run(t, "truncate", "-s", imageSize, img)
	run(t, "mkfs.ext4", "-q", "-O", "^has_journal", "-E", "lazy_itable_init=0", img)
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("skipped: no loop device here (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	th := &Thin{Dir: t.TempDir(), Backing: back, t: t, loop: strings.TrimSpace(string(out))}
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
	run(th.t, "mount", "-t", "ext4", "-o", "errors=continue", th.loop, th.Dir)
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
