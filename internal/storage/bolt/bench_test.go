package bolt

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coffer-kms/coffer/internal/storage"
)

// benchWriters is the number of concurrent writers in BenchmarkPut1KiB/32-writers. It is fixed
// rather than derived from GOMAXPROCS: the point is many writers sharing fsyncs on few cores.
const benchWriters = 32

// value1KiB is the value every benchmark writes or reads.
var value1KiB = make([]byte, 1024)

// reportOps reports throughput in operations per second.
func reportOps(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func BenchmarkPut1KiB(b *testing.B) {
	ctx := context.Background()
	b.Run("single-writer", func(b *testing.B) {
		db := openTemp(b, Options{})
		b.SetBytes(int64(len(value1KiB)))
		i := 0
		for b.Loop() {
			if err := db.Put(ctx, fmt.Sprintf("k/%09d", i), value1KiB); err != nil {
				b.Fatal(err)
			}
			i++
		}
		reportOps(b)
	})
	b.Run(fmt.Sprintf("%d-writers", benchWriters), func(b *testing.B) {
		db := openTemp(b, Options{})
		b.SetBytes(int64(len(value1KiB)))
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, benchWriters)
		b.ResetTimer()
		for range benchWriters {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(b.N) {
						return
					}
					if err := db.Put(ctx, fmt.Sprintf("k/%09d", i), value1KiB); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		reportOps(b)
		b.ReportMetric(float64(b.N)/float64(max(db.commits.Load(), 1)), "puts/commit")
	})
}

func BenchmarkGet1KiB(b *testing.B) {
	const keys = 10000
	ctx := context.Background()
	db := openTemp(b, Options{})
	err := db.Txn(ctx, func(tx storage.Tx) error {
		for i := range keys {
			if err := tx.Put(ctx, fmt.Sprintf("k/%09d", i), value1KiB); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(value1KiB)))
	i := 0
	for b.Loop() {
		if _, err := db.Get(ctx, fmt.Sprintf("k/%09d", i%keys)); err != nil {
			b.Fatal(err)
		}
		i += 7919 // a prime stride: spread reads over the tree
	}
	reportOps(b)
}
