package cli

import (
	"os"
	"runtime/debug"
)

// serverGCPercent is the server's garbage collection target unless GOGC says otherwise. The
// server's live heap is small (tens of MiB) and every request allocates, so Go's default
// (100) collects very often: with 400, a key or secret read over HTTPS cost ~15% less server
// CPU on the 2-core VM (BENCHMARKS.md), for a heap that peaks at about five times the live
// data instead of twice. GOMEMLIMIT, if set, still caps it.
const serverGCPercent = 400

// tuneGC applies serverGCPercent unless the operator set GOGC.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serverGCPercent)
	}
}
