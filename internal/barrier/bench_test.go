package barrier

import (
	"context"
	"crypto/rand"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/storage/bolt"
)

// BenchmarkSealOpen1KiB compares the barrier's seal+open of a 1 KiB record with raw
// AES-256-GCM (random nonce, seal, open) in the same run; BENCHMARKS.md records the ratio.
func BenchmarkSealOpen1KiB(b *testing.B) {
	value := make([]byte, 1024)
	rand.Read(value)
	key := randomBytes(32)
	aead, _ := newAEAD(key)
	b.Run("raw-aes-256-gcm", func(b *testing.B) {
		b.SetBytes(1024)
		nonce := make([]byte, nonceLen)
		for b.Loop() {
			rand.Read(nonce)
			ct := aead.Seal(nil, nonce, value, nil)
			if _, err := aead.Open(nil, nonce, ct, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("barrier", func(b *testing.B) {
		b.SetBytes(1024)
		kr, _ := newKeyring(time.Now())
		kr.count.extend(0, math.MaxUint64) // counted as in the barrier, never used up here
		for b.Loop() {
			rec, err := kr.seal("tenants/t1/vaults/v1/secrets/s1/0123456789abcdef0123456789abcdef", value)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := kr.open("tenants/t1/vaults/v1/secrets/s1/0123456789abcdef0123456789abcdef", rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBoltBarrier measures durable puts and gets of 1 KiB records through the barrier
// over bbolt (fsync on every commit): one writer, and 32 concurrent writers sharing group
// commits.
func BenchmarkBoltBarrier(b *testing.B) {
	open := func(b *testing.B) *Barrier {
		db, err := bolt.Open(filepath.Join(b.TempDir(), "bench.db"), bolt.Options{})
		if err != nil {
			b.Fatal(err)
		}
		bar := New(db)
		m := NewManager(db, bar, nil, time.Now)
		res, err := m.Init(context.Background(), InitOptions{Shares: 1, Threshold: 1})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Unseal(context.Background(), res.Shares[0]); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { bar.Close() })
		return bar
	}
	value := make([]byte, 1024)
	rand.Read(value)
	ctx := context.Background()
	for _, writers := range []int{1, 32} {
		b.Run(fmt.Sprintf("put/writers=%d", writers), func(b *testing.B) {
			bar := open(b)
			var n atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := n.Add(1)
						if i > int64(b.N) {
							return
						}
						if err := bar.Put(ctx, fmt.Sprintf("k/%d", i), value); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
	b.Run("get", func(b *testing.B) {
		bar := open(b)
		for i := 0; i < 1000; i++ {
			bar.Put(ctx, fmt.Sprintf("k/%d", i), value)
		}
		i := 0
		for b.Loop() {
			if _, err := bar.Get(ctx, fmt.Sprintf("k/%d", i%1000)); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
}
