package audit

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAppend measures durable appends (write + fsync) to a file in the test's temp
// directory with 1 and 32 concurrent writers. Group commit lets 32 writers share each fsync,
// so their rate should be several times the single writer's; records/fsync shows the batching.
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 32} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			key := newSigner(b)
			l, err := Open(filepath.Join(b.TempDir(), "audit.log"), testOptions(key, "bench", DefaultCheckpointEvery))
			if err != nil {
				b.Fatal(err)
			}
			ev := testEvent(1)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if err := l.Append(ev); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			b.ReportMetric(float64(b.N)/float64(max(l.syncs.Load(), 1)), "records/fsync")
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkAppendLazy is the audit record of a read as the data plane writes it
// (AppendLazy with a 10 ms LazySyncInterval): written before it returns, synced later. Its
// ns/op and allocations are the log's own share of an audited read.
func BenchmarkAppendLazy(b *testing.B) {
	key := newSigner(b)
	opts := testOptions(key, "bench", DefaultCheckpointEvery)
	opts.LazySyncInterval = 10 * time.Millisecond
	l, err := Open(filepath.Join(b.TempDir(), "audit.log"), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ev := testEvent(1)
	b.ReportAllocs()
	for b.Loop() {
		if err := l.AppendLazy(ev); err != nil {
			b.Fatal(err)
		}
	}
}
