package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyTamper builds a closed log of 25 events with a checkpoint every 10 records, so
// line i holds seq i: 1–10 events, 11 checkpoint, 12–21 events, 22 checkpoint, 23–27
// events, 28 checkpoint (Close); then tampers with a copy of it in each way an attacker
// with write access to the file could, and checks Verify names the first seq in doubt.
func TestVerifyTamper(t *testing.T) {
	dir := t.TempDir()
	key := newSigner(t)
	attacker := newSigner(t)
	writeLog(t, filepath.Join(dir, "a.log"), testOptions(key, "log-a", 10), 25)
	writeLog(t, filepath.Join(dir, "b.log"), testOptions(key, "log-b", 10), 25)
	lines := readLines(t, filepath.Join(dir, "a.log"))
	other := readLines(t, filepath.Join(dir, "b.log"))
	if len(lines) != 28 || len(other) != 28 {
		t.Fatalf("fixture has %d and %d lines; want 28", len(lines), len(other))
	}
	closeCP := *parseLine(t, lines[27]).Checkpoint // exported at Close: covers seq 27

	// forged is a plausible event at seq 5, chained correctly after record 4.
	forged := func() string {
		r := parseLine(t, lines[4])
		r.ObjectID = "https://vault1.localhost/keys/attacker/v1"
		s, _ := encode(t, r, parseLine(t, lines[3]).Hash)
		return s
	}
	edit := func(i int, old, new string) func([]string) []string {
		return func(l []string) []string {
			if !strings.Contains(l[i], old) {
				t.Fatalf("line %d has no %q", i+1, old)
			}
			l[i] = strings.Replace(l[i], old, new, 1)
			return l
		}
	}
	insert := func(l []string, i int, s string) []string {
		return append(l[:i], append([]string{s}, l[i:]...)...)
	}

	type want struct {
		kind string
		seq  uint64
		line int
	}
	tests := []struct {
		name   string
		tamper func([]string) []string
		opts   VerifyOptions
		want   *want   // nil: verifies
		report *Report // for passing cases: fields checked when non-zero
	}{
		{
			name:   "ok/untouched",
			tamper: func(l []string) []string { return l },
			report: &Report{Records: 28, Checkpoints: 3, LastSeq: 28, LastCheckpointSeq: 28},
		},
		{
			name:   "ok/expect-head-matches",
			tamper: func(l []string) []string { return l },
			opts:   VerifyOptions{ExpectHead: &closeCP, LogID: "log-a"},
			report: &Report{Records: 28, LastSeq: 28},
		},
		{
			name:   "fail/edit-field-status",
			tamper: edit(4, `"status":200`, `"status":500`),
			want:   &want{BadHash, 5, 5},
		},
		{
			name:   "fail/edit-field-operation",
			tamper: edit(14, `"op":"KeySign"`, `"op":"KeyVerify"`),
			want:   &want{BadHash, 15, 15},
		},
		{
			name:   "fail/edit-checkpoint-payload",
			tamper: edit(21, `"seq":21,"head"`, `"seq":20,"head"`),
			want:   &want{BadHash, 22, 22},
		},
		{
			name:   "fail/edit-reformatted",
			tamper: edit(4, `,"kind"`, `, "kind"`),
			want:   &want{BadCanonical, 5, 5},
		},
		{
			name:   "fail/edit-duplicate-key-hides-value",
			tamper: edit(4, `{"seq":5,`, `{"status":500,"seq":5,`),
			want:   &want{BadCanonical, 5, 5},
		},
		{
			name:   "fail/delete-line",
			tamper: func(l []string) []string { return append(l[:4], l[5:]...) },
			want:   &want{BadGap, 5, 5},
		},
		{
			name:   "fail/delete-checkpoint-line",
			tamper: func(l []string) []string { return append(l[:10], l[11:]...) },
			want:   &want{BadGap, 11, 11},
		},
		{
			name:   "fail/cut-from-start",
			tamper: func(l []string) []string { return l[3:] },
			want:   &want{BadGenesis, 1, 1},
		},
		{
			name:   "fail/insert-forged-line",
			tamper: func(l []string) []string { return insert(l, 4, forged()) },
			want:   &want{BadConflict, 5, 6},
		},
		{
			name: "fail/insert-forged-line-rechained",
			tamper: func(l []string) []string {
				return rechain(t, insert(l, 4, forged()), 5, false, nil)
			},
			want: &want{BadCheckpointHead, 1, 12},
		},
		{
			name: "fail/insert-forged-line-rechained-checkpoints-rewritten",
			tamper: func(l []string) []string {
				return rechain(t, insert(l, 4, forged()), 5, true, nil)
			},
			want: &want{BadCheckpointSignature, 1, 12},
		},
		{
			name: "ok/insert-forged-unsigned-tail-undetectable-without-expect-head",
			tamper: func(l []string) []string {
				f := parseLine(t, l[24])
				f.ObjectID = "forged"
				s, _ := encode(t, f, parseLine(t, l[23]).Hash)
				return rechain(t, insert(l[:27], 24, s), 25, false, nil)
			},
			report: &Report{Records: 28, LastSeq: 28, LastCheckpointSeq: 22, UnsignedTail: 6},
		},
		{
			name: "fail/insert-forged-unsigned-tail-expect-head",
			tamper: func(l []string) []string {
				f := parseLine(t, l[24])
				f.ObjectID = "forged"
				s, _ := encode(t, f, parseLine(t, l[23]).Hash)
				return rechain(t, insert(l[:27], 24, s), 25, false, nil)
			},
			opts: VerifyOptions{ExpectHead: &closeCP},
			want: &want{BadExpectHead, 23, 27},
		},
		{
			name:   "fail/reorder-two-lines",
			tamper: func(l []string) []string { l[4], l[5] = l[5], l[4]; return l },
			want:   &want{BadReorder, 5, 5},
		},
		{
			name:   "fail/reorder-across-checkpoint",
			tamper: func(l []string) []string { l[9], l[10] = l[10], l[9]; return l },
			want:   &want{BadReorder, 10, 10},
		},
		{
			name:   "fail/reorder-move-back",
			tamper: func(l []string) []string { m := l[2]; l = append(l[:2], l[3:]...); return insert(l, 6, m) },
			want:   &want{BadGap, 3, 3}, // seq 4 follows 2 and 3 is not next: looks like a deletion first
		},
		{
			name:   "fail/duplicate-line",
			tamper: func(l []string) []string { return insert(l, 5, l[4]) },
			want:   &want{BadDuplicate, 6, 6},
		},
		{
			name:   "fail/duplicate-line-later",
			tamper: func(l []string) []string { return insert(l, 21, l[4]) },
			want:   &want{BadDuplicate, 22, 22},
		},
		{
			name:   "fail/splice-line-from-other-log",
			tamper: func(l []string) []string { l[14] = other[14]; return l },
			want:   &want{BadSplice, 15, 15},
		},
		{
			name:   "fail/splice-insert-from-other-log",
			tamper: func(l []string) []string { return insert(l, 14, other[14]) },
			want:   &want{BadSplice, 15, 15},
		},
		{
			name:   "fail/splice-first-line-with-log-id",
			tamper: func(l []string) []string { l[0] = other[0]; return l },
			opts:   VerifyOptions{LogID: "log-a"},
			want:   &want{BadSplice, 1, 1},
		},
		{
			name:   "ok/truncate-after-checkpoint-undetectable-without-expect-head",
			tamper: func(l []string) []string { return l[:11] },
			report: &Report{Records: 11, LastSeq: 11, LastCheckpointSeq: 11},
		},
		{
			name:   "fail/truncate-after-checkpoint-expect-head",
			tamper: func(l []string) []string { return l[:11] },
			opts:   VerifyOptions{ExpectHead: &closeCP},
			want:   &want{BadTruncated, 12, 12},
		},
		{
			name:   "fail/truncate-everything-expect-head",
			tamper: func(l []string) []string { return nil },
			opts:   VerifyOptions{ExpectHead: &closeCP},
			want:   &want{BadTruncated, 1, 1},
		},
		{
			name:   "fail/expect-head-other-hash",
			tamper: func(l []string) []string { return l },
			opts: VerifyOptions{ExpectHead: &Checkpoint{LogID: "log-a", Seq: 27,
				HeadHash: strings.Repeat("0", 64)}},
			want: &want{BadExpectHead, 23, 27},
		},
		{
			name:   "fail/expect-head-signed-by-attacker",
			tamper: func(l []string) []string { return l },
			opts: VerifyOptions{ExpectHead: func() *Checkpoint {
				cp := closeCP
				if err := sign(attacker, &cp); err != nil {
					t.Fatal(err)
				}
				return &cp
			}()},
			want: &want{BadExpectHead, 1, 0},
		},
		{
			name: "fail/rechain-with-attacker-key",
			tamper: func(l []string) []string {
				l = edit(4, `"status":200`, `"status":500`)(l)
				return rechain(t, l, 0, true, attacker)
			},
			want: &want{BadCheckpointSignature, 1, 11},
		},
		{
			name: "fail/checkpoint-signature-flipped",
			tamper: func(l []string) []string {
				r := parseLine(t, l[21])
				r.Checkpoint.Signature[0] ^= 1
				l[21], _ = encode(t, r, parseLine(t, l[20]).Hash)
				return rechain(t, l, 22, false, nil)
			},
			want: &want{BadCheckpointSignature, 12, 22},
		},
		{
			name: "fail/checkpoint-record-with-event-fields",
			tamper: func(l []string) []string {
				r := parseLine(t, l[10])
				r.Tenant, r.Operation = "tenant-a", "KeyDelete"
				l[10], _ = encode(t, r, parseLine(t, l[9]).Hash)
				return rechain(t, l, 11, false, nil)
			},
			want: &want{BadKind, 11, 11},
		},
		{
			name:   "ok/unsigned-tail",
			tamper: func(l []string) []string { return l[:27] },
			report: &Report{Records: 27, Checkpoints: 2, LastSeq: 27, LastCheckpointSeq: 22, UnsignedTail: 5},
		},
		{
			name:   "fail/torn-line-in-the-middle",
			tamper: func(l []string) []string { l[4] = l[4][:40]; return l },
			want:   &want{BadSyntax, 5, 5},
		},
		{
			name: "fail/unknown-kind",
			tamper: func(l []string) []string {
				r := parseLine(t, l[4])
				r.Kind = "admin"
				l[4], _ = encode(t, r, parseLine(t, l[3]).Hash)
				return l
			},
			want: &want{BadKind, 5, 5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.tamper(append([]string(nil), lines...))
			path := writeLines(t, t.TempDir(), "tampered.log", l)
			rep, err := verifyFile(t, path, key.Public(), tt.opts)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v; want success", err)
				}
				checkReport(t, rep, *tt.report)
				return
			}
			if err == nil {
				t.Fatalf("Verify = %+v, nil; want %s at seq %d", rep, tt.want.kind, tt.want.seq)
			}
			v := asVerifyError(t, err)
			if v.Kind != tt.want.kind || v.Seq != tt.want.seq || v.Line != tt.want.line {
				t.Errorf("Verify = %v\n(kind %s, seq %d, line %d); want kind %s, seq %d, line %d",
					err, v.Kind, v.Seq, v.Line, tt.want.kind, tt.want.seq, tt.want.line)
			}
		})
	}
}

// checkReport compares the non-zero fields of want with got.
func checkReport(t *testing.T, got, want Report) {
	t.Helper()
	if want.Records != 0 && got.Records != want.Records {
		t.Errorf("Report.Records = %d; want %d", got.Records, want.Records)
	}
	if want.Checkpoints != 0 && got.Checkpoints != want.Checkpoints {
		t.Errorf("Report.Checkpoints = %d; want %d", got.Checkpoints, want.Checkpoints)
	}
	if want.LastSeq != 0 && got.LastSeq != want.LastSeq {
		t.Errorf("Report.LastSeq = %d; want %d", got.LastSeq, want.LastSeq)
	}
	if want.LastCheckpointSeq != 0 && got.LastCheckpointSeq != want.LastCheckpointSeq {
		t.Errorf("Report.LastCheckpointSeq = %d; want %d", got.LastCheckpointSeq, want.LastCheckpointSeq)
	}
	if got.UnsignedTail != want.UnsignedTail {
		t.Errorf("Report.UnsignedTail = %d; want %d", got.UnsignedTail, want.UnsignedTail)
	}
	if want.TornBytes != 0 && got.TornBytes != want.TornBytes {
		t.Errorf("Report.TornBytes = %d; want %d", got.TornBytes, want.TornBytes)
	}
}

func TestVerifyTornFinalLine(t *testing.T) {
	dir := t.TempDir()
	key := newSigner(t)
	path := filepath.Join(dir, "a.log")
	writeLog(t, path, testOptions(key, "log-a", 10), 5)
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	last := lines[len(lines)-1]
	body := full[:len(full)-len(last)-1] // every line but the last, with newlines

	tests := []struct {
		name     string
		content  []byte
		wantTorn int64
		wantLast uint64
	}{
		{"ok/half-a-line", append(bytes.Clone(body), last[:len(last)/2]...), int64(len(last) / 2), 5},
		{"ok/whole-line-without-newline", append(bytes.Clone(body), last...), int64(len(last)), 5},
		// Zeros after the records are the writer's preallocated padding (prealloc.go).
		{"ok/zero-padding", append(bytes.Clone(full), make([]byte, 4096)...), 0, 6},
		{"ok/half-a-line-then-padding", append(append(bytes.Clone(body), last[:len(last)/2]...), make([]byte, 4096)...), int64(len(last) / 2), 5},
		{"ok/lost-block-then-a-line", append(append(append(bytes.Clone(body), make([]byte, 10)...), last...), '\n', 0, 0), int64(10 + len(last) + 1), 5},
		{"ok/garbage-with-newline", append(bytes.Clone(full), "{\"seq\":7,\"ki\n"...), 13, 6},
		{"ok/only-a-torn-line", []byte(`{"seq":1,"kind":"ev`), 19, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := Verify(bytes.NewReader(tt.content), key.Public(), VerifyOptions{})
			if err != nil {
				t.Fatalf("Verify = %v; want success with a torn tail", err)
			}
			if rep.TornBytes != tt.wantTorn || rep.LastSeq != tt.wantLast {
				t.Errorf("Verify = TornBytes %d, LastSeq %d; want %d, %d", rep.TornBytes, rep.LastSeq, tt.wantTorn, tt.wantLast)
			}
		})
	}
}

func TestVerifyRejectsBadKeys(t *testing.T) {
	tests := []struct {
		name string
		pub  any
	}{
		{"fail/nil", nil},
		{"fail/short-ed25519", []byte{1, 2, 3}},
		{"fail/rsa-unsupported", "not a key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Verify(strings.NewReader(""), tt.pub, VerifyOptions{}); err == nil {
				t.Errorf("Verify(pub %T) = nil; want an error", tt.pub)
			}
		})
	}
}
