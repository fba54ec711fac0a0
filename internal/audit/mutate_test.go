package audit

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyRandomMutations applies 1,200 seeded random tamperings (flip a byte, delete,
// duplicate, swap, truncate, insert-and-re-chain) to a 66-line log and requires every one to
// be detected with the exact first sequence number in doubt (the security notes' audit
// figure: 100 % detected, exact first bad index). The only accepted outcome besides an error
// is a damaged final line reported as torn.
func TestVerifyRandomMutations(t *testing.T) {
	key := newSigner(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	writeLog(t, path, testOptions(key, "log-a", 10), 60)
	orig := readLines(t, path) // seq 1–66: a checkpoint at 11, 22, …, 66
	n := len(orig)
	if n != 66 {
		t.Fatalf("fixture has %d lines; want 66", n)
	}
	closeCP := *parseLine(t, orig[n-1]).Checkpoint // covers seq 65
	lastCPBefore := func(seq int) uint64 {         // seq of the last checkpoint record before seq
		return uint64((seq - 1) / 11 * 11)
	}
	rng := rand.New(rand.NewPCG(2026, 11))
	mutations := []string{"flip", "delete", "duplicate", "swap", "truncate", "rechain"}
	detected := map[string]int{}
	const rounds = 1200
	for i := 0; i < rounds; i++ {
		kind := mutations[i%len(mutations)]
		lines := append([]string(nil), orig...)
		var wantSeq uint64
		var torn bool // a damaged final line may be reported as torn instead
		var desc string
		switch kind {
		case "flip":
			k := rng.IntN(n)
			pos := rng.IntN(len(lines[k]))
			b := []byte(lines[k])
			b[pos] ^= byte(1 + rng.IntN(255))
			if b[pos] == '\n' {
				b[pos] = 'x'
			}
			lines[k] = string(b)
			wantSeq, torn = uint64(k+1), k == n-1
			desc = fmt.Sprintf("flip line %d byte %d", k+1, pos)
		case "delete":
			k := rng.IntN(n - 1)
			lines = append(lines[:k], lines[k+1:]...)
			wantSeq = uint64(k + 1)
			desc = fmt.Sprintf("delete line %d", k+1)
		case "duplicate":
			k := rng.IntN(n)
			j := k + 1 + rng.IntN(n-k) // insert the copy before index j
			lines = append(lines[:j], append([]string{orig[k]}, lines[j:]...)...)
			wantSeq = uint64(j + 1)
			desc = fmt.Sprintf("copy line %d to line %d", k+1, j+1)
		case "swap":
			k := rng.IntN(n - 1)
			lines[k], lines[k+1] = lines[k+1], lines[k]
			wantSeq = uint64(k + 1)
			desc = fmt.Sprintf("swap lines %d and %d", k+1, k+2)
		case "truncate":
			k := rng.IntN(n - 1) // keep k lines: record 65 (ExpectHead) is lost
			lines = lines[:k]
			wantSeq = uint64(k + 1)
			desc = fmt.Sprintf("truncate to %d lines", k)
		case "rechain":
			k := rng.IntN(n - 1)
			r := parseLine(t, lines[k])
			r.Reason = "forged"
			var prev string
			if k > 0 {
				prev = parseLine(t, lines[k-1]).Hash
			} else {
				prev = genesis(r.LogID)
			}
			forged, _ := encode(t, r, prev)
			lines = append(lines[:k], append([]string{forged}, lines[k:]...)...)
			lines = rechain(t, lines, k+1, rng.IntN(2) == 0, nil)
			wantSeq = lastCPBefore(k+1) + 1
			if r.Kind == KindCheckpoint { // a checkpoint record may carry nothing unsigned
				wantSeq = uint64(k + 1)
			}
			desc = fmt.Sprintf("insert a forged line %d and re-chain", k+1)
		}
		content := strings.Join(lines, "\n")
		if len(lines) > 0 {
			content += "\n"
		}
		rep, err := Verify(strings.NewReader(content), key.Public(), VerifyOptions{ExpectHead: &closeCP})
		switch {
		case err == nil && torn && rep.TornBytes > 0 && rep.LastSeq == uint64(n-1):
			detected[kind]++ // reported as a torn final line
		case err == nil:
			t.Errorf("%s: Verify = %+v, nil; want the mutation detected", desc, rep)
		default:
			v := asVerifyError(t, err)
			if v.Seq != wantSeq {
				t.Errorf("%s: Verify = %v; want first seq in doubt %d", desc, err, wantSeq)
				continue
			}
			detected[kind]++
		}
	}
	total := 0
	for _, c := range detected {
		total += c
	}
	t.Logf("detected %d/%d mutations with the exact first seq: %v", total, rounds, detected)
}
