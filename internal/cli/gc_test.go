package cli

import (
	"runtime/debug"
	"testing"
)

// TestTuneGC: the server raises the GC target unless GOGC is set, in which case the
// operator's value stands.
func TestTuneGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	t.Setenv("GOGC", "")
	tuneGC()
	if got := debug.SetGCPercent(100); got != serverGCPercent {
		t.Errorf("without GOGC the GC target is %d; want %d", got, serverGCPercent)
	}
	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150) // what the runtime took from GOGC at start
	tuneGC()
	if got := debug.SetGCPercent(100); got != 150 {
		t.Errorf("with GOGC=150 the GC target is %d; want the operator's 150", got)
	}
}
