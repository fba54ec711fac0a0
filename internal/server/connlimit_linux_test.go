package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Per-address connection cap (I4, one address must not hold every max-connections slot).
const (
	perAddrCap   = 8
	perAddrExtra = 5
)

// TestConnectionsPerAddress: one source address (127.0.0.2) opens perAddrCap+perAddrExtra
// TLS connections against a per-address cap of perAddrCap: the first perAddrCap are served
// and held, the others closed at once, before the TLS handshake, and counted in
// coffer_connections_refused_total{reason="per-address"}; meanwhile a client from
// 127.0.0.3 is served at once (and the normal client from 127.0.0.1 throughout). Once the
// address closes its connections its count is released: the second round, and the
// reconnect below, get the full cap again. R4 holds around the two rounds.
func TestConnectionsPerAddress(t *testing.T) {
	// Timeouts longer than the flood tests' 1 s, so that the held connections stay open
	// while the test looks at them.
	ts := startFloodServer(t, "--max-connections-per-address", fmt.Sprint(perAddrCap),
		"--read-header-timeout", "5s", "--read-timeout", "5s", "--idle-timeout", "5s")
	fc := newFloodCase(t, ts)
	flooder := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}
	other := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}
	flooderIP := netip.MustParsePrefix("127.0.0.2/32")

	round := 0
	fc.run(t, func(t *testing.T) {
		round++
		refusedBefore := refusedPerAddress(t, fc)
		stopProbe := fc.probe(t)
		held := holdServed(t, ts, flooder, perAddrCap)
		defer closeAll(held)

		var worst time.Duration // the slowest refusal
		var refusal error       // how the last one ended
		for i := range perAddrExtra {
			start := time.Now()
			c, err := dialRawFrom(t, ts, flooder, "http/1.1", 0)
			took := time.Since(start)
			worst, refusal = max(worst, took), err
			if err == nil {
				c.Close()
				t.Fatalf("connection %d of 127.0.0.2 completed its TLS handshake; want it closed (cap %d)", perAddrCap+i+1, perAddrCap)
			}
			if took > time.Second {
				t.Errorf("connection %d of 127.0.0.2 refused after %v (%v); want at once", perAddrCap+i+1, took, err)
			}
		}
		if n := ts.perAddr.holding(flooderIP); n != perAddrCap {
			t.Errorf("127.0.0.2 holds %d connections; want the cap %d", n, perAddrCap)
		}
		refused := refusedPerAddress(t, fc) - refusedBefore

		// Another address, while 127.0.0.2 is at its cap.
		start := time.Now()
		oc, err := dialRawFrom(t, ts, other, "http/1.1", 0)
		if err == nil {
			err = rawHealthz(oc)
			oc.Close()
		}
		otherTook := time.Since(start)
		if err != nil {
			t.Errorf("127.0.0.3, while 127.0.0.2 holds its cap: %v", err)
		}
		worstNormal := stopProbe()

		// Released on close: the address holds nothing once its connections are closed.
		closeAll(held)
		held = nil
		deadline := time.Now().Add(3 * time.Second)
		for ts.perAddr.holding(flooderIP) > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		left := ts.perAddr.holding(flooderIP)
		t.Logf("round %d: 127.0.0.2 held %d served connections; %d more refused, the slowest in %v (error: %v); coffer_connections_refused_total{reason=\"per-address\"} +%d; 127.0.0.3 served in %v; normal client's slowest /healthz %v; after the close 127.0.0.2 holds %d",
			round, perAddrCap, perAddrExtra, worst.Round(time.Microsecond), refusal, refused, otherTook.Round(time.Microsecond), worstNormal.Round(time.Millisecond), left)
		if refused != perAddrExtra {
			t.Errorf("coffer_connections_refused_total{reason=\"per-address\"} grew by %d; want %d", refused, perAddrExtra)
		}
		if otherTook > time.Second {
			t.Errorf("127.0.0.3 served after %v; want at once", otherTook)
		}
		if left != 0 {
			t.Errorf("127.0.0.2 still counted with %d connections 3 s after closing them all", left)
		}
	})
	// And once more after the rounds: the count is back, the whole cap is served again.
	closeAll(holdServed(t, ts, flooder, perAddrCap))
	if logs := strings.Count(ts.logs.String(), "max-connections-per-address connections"); logs != 1 {
		t.Errorf("%d log lines for 127.0.0.2's refusals; want 1 (at most one per address and minute)", logs)
	}
}

// holdServed opens n connections from from, each served one GET /healthz and kept open.
func holdServed(t *testing.T, ts *testServer, from net.Addr, n int) []net.Conn {
	t.Helper()
	var held []net.Conn
	for i := range n {
		c, err := dialRawFrom(t, ts, from, "http/1.1", 0)
		if err == nil {
			held = append(held, c)
			err = rawHealthz(c)
		}
		if err != nil {
			closeAll(held)
			t.Fatalf("connection %d of %v (cap %d): %v", i+1, from, n, err)
		}
	}
	return held
}

// rawHealthz sends GET /healthz on an HTTP/1.1 connection and reads a 200, keeping it open.
func rawHealthz(c net.Conn) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET /healthz = %d", resp.StatusCode)
	}
	return nil
}

func closeAll(cs []net.Conn) {
	for _, c := range cs {
		c.Close()
	}
}

// refusedPerAddress reads coffer_connections_refused_total{reason="per-address"}.
// It asks over the normal client, whose connection fc.quiet closes before R4 measures.
func refusedPerAddress(t *testing.T, fc floodCase) int {
	t.Helper()
	const series = `coffer_connections_refused_total{reason="per-address"} `
	resp, err := (&http.Client{Transport: fc.normal, Timeout: 10 * time.Second}).Get(fc.ts.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	line := grepLines(string(raw), series)
	n, err := strconv.Atoi(strings.TrimPrefix(line, series))
	if err != nil {
		t.Fatalf("/metrics: %q; want one %s<count>", line, series)
	}
	return n
}
