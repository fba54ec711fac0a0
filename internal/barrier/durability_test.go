package barrier

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/storage/bolt"
)

// The durability test runs this test binary again as a writer process (selected by
// envWriter). The writer opens the bbolt database through the barrier exactly as the server
// does, and 8 goroutines write records in transactions; after each acknowledged commit it
// prints "ack <key> <sha256>" on stdout. The parent kills it with SIGKILL at a random moment,
// reopens the database, and checks that every acknowledged write is present and intact and
// that no record fails its integrity check.
const (
	envWriter   = "COFFER_DURABILITY_WRITER"
	envDBPath   = "COFFER_DURABILITY_DB"
	envShare    = "COFFER_DURABILITY_SHARE"
	envCycle    = "COFFER_DURABILITY_CYCLE"
	writersPerP = 8
)

func TestMain(m *testing.M) {
	if os.Getenv(envWriter) == "1" {
		os.Exit(durabilityWriter())
	}
	os.Exit(m.Run())
}

func openForTest(path, share string) (*Barrier, error) {
	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		return nil, err
	}
	b := New(db)
	m := NewManager(db, b, nil, time.Now)
	if _, err := m.Unseal(context.Background(), share); err != nil {
		db.Close()
		return nil, err
	}
	return b, nil
}

func valueFor(key string) []byte {
	// Values of varied length (up to ~12 KiB) so records span pages.
	n := 64 + int(sha256.Sum256([]byte(key))[0])*48
	return []byte(strings.Repeat(key+";", n/len(key)+1)[:n])
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}

func durabilityWriter() int {
	b, err := openForTest(os.Getenv(envDBPath), os.Getenv(envShare))
	if err != nil {
		fmt.Fprintln(os.Stderr, "writer:", err)
		return 2
	}
	cycle := os.Getenv(envCycle)
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	ack := func(line string) {
		mu.Lock()
		out.WriteString(line)
		out.Flush() // the parent sees the ack only after the commit returned
		mu.Unlock()
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := 0; w < writersPerP; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				// Two records per transaction: both or neither must survive.
				k1 := fmt.Sprintf("c%s/w%d/%d/a", cycle, w, i)
				k2 := fmt.Sprintf("c%s/w%d/%d/b", cycle, w, i)
				err := b.Txn(ctx, func(tx storage.Tx) error {
					if err := tx.Put(ctx, k1, valueFor(k1)); err != nil {
						return err
					}
					return tx.Put(ctx, k2, valueFor(k2))
				})
				if err != nil {
					fmt.Fprintln(os.Stderr, "writer:", err)
					return
				}
				ack(fmt.Sprintf("ack %s %s\nack %s %s\n", k1, digest(valueFor(k1)), k2, digest(valueFor(k2))))
			}
		}()
	}
	wg.Wait()
	return 1
}

func TestDurabilityUnderKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 20 writer processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "coffer.db")
	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(db, New(db), nil, time.Now)
	res, err := m.Init(context.Background(), InitOptions{Shares: 1, Threshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	const cycles = 20
	acked := map[string]string{} // key -> digest, across all cycles
	totalAcks := 0
	for c := 0; c < cycles; c++ {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), envWriter+"=1", envDBPath+"="+path, envShare+"="+res.Shares[0], envCycle+"="+strconv.Itoa(c))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Wait for the first ack so the writer is really writing, then kill at a random moment.
		first, ok := <-lines
		if !ok {
			cmd.Wait()
			t.Fatalf("cycle %d: writer produced no ack; stderr: %s", c, stderr.String())
		}
		time.Sleep(time.Duration(10+rand.IntN(490)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		n := 0
		for line := range append0(first, lines) {
			f := strings.Fields(line)
			if len(f) == 3 && f[0] == "ack" {
				acked[f[1]] = f[2]
				n++
			}
		}
		cmd.Wait()
		totalAcks += n

		b, err := openForTest(path, res.Shares[0])
		if err != nil {
			t.Fatalf("cycle %d: reopen after kill -9: %v", c, err)
		}
		for k, want := range acked {
			v, err := b.Get(context.Background(), k)
			if err != nil {
				t.Fatalf("cycle %d: acknowledged record %q: %v", c, k, err)
			}
			if got := digest(v); got != want || string(v) != string(valueFor(k)) {
				t.Fatalf("cycle %d: acknowledged record %q has digest %s; want %s", c, k, got, want)
			}
		}
		// Every record present is intact, and transactions are all-or-nothing.
		checkAllRecords(t, b, c)
		b.Close()
	}
	t.Logf("%d kill -9 cycles, %d acknowledged writes, all present and intact", cycles, totalAcks)
	if totalAcks < cycles {
		t.Errorf("only %d acknowledged writes in %d cycles: the writer barely ran", totalAcks, cycles)
	}
}

// append0 yields first and then everything from rest.
func append0(first string, rest <-chan string) func(func(string) bool) {
	return func(yield func(string) bool) {
		if !yield(first) {
			return
		}
		for l := range rest {
			if !yield(l) {
				return
			}
		}
	}
}

func checkAllRecords(t *testing.T, b *Barrier, cycle int) {
	t.Helper()
	ctx := context.Background()
	present := map[string]bool{}
	opts := storage.ListOptions{}
	for {
		p, err := b.List(ctx, "c", opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range p.Keys {
			v, err := b.Get(ctx, k)
			if err != nil {
				if errors.Is(err, ErrIntegrity) {
					t.Fatalf("cycle %d: record %q is corrupt after kill -9: %v", cycle, k, err)
				}
				t.Fatal(err)
			}
			if string(v) != string(valueFor(k)) {
				t.Fatalf("cycle %d: record %q has the wrong value", cycle, k)
			}
			present[k] = true
		}
		if p.Next == "" {
			break
		}
		opts.After = p.Next
	}
	for k := range present {
		base := k[:len(k)-1]
		if !present[base+"a"] || !present[base+"b"] {
			t.Fatalf("cycle %d: transaction %s is half present", cycle, base)
		}
	}
}
