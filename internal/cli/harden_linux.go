package cli

import "golang.org/x/sys/unix"

// hardenProcess keeps key material out of core dumps: no core files, not dumpable.
func hardenProcess() {
	_ = unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0})
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}
