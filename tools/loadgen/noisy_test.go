package main

import (
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestPaced: an open-loop row sends at most rate × duration calls, sorts the 200s'
// latencies, and counts 429s (noting one without Key Vault's shape) and other answers apart.
func TestPaced(t *testing.T) {
	var n atomic.Int64
	good := http.Header{"Retry-After": {"1"}}
	r := paced(200, 100*time.Millisecond, 4, func() (int, http.Header, []byte, error) {
		switch n.Add(1) % 4 {
		case 0:
			return 429, good, []byte(`{"error":{"code":"Throttled","message":"m"}}`), nil
		case 1:
			return 429, http.Header{}, []byte(`{}`), nil
		case 2:
			return 0, nil, nil, errors.New("boom")
		}
		return 200, nil, nil, nil
	})
	if r.sent < 4 || r.sent > 21 || r.sent != r.ok+r.throttled+r.other {
		t.Errorf("paced(200/s, 100ms) sent %d (%d ok, %d throttled, %d other); want 4–21, all counted", r.sent, r.ok, r.throttled, r.other)
	}
	if len(r.lat) != int(r.ok) || r.badThrottle == "" || r.firstOther != "boom" {
		t.Errorf("paced: %d latencies for %d 200s, badThrottle %q, firstOther %q", len(r.lat), r.ok, r.badThrottle, r.firstOther)
	}
	for i := 1; i < len(r.lat); i++ {
		if r.lat[i] < r.lat[i-1] {
			t.Fatalf("latencies are not sorted at %d", i)
		}
	}
}

func TestThrottleShape(t *testing.T) {
	body := []byte(`{"error":{"code":"Throttled","message":"Retry after 1 seconds."}}`)
	if msg := throttleShape(http.Header{"Retry-After": {"2"}}, body); msg != "" {
		t.Errorf("Key Vault's 429 = %q; want accepted", msg)
	}
	for _, c := range []struct {
		ra   string
		body string
	}{{"", string(body)}, {"0", string(body)}, {"soon", string(body)}, {"1", `{"error":{"code":"TooManyRequests"}}`}, {"1", "busy"}} {
		if throttleShape(http.Header{"Retry-After": {c.ra}}, []byte(c.body)) == "" {
			t.Errorf("429 with Retry-After %q and body %s accepted; want refused", c.ra, c.body)
		}
	}
}

func TestMedian(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median(3,1,2) = %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median(4,1,2,3) = %v", m)
	}
}
