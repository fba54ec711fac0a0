// Command dudect measures whether Coffer's secret-dependent code paths run in time that
// depends on their secret (SECURITY-NOTES C1, C2, C6 and §4 "oracles & timing"), with the
// method of dudect (Reparaz, Balasch, Verbauwhede, "Dude, is my code constant time?",
// DATE 2017): two classes of inputs interleaved at random, each call timed in process,
// the first batch used only to set outlier-cropping thresholds at 100 percentiles, and a
// Welch t-test per crop plus an uncropped and a second-order test. The figure to hold is
// |t| < 4.5 on the largest of them.
//
//	go run ./tools/dudect                      # every target, 10^6 measurements each
//	go run ./tools/dudect -n 200000 rsa1_5     # one target, fewer measurements
//	go run ./tools/dudect -repeat 3 root-token # the spread over three runs
//	go run ./tools/dudect -list
//
// Each target calls the function the API calls (keys.Service.Decrypt for the RSA paths,
// tenancy.Store.VerifySecret for client secrets, barrier.Manager.CheckRootToken, ...), in
// this process, on real components over in-memory storage. Timings are wall-clock
// nanoseconds of one call; run on an idle machine, and read a single |t| ≥ 4.5 as "repeat
// it" before reading it as a leak. The 4.5σ column is the difference between the classes'
// mean call times that would have given the uncropped test |t| = 4.5; the cropped tests
// see shifts of the bulk of the distribution that are smaller still. This is a measurement tool, not a test: go test never
// runs it.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"time"
)

// target is one measured function with its two classes of inputs.
type target struct {
	name string
	what string // what class 0 and class 1 are
	// setup builds the target and returns input, which returns an input of a class (chosen
	// before the clock starts), and run, which is timed.
	setup func(ctx context.Context) (input func(class int) any, run func(in any), err error)
}

func main() {
	n := flag.Int("n", 1_000_000, "measurements per target (the first batch only sets the cropping thresholds)")
	batch := flag.Int("batch", 10_000, "measurements per batch; inputs of a batch are prepared before it is timed")
	repeat := flag.Int("repeat", 1, "runs per target, to see the spread of |t|")
	list := flag.Bool("list", false, "list the targets and exit")
	progress := flag.Bool("progress", false, "print the running max |t| after every batch on stderr")
	flag.Parse()
	if *list {
		for _, t := range targets {
			fmt.Printf("%-16s %s\n", t.name, t.what)
		}
		return
	}
	chosen, err := choose(flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "dudect:", err)
		os.Exit(2)
	}
	runtime.LockOSThread()
	fmt.Printf("dudect: %d measurements per target, batches of %d, %s, GOMAXPROCS %d, %s\n", *n, *batch, runtime.Version(), runtime.GOMAXPROCS(0), time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("%-16s %10s %9s %-12s %9s %12s %12s %10s %8s\n", "target", "measured", "max |t|", "at", "t uncrop", "mean c0 ns", "mean c1 ns", "4.5σ ns", "seconds")
	failed := false
	for _, t := range chosen {
		var ts []float64
		for range *repeat {
			r, secs, err := measure(context.Background(), t, *n, *batch, *progress)
			if err != nil {
				fmt.Fprintf(os.Stderr, "dudect: %s: %v\n", t.name, err)
				os.Exit(1)
			}
			verdict := ""
			if math.Abs(r.maxT) >= 4.5 {
				verdict, failed = "  |t| ≥ 4.5", true
			}
			fmt.Printf("%-16s %10.0f %9.2f %-12s %9.2f %12.0f %12.0f %10.1f %8.0f%s\n", t.name, r.measured, math.Abs(r.maxT), r.which, r.t0, r.mean[0], r.mean[1], r.resolution, secs, verdict)
			ts = append(ts, math.Abs(r.maxT))
		}
		if len(ts) > 1 {
			sort.Float64s(ts)
			fmt.Printf("%-16s spread of max |t| over %d runs: min %.2f, median %.2f, max %.2f\n", t.name, len(ts), ts[0], ts[len(ts)/2], ts[len(ts)-1])
		}
	}
	if failed {
		os.Exit(3)
	}
}

func choose(names []string) ([]target, error) {
	if len(names) == 0 {
		return targets, nil
	}
	var out []target
	for _, n := range names {
		found := false
		for _, t := range targets {
			if t.name == n {
				out, found = append(out, t), true
			}
		}
		if !found {
			return nil, fmt.Errorf("no target %q (dudect -list)", n)
		}
	}
	return out, nil
}

// measure runs n measurements of t in batches: classes at random, inputs prepared first,
// each call timed alone, ten warm-up calls per batch dropped.
func measure(ctx context.Context, t target, n, batch int, progress bool) (result, float64, error) {
	input, run, err := t.setup(ctx)
	if err != nil {
		return result{}, 0, err
	}
	start := time.Now()
	d := &dudect{enough: math.Min(10_000, float64(n)/10)}
	classes := make([]int, batch)
	inputs := make([]any, batch)
	times := make([]float64, batch)
	coins := make([]byte, batch)
	for done := 0; done < n; done += batch {
		if _, err := rand.Read(coins); err != nil {
			return result{}, 0, err
		}
		for i := range classes {
			classes[i] = int(coins[i] & 1)
			inputs[i] = input(classes[i])
		}
		runtime.GC() // between batches, not during them (most of the time)
		for i := range inputs {
			in := inputs[i]
			t0 := time.Now()
			run(in)
			times[i] = float64(time.Since(t0))
		}
		d.batch(times, classes, 10)
		if r := d.result(); progress && r.tests > 0 {
			fmt.Fprintf(os.Stderr, "%s: %.0f measured, max |t| %.2f (%s), %.0f s\n", t.name, r.measured, math.Abs(r.maxT), r.which, time.Since(start).Seconds())
		}
	}
	return d.result(), time.Since(start).Seconds(), nil
}

// mustf panics with a message: setup invariants that cannot fail with real components.
func mustf(ok bool, format string, a ...any) {
	if !ok {
		panic(fmt.Sprintf(format, a...))
	}
}
