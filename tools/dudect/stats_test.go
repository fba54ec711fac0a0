package main

import (
	"math"
	"testing"
)

// The statistics only: no timing is asserted in go test.

func TestWelch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		c0, c1 []float64
		want   float64
	}{
		// means 3 and 6, variances 2.5 and 10: t = −3 / √(2.5/5 + 10/5).
		{"equal-n", []float64{1, 2, 3, 4, 5}, []float64{2, 4, 6, 8, 10}, -3 / math.Sqrt(2.5)},
		// means 12 and 4, variances 4 and 14/3: t = 8 / √(4/3 + 2/3).
		{"unequal-n", []float64{10, 12, 14}, []float64{1, 2, 3, 4, 5, 6, 7}, 8 / math.Sqrt(2)},
		{"same-values", []float64{7, 7, 8}, []float64{8, 7, 7}, 0},
		{"one-value-each", []float64{1}, []float64{2}, 0},
	} {
		var w welch
		// Interleaved, as dudect feeds them.
		for i := 0; i < len(tc.c0) || i < len(tc.c1); i++ {
			if i < len(tc.c0) {
				w.push(tc.c0[i], 0)
			}
			if i < len(tc.c1) {
				w.push(tc.c1[i], 1)
			}
		}
		if got := w.t(); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: t = %.15f; want %.15f", tc.name, got, tc.want)
		}
	}
}

func TestCropPercentiles(t *testing.T) {
	if got, want := cropPercentile(0), 1-math.Pow(0.5, 0.1); math.Abs(got-want) > 1e-15 {
		t.Errorf("cropPercentile(0) = %v; want %v", got, want)
	}
	if got := cropPercentile(numCrops - 1); got != 1-1.0/1024 {
		t.Errorf("cropPercentile(%d) = %v; want 1 - 2^-10", numCrops-1, got)
	}
	for i := 1; i < numCrops; i++ {
		if cropPercentile(i) <= cropPercentile(i-1) {
			t.Fatalf("crop percentiles not increasing at %d", i)
		}
	}
}

// TestDudectBatches: the first batch only sets thresholds, warm-up values are dropped, a
// crop keeps only values below its threshold, and a shifted class gives a large |t| on
// every test while equal classes give none.
func TestDudectBatches(t *testing.T) {
	const n = 1000
	times, classes := make([]float64, n), make([]int, n)
	fill := func(shift float64) {
		for i := range times {
			classes[i] = i % 2
			times[i] = float64(100+(i/2)%50) + shift*float64(classes[i]) // the same values in each class
		}
	}
	d := &dudect{enough: 100}
	fill(0)
	d.batch(times, classes, 10)
	if d.tests[0].n[0]+d.tests[0].n[1] != 0 || len(d.thresholds) != numCrops {
		t.Fatalf("after the first batch: %v measurements, %d thresholds; want 0 and %d", d.tests[0].n, len(d.thresholds), numCrops)
	}
	d.batch(times, classes, 10)
	if got := d.tests[0].n[0] + d.tests[0].n[1]; got != n-10 {
		t.Errorf("uncropped test has %v measurements; want %d (warm-up dropped)", got, n-10)
	}
	if low := d.tests[1]; low.n[0]+low.n[1] >= n/5 {
		t.Errorf("the lowest crop kept %v of %d", low.n, n)
	}
	if r := d.result(); math.Abs(r.maxT) > 1 {
		t.Errorf("equal classes: max |t| = %v (%s); want about 0", r.maxT, r.which)
	}
	shifted := &dudect{enough: 100}
	fill(5)
	shifted.batch(times, classes, 10)
	shifted.batch(times, classes, 10)
	if r := shifted.result(); math.Abs(r.maxT) < 4.5 || r.tests < 2 || r.resolution <= 0 || r.resolution > 5 {
		t.Errorf("class 1 five units slower: max |t| = %v over %d tests; want ≥ 4.5", r.maxT, r.tests)
	}
}
