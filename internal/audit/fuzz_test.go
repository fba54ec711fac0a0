package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// fuzzKey is fixed so the seed corpus stays meaningful across runs.
var fuzzKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

// FuzzVerify feeds arbitrary bytes to Verify and Query: they must never panic, Verify must
// fail only with a *VerifyError (the input is in memory, so there are no read errors), and a
// passing report must be self-consistent. Run it with a short minimization budget, e.g.
//
//	go test ./internal/audit -run '^$' -fuzz '^FuzzVerify$' -fuzztime 60s -fuzzminimizetime 2s
//
// Go minimizes each new input by trying to remove every subset of its bytes (quadratic in
// its length); inputs grown from the valid seeds are over a kilobyte and each try verifies a
// signature, so with the default 60 s budget a worker spends whole runs minimizing.
func FuzzVerify(f *testing.F) {
	// Seeds are small valid logs: the fuzzer minimizes every new input, and Verify on a valid
	// log checks Ed25519 signatures, so long seeds make minimization crawl.
	var log bytes.Buffer
	l, err := NewWriterSink(&log, testOptions(fuzzKey, "f", 2))
	if err != nil {
		f.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 3; i++ {
		if err := l.Append(Event{Time: t0, Tenant: "t", Operation: "K", Result: ResultSuccess}); err != nil {
			f.Fatal(err)
		}
	}
	l.Close()
	valid := log.Bytes()
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(append(bytes.Clone(valid), valid...))
	f.Add([]byte("{}\n"))
	f.Add([]byte(`{"seq":1,"kind":"checkpoint","log":"x","prev":"","time":"2026-01-01T00:00:00Z","checkpoint":{"log":"x","seq":0,"head":"","time":"0001-01-01T00:00:00Z","sig":""},"hash":"00"}` + "\n"))
	f.Add([]byte("\n\n\x00\xff"))

	f.Fuzz(func(t *testing.T, data []byte) {
		var opts VerifyOptions
		if len(data)%2 == 1 { // half the inputs also check truncation against a head
			opts.ExpectHead = &Checkpoint{LogID: "f", Seq: 3, HeadHash: strings.Repeat("ab", 32)}
		}
		rep, err := Verify(bytes.NewReader(data), fuzzKey.Public(), opts)
		if err != nil {
			var v *VerifyError
			if !errors.As(err, &v) {
				t.Fatalf("Verify error %v (%T) is not a *VerifyError", err, err)
			}
		} else if rep.Checkpoints > rep.Records || rep.LastCheckpointSeq > rep.LastSeq ||
			rep.LastCheckpointSeq != 0 && uint64(rep.UnsignedTail) != rep.LastSeq-rep.LastCheckpointSeq {
			t.Fatalf("inconsistent report %+v", rep)
		}
		_, _ = Query(bytes.NewReader(data), Filter{Platform: true})
	})
}

// FuzzEncodeEventLine: for any strings in an event, the writer's fast path (the caller
// encodes the event) and encodeLine produce the same line, which is what Verify recomputes.
func FuzzEncodeEventLine(f *testing.F) {
	f.Add("KeySign", "https://v/keys/k", "reason", int64(0), 200)
	f.Add("\u2028<&>", "\x00\xff", `"\`, int64(-1), -5)
	f.Fuzz(func(t *testing.T, op, object, reason string, nanos int64, status int) {
		ev := testEvent(1)
		ev.Operation, ev.ObjectID, ev.Reason, ev.Status = op, object, reason, status
		ev.Time = ev.Time.Add(time.Duration(nanos % int64(time.Hour)))
		r1 := Record{Seq: 3, Kind: KindEvent, LogID: "log-a", Prev: strings.Repeat("a", 64), Event: ev}
		r2 := r1
		want, err := encodeLine(nil, &r1, r1.Prev)
		if err != nil {
			t.Skip()
		}
		evJSON, err := json.Marshal(&ev)
		if err != nil {
			t.Fatal(err)
		}
		if got := encodeEventLine(nil, &r2, evJSON, r2.Prev); string(got) != string(want) {
			t.Errorf("encodeEventLine =\n%q\nwant\n%q", got, want)
		}
	})
}
