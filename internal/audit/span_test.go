package audit

import (
	"bytes"
	"crypto"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// spanLog writes a log that rotates into files of day 1, day 2 and day 3 events (the
// current file holds day 3's), plus one day 1 event appended among day 2's, as a request
// that started before midnight and ended after it would be. It returns the open log and
// the three days' starts.
func spanLog(t *testing.T, path string, key crypto.Signer) (*Log, [3]time.Time) {
	t.Helper()
	opts := testOptions(key, "log-a", 1000)
	opts.MaxFileBytes = 4 << 10
	var clock atomic.Int64 // checkpoints are made at the time of the event before them
	opts.Clock = func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	var rotations atomic.Int32
	opts.OnRotate = func(_ string, err error) {
		if err != nil {
			t.Errorf("rotation failed: %v", err)
		}
		rotations.Add(1)
	}
	l, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var days [3]time.Time
	i := 0
	for d := range days {
		days[d] = time.Date(2026, 11, 26+d, 0, 0, 0, 0, time.UTC)
		for n := 0; d < 2 && int(rotations.Load()) == d || d == 2 && n < 5; n++ {
			ev := testEvent(i)
			ev.Time = days[d].Add(time.Duration(n) * time.Minute)
			clock.Store(ev.Time.UnixNano())
			if d == 1 && n == 3 {
				ev.Time = days[0].Add(23*time.Hour + 59*time.Minute) // the late one
			}
			if err := l.Append(ev); err != nil {
				t.Fatal(err)
			}
			i++
		}
	}
	if files, _ := RotatedFiles(path); len(files) != 2 {
		t.Fatalf("rotated files = %v; want 2", files)
	}
	return l, days
}

// query runs Query over OpenFiles(since, until) and returns the records and how many files
// OpenFiles gave it.
func query(t *testing.T, l *Log, f Filter) ([]Record, int, error) {
	t.Helper()
	rc, err := l.OpenFiles(f.Since, f.Until)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	recs, err := Query(rc, f)
	return recs, len(rc.(multiFile)), err
}

// TestQueryLeavesOutRotatedFilesOutsideItsRange: a rotated file whose closing checkpoint's
// span misses a query's range is not read (a damaged line in it does not fail the query,
// and OpenFiles does not hand it over), and every query answers what a scan of every file
// answers, the day 1 record appended among day 2's included.
func TestQueryLeavesOutRotatedFilesOutsideItsRange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, days := spanLog(t, path, newSigner(t))
	tests := []struct {
		name         string
		since, until time.Time
		files        int // files OpenFiles hands over (the current one always)
		late         bool
	}{
		{"ok/everything", time.Time{}, time.Time{}, 3, true},
		{"ok/day-1", days[0], days[1], 3, true}, // the day 2 file holds the late record
		{"ok/since-day-2", days[1], time.Time{}, 2, false},
		{"ok/day-3", days[2], time.Time{}, 1, false},
		{"ok/until-day-2", time.Time{}, days[1], 3, true},
		{"ok/next-year", days[0].AddDate(1, 0, 0), time.Time{}, 1, false},
	}
	full, n, err := query(t, l, Filter{Platform: true, Limit: 1 << 20})
	if err != nil || n != 3 {
		t.Fatalf("Query over all %d files = %v", n, err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Filter{Platform: true, Since: tt.since, Until: tt.until, Limit: 1 << 20}
			var want []Record
			for _, r := range full {
				if f.matches(&r) {
					want = append(want, r)
				}
			}
			got, n, err := query(t, l, f)
			if err != nil || n != tt.files || !slices.EqualFunc(got, want, func(a, b Record) bool { return a.Hash == b.Hash }) {
				t.Errorf("Query(%v–%v) over %d files = %d records, %v; want %d files and the %d records a full scan selects", tt.since, tt.until, n, len(got), err, tt.files, len(want))
			}
			late := slices.ContainsFunc(got, func(r Record) bool { return r.Time.Equal(days[0].Add(23*time.Hour + 59*time.Minute)) })
			if late != tt.late {
				t.Errorf("Query(%v–%v) holds the late day 1 record: %v; want %v", tt.since, tt.until, late, tt.late)
			}
		})
	}

	// Damage a record in the middle of the day 1 file: a query that needs the file fails on
	// it, one that does not never reads it.
	rotated, _ := RotatedFiles(path)
	b, err := os.ReadFile(rotated[0])
	if err != nil {
		t.Fatal(err)
	}
	mid := bytes.IndexByte(b[len(b)/2:], '\n') + len(b)/2 + 1
	b[mid] = 'X'
	if err := os.WriteFile(rotated[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := query(t, l, Filter{Platform: true, Since: days[0], Until: days[1]}); err == nil {
		t.Errorf("Query(day 1) over a damaged day 1 file = nil error; want the damaged line reported")
	}
	if got, n, err := query(t, l, Filter{Platform: true, Since: days[1], Limit: 1 << 20}); err != nil || n != 2 || len(got) == 0 {
		t.Errorf("Query(since day 2) = %d records over %d files, %v; want the day 2 and 3 records, the damaged day 1 file left unread", len(got), n, err)
	}
}

// TestTamperedSpanIsNotTrusted: a rotated file's closing checkpoint whose span was edited
// (to say the file is of another year) no longer verifies, so OpenFiles reads the file as
// if it had no span, and VerifyFiles names the edit.
func TestTamperedSpanIsNotTrusted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	key := newSigner(t)
	l, days := spanLog(t, path, key)
	day1 := Filter{Platform: true, Since: days[0], Until: days[1], Limit: 1 << 20}
	want, _, err := query(t, l, day1)
	if err != nil {
		t.Fatal(err)
	}
	rotated, _ := RotatedFiles(path)
	lines := readLines(t, rotated[0])
	last := parseLine(t, lines[len(lines)-1])
	if last.Checkpoint == nil || last.Checkpoint.Span == nil {
		t.Fatalf("the day 1 file ends in %+v; want a checkpoint with a span", last)
	}
	next := days[0].AddDate(1, 0, 0)
	last.Checkpoint.Span = &Span{From: next, To: next}
	edited, err := json.Marshal(&last)
	if err != nil {
		t.Fatal(err)
	}
	lines[len(lines)-1] = string(edited)
	var b bytes.Buffer
	for _, ln := range lines {
		b.WriteString(ln + "\n")
	}
	if err := os.WriteFile(rotated[0], b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	got, n, err := query(t, l, day1)
	if err != nil || n != 3 || len(got) != len(want) {
		t.Errorf("Query(day 1) with the day 1 file's span edited = %d records over %d files, %v; want the %d records over 3 files", len(got), n, err, len(want))
	}
	if _, err := VerifyFiles(append(rotated, path), key.Public(), VerifyOptions{}); err == nil || asVerifyError(t, err).File != rotated[0] {
		t.Errorf("VerifyFiles with an edited span = %v; want the edit found in %s", err, rotated[0])
	}
}

// TestVerifyChecksCheckpointSpans: a checkpoint, even a well signed one, whose span leaves
// out a record it covers is reported (BadCheckpointSpan); one that holds them all passes.
func TestVerifyChecksCheckpointSpans(t *testing.T) {
	key := newSigner(t)
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	build := func(sp Span) []byte {
		ev := Record{Seq: 1, Kind: KindEvent, LogID: "log-a", Event: testEvent(0)}
		ev.Time = t0
		buf, err := encodeLine(nil, &ev, genesis("log-a"))
		if err != nil {
			t.Fatal(err)
		}
		cp := &Checkpoint{LogID: "log-a", Seq: 1, HeadHash: ev.Hash, Time: t0.Add(time.Second), Span: &sp}
		if err := sign(key, cp); err != nil {
			t.Fatal(err)
		}
		r := Record{Seq: 2, Kind: KindCheckpoint, LogID: "log-a", Prev: ev.Hash, Event: Event{Time: cp.Time}, Checkpoint: cp}
		if buf, err = encodeLine(buf, &r, ev.Hash); err != nil {
			t.Fatal(err)
		}
		return buf
	}
	tests := []struct {
		name string
		span Span
		want string // "" for no error
	}{
		{"ok/exact", Span{From: t0, To: t0.Add(time.Second)}, ""},
		{"ok/wider", Span{From: t0.Add(-time.Hour), To: t0.Add(time.Hour)}, ""},
		{"fail/misses-the-event", Span{From: t0.Add(time.Second), To: t0.Add(time.Second)}, BadCheckpointSpan},
		{"fail/misses-its-own-time", Span{From: t0, To: t0}, BadCheckpointSpan},
		{"fail/inverted", Span{From: t0.Add(time.Hour), To: t0}, BadCheckpointSpan},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(bytes.NewReader(build(tt.span)), key.Public(), VerifyOptions{})
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Verify = %v; want nil", err)
			case tt.want != "" && (err == nil || asVerifyError(t, err).Kind != tt.want):
				t.Errorf("Verify = %v; want %s", err, tt.want)
			}
		})
	}
}

// TestReopenKeepsTheFileSpan: a log reopened from its last checkpoint (the server's
// VerifyFromCheckpoint) takes the file's span from it, so the file's closing checkpoint
// still covers the records written before the reopen.
func TestReopenKeepsTheFileSpan(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	key := newSigner(t)
	opts := testOptions(key, "log-a", 3)
	early := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	l, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	ev := testEvent(0)
	ev.Time = early
	for _, e := range []Event{ev, testEvent(1), testEvent(2), testEvent(3)} {
		if err := l.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	opts.VerifyFromCheckpoint = true
	if l, err = Open(path, opts); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(testEvent(4)); err != nil {
		t.Fatal(err)
	}
	cp, err := l.Checkpoint()
	l.Close()
	if err != nil || cp.Span == nil || !cp.Span.From.Equal(early) {
		t.Errorf("Checkpoint after reopening = span %+v, %v; want one from %v, the file's first record", cp.Span, err, early)
	}
}
