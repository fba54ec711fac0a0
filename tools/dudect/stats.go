package main

import (
	"fmt"
	"math"
	"sort"
)

// welch is an online two-class Welch t-test (Welford's running mean and variance), as
// dudect's t_ctx.
type welch struct {
	n, mean, m2 [2]float64
}

func (w *welch) push(x float64, class int) {
	w.n[class]++
	d := x - w.mean[class]
	w.mean[class] += d / w.n[class]
	w.m2[class] += d * (x - w.mean[class])
}

// t is Welch's t statistic of class 0 against class 1; 0 until both classes have two values.
func (w *welch) t() float64 {
	if w.n[0] < 2 || w.n[1] < 2 {
		return 0
	}
	v0, v1 := w.m2[0]/(w.n[0]-1), w.m2[1]/(w.n[1]-1)
	den := math.Sqrt(v0/w.n[0] + v1/w.n[1])
	if den == 0 {
		return 0
	}
	return (w.mean[0] - w.mean[1]) / den
}

// numCrops is dudect's DUDECT_NUMBER_PERCENTILES: the t-tests over measurements below
// each of these percentiles of the first batch (outlier cropping).
const numCrops = 100

// cropPercentile is the fraction of the first batch the crop index keeps: 1 − 0.5^(10(i+1)/100),
// from 6.7 % to 99.9 %, dense near the top, as dudect.
func cropPercentile(i int) float64 {
	return 1 - math.Pow(0.5, 10*float64(i+1)/numCrops)
}

// dudect holds the tests of one target: tests[0] uncropped, tests[1..numCrops] cropped,
// tests[numCrops+1] the second-order test (centred squares, after enough measurements).
type dudect struct {
	thresholds []float64 // nil until the first batch set them
	tests      [numCrops + 2]welch
	enough     float64 // measurements per class a test needs before it is reported
}

// batch feeds one batch of (time, class) pairs. The first batch only sets the cropping
// thresholds, as dudect; the first warmup values of every batch are dropped.
func (d *dudect) batch(times []float64, classes []int, warmup int) {
	if d.thresholds == nil {
		s := append([]float64(nil), times...)
		sort.Float64s(s)
		d.thresholds = make([]float64, numCrops)
		for i := range d.thresholds {
			d.thresholds[i] = s[int(cropPercentile(i)*float64(len(s)-1))]
		}
		return
	}
	for i := warmup; i < len(times); i++ {
		x, c := times[i], classes[i]
		d.tests[0].push(x, c)
		for j, th := range d.thresholds {
			if x < th {
				d.tests[j+1].push(x, c)
			}
		}
		if d.tests[0].n[0] > d.enough {
			centred := x - d.tests[0].mean[c]
			d.tests[numCrops+1].push(centred*centred, c)
		}
	}
}

// result is the report of a target: the largest |t| over the tests with enough
// measurements, which test it was, and the uncropped test for context.
type result struct {
	maxT     float64
	which    string
	n        float64 // measurements in the test with maxT
	t0       float64 // the uncropped test's t
	mean     [2]float64
	measured float64
	tests    int // tests with enough measurements
	// resolution is the difference between the classes' mean times (ns) that would have
	// given the uncropped test |t| = 4.5: 4.5 of its standard errors.
	resolution float64
}

func (d *dudect) result() result {
	r := result{t0: d.tests[0].t(), mean: d.tests[0].mean, measured: d.tests[0].n[0] + d.tests[0].n[1]}
	for i := range d.tests {
		w := &d.tests[i]
		if w.n[0] < d.enough || w.n[1] < d.enough {
			continue
		}
		r.tests++
		if i == 0 {
			r.resolution = 4.5 * math.Sqrt(w.m2[0]/(w.n[0]-1)/w.n[0]+w.m2[1]/(w.n[1]-1)/w.n[1])
		}
		if t := w.t(); math.Abs(t) >= math.Abs(r.maxT) {
			r.maxT, r.n = t, w.n[0]+w.n[1]
			switch {
			case i == 0:
				r.which = "uncropped"
			case i == numCrops+1:
				r.which = "2nd order"
			default:
				r.which = "crop " + pct(cropPercentile(i-1))
			}
		}
	}
	return r
}

func pct(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }
