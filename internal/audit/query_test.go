package audit

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestQuery(t *testing.T) {
	key := newSigner(t)
	var out bytes.Buffer
	l, err := NewWriterSink(&out, testOptions(key, "log-a", 4))
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	events := []struct{ tenant, op string }{
		{"tenant-a", "KeySign"}, {"tenant-b", "KeySign"}, {"tenant-a", "SecretGet"},
		{"tenant-b", "SecretGet"}, {"tenant-a", "KeySign"}, {"", "SysSeal"},
	}
	for i, e := range events {
		ev := testEvent(i)
		ev.Time = base.Add(time.Duration(i) * time.Minute)
		ev.Tenant, ev.Operation = e.tenant, e.op
		if err := l.Append(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil { // records: 4 events, checkpoint, 2 events, checkpoint
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		f       Filter
		wantIDs []string // CorrelationIDs, or kinds for non-event records
		wantErr error
	}{
		{name: "tenant/sees-only-own", f: Filter{Tenant: "tenant-a"}, wantIDs: []string{"req-0000", "req-0002", "req-0004"}},
		{name: "tenant/other-tenant", f: Filter{Tenant: "tenant-b"}, wantIDs: []string{"req-0001", "req-0003"}},
		{name: "tenant/unknown-sees-nothing", f: Filter{Tenant: "tenant-c"}},
		{name: "tenant/operation", f: Filter{Tenant: "tenant-a", Operation: "KeySign"}, wantIDs: []string{"req-0000", "req-0004"}},
		{name: "tenant/since-until", f: Filter{Tenant: "tenant-a", Since: base.Add(time.Minute), Until: base.Add(4 * time.Minute)}, wantIDs: []string{"req-0002"}},
		{name: "tenant/limit", f: Filter{Tenant: "tenant-a", Limit: 2}, wantIDs: []string{"req-0000", "req-0002"}},
		{name: "platform/everything", f: Filter{Platform: true},
			wantIDs: []string{"req-0000", "req-0001", "req-0002", "req-0003", "checkpoint", "req-0004", "req-0005", "checkpoint"}},
		{name: "platform/one-tenant", f: Filter{Platform: true, Tenant: "tenant-b"}, wantIDs: []string{"req-0001", "req-0003"}},
		{name: "fail/no-tenant", f: Filter{}, wantErr: ErrTenantRequired},
		{name: "fail/no-tenant-with-operation", f: Filter{Operation: "SysSeal"}, wantErr: ErrTenantRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := Query(bytes.NewReader(out.Bytes()), tt.f)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Query(%+v) = %v; want %v", tt.f, err, tt.wantErr)
			}
			var got []string
			for _, r := range recs {
				if r.Kind == KindEvent {
					got = append(got, r.CorrelationID)
				} else {
					got = append(got, r.Kind)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.wantIDs, ",") {
				t.Errorf("Query(%+v) = %v; want %v", tt.f, got, tt.wantIDs)
			}
		})
	}
}

func TestQueryBadLines(t *testing.T) {
	key := newSigner(t)
	var out bytes.Buffer
	l, err := NewWriterSink(&out, testOptions(key, "log-a", 100))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := l.Append(testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	good := out.String()
	tests := []struct {
		name    string
		content string
		want    int // records for Tenant tenant-a; -1 for an error
	}{
		{"ok/torn-final-line-skipped", good + `{"seq":5,"kind":"ev`, 3},
		{"ok/garbage-final-line-skipped", good + "xx\n", 3},
		{"fail/garbage-in-the-middle", "xx\n" + good, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := Query(strings.NewReader(tt.content), Filter{Tenant: "tenant-a"})
			switch {
			case tt.want < 0 && err == nil:
				t.Errorf("Query = %d records, nil; want an error", len(recs))
			case tt.want >= 0 && (err != nil || len(recs) != tt.want):
				t.Errorf("Query = %d records, %v; want %d", len(recs), err, tt.want)
			}
		})
	}
}
