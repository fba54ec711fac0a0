package server

// SECURITY-NOTES I4 (slow clients, HTTP/2 floods) and R4 (no resource leaks after them):
// a real server on 127.0.0.1 with short timeouts, attacked over TLS by hand-written clients,
// while a normal client keeps asking for /healthz. After each case the server's goroutines
// and open file descriptors must return to within 5 % of what they were before it, and the
// heap in use after GC to within 10 %. docs/SECURITY.md, "Slow clients, HTTP/2 floods and
// resource leaks (I4, R4)", has the figures.

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The timeouts and cap of the flood tests' server: short, so that each case takes seconds.
const (
	floodHeaderTimeout = time.Second
	floodReadTimeout   = 3 * time.Second
	floodIdleTimeout   = time.Second
	floodMaxConns      = 200
)

// startFloodServer starts a dev server with the flood tests' timeouts and cap. Its warm
// goroutines (warm.go) exit after 500 ms idle instead of 10 s, so that R4 can be checked in
// seconds after an HTTP/2 flood has started hundreds of them.
// Extra flags override these.
func startFloodServer(t *testing.T, extra ...string) *testServer {
	t.Helper()
	cfg := loadConfig(t, append([]string{"--dev", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-level", "info",
		"--read-header-timeout", floodHeaderTimeout.String(), "--read-timeout", floodReadTimeout.String(),
		"--write-timeout", floodReadTimeout.String(), "--idle-timeout", floodIdleTimeout.String(),
		"--max-connections", fmt.Sprint(floodMaxConns)}, extra...)...)
	return startWithClock(t, cfg, "", nil, func(s *Server) { s.warmKeep = 500 * time.Millisecond })
}

// usage is what R4 holds: goroutines, open file descriptors, heap in use after GC.
type usage struct {
	goroutines, fds int
	heap            uint64
}

func measureUsage(t *testing.T) usage {
	t.Helper()
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return usage{goroutines: runtime.NumGoroutine(), fds: len(fds), heap: ms.HeapInuse}
}

// within reports whether u is back to base: goroutines and FDs at most 5 % above, heap at
// most 10 % above. Fewer is not a leak: in a whole-package run, goroutines that earlier tests
// left winding down (warm stacks, closing connections) may end during the case.
func (u usage) within(base usage) bool {
	off := func(a, b int) bool { return (a-b)*100 > 5*b }
	return !off(u.goroutines, base.goroutines) && !off(u.fds, base.fds) && u.heap*100 <= base.heap*110
}

func (u usage) String() string {
	return fmt.Sprintf("%d goroutines, %d fds, heap %.1f MiB", u.goroutines, u.fds, float64(u.heap)/(1<<20))
}

// floodCase is one I4 case: run measures R4 around it.
type floodCase struct {
	ts     *testServer
	normal *http.Transport // the normal client; its connections are closed before measuring
}

// newFloodCase makes the normal client and sends its first request, which also opens the
// audit log (a file and a goroutine that stay), before any baseline is taken.
func newFloodCase(t *testing.T, ts *testServer) floodCase {
	t.Helper()
	fc := floodCase{ts: ts, normal: loopbackTransport(t, ts.caFile)}
	if _, err := fc.healthz(t); err != nil {
		t.Fatal(err)
	}
	return fc
}

// quiet closes the normal client's idle connections, waits (up to 3 s) until the server has
// no connection open and its warm goroutines have had time to exit, and measures.
func (fc floodCase) quiet(t *testing.T) usage {
	t.Helper()
	fc.normal.CloseIdleConnections()
	for deadline := time.Now().Add(3 * time.Second); fc.ts.conns.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(fc.ts.warmKeep + 100*time.Millisecond)
	return measureUsage(t)
}

// run measures before attack, runs it twice, and waits up to 5 s after it for R4.
// Goroutines and file descriptors are held to the count before the first round. The heap is
// held to what it was after the first round: the runtime keeps the descriptor of every
// goroutine it ever ran (a few hundred bytes each, never freed), so the first round that
// runs hundreds of goroutines (the attackers' and the server's) raises the heap once, by
// more than 10 % of this small server's heap; a leak instead grows it with every round.
func (fc floodCase) run(t *testing.T, attack func(t *testing.T)) {
	t.Helper()
	cold := fc.quiet(t)
	attack(t)
	warm := fc.quiet(t)
	attack(t)
	deadline := time.Now().Add(5 * time.Second)
	after := fc.quiet(t)
	base := usage{goroutines: cold.goroutines, fds: cold.fds, heap: warm.heap}
	for !after.within(base) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		after = fc.quiet(t)
	}
	settled := 5*time.Second - time.Until(deadline)
	t.Logf("R4: before %v; after round 1 %v; after round 2 %v (settled in %v)", cold, warm, after, settled.Round(time.Millisecond))
	if !after.within(base) {
		t.Errorf("R4: usage after the case %v did not return within 5s to %v (goroutines and fds at most 5%% above the count before, heap at most 10%% above the heap after round 1)", after, base)
	}
}

// healthz asks for /healthz over the normal client and returns how long it took.
func (fc floodCase) healthz(t *testing.T) (time.Duration, error) {
	t.Helper()
	hc := &http.Client{Transport: fc.normal, Timeout: 10 * time.Second}
	start := time.Now()
	resp, err := hc.Get(fc.ts.URL() + "/healthz")
	if err != nil {
		return time.Since(start), err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return time.Since(start), fmt.Errorf("GET /healthz = %d", resp.StatusCode)
	}
	return time.Since(start), nil
}

// probe asks for /healthz every 20 ms until stop is called, which returns the slowest answer.
func (fc floodCase) probe(t *testing.T) (stop func() time.Duration) {
	t.Helper()
	done := make(chan struct{})
	result := make(chan time.Duration, 1)
	var errs []error
	go func() {
		var worst time.Duration
		for {
			d, err := fc.healthz(t)
			worst = max(worst, d)
			if err != nil {
				errs = append(errs, err)
			}
			select {
			case <-done:
				result <- worst
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() time.Duration {
		close(done)
		worst := <-result
		if len(errs) > 0 {
			t.Errorf("the normal client failed during the flood: %v", errors.Join(errs...))
		}
		return worst
	}
}

// dialRaw opens a TLS connection to the server offering only proto ("http/1.1" or "h2");
// rcvbuf, if not 0, is the socket's receive buffer, set before it connects.
func dialRaw(t *testing.T, ts *testServer, proto string, rcvbuf int) *tls.Conn {
	t.Helper()
	tc, err := dialRawFrom(t, ts, nil, proto, rcvbuf)
	if err != nil {
		t.Fatal(err)
	}
	if got := tc.ConnectionState().NegotiatedProtocol; got != proto {
		t.Fatalf("negotiated %q; want %q", got, proto)
	}
	return tc
}

// dialRawFrom is dialRaw from the local address from (nil: the kernel's choice, 127.0.0.1),
// returning the error of the connect or the TLS handshake.
func dialRawFrom(t *testing.T, ts *testServer, from net.Addr, proto string, rcvbuf int) (*tls.Conn, error) {
	t.Helper()
	cfg := loopbackTransport(t, ts.caFile).TLSClientConfig.Clone()
	cfg.ServerName, cfg.NextProtos = "localhost", []string{proto}
	nd := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: from}
	if rcvbuf != 0 {
		nd.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf) })
			return errors.Join(err, serr)
		}
	}
	d := &tls.Dialer{NetDialer: nd, Config: cfg}
	c, err := d.DialContext(context.Background(), "tcp", ts.Addr().String())
	if err != nil {
		return nil, err
	}
	return c.(*tls.Conn), nil
}

// closedAfter reads c until the server closes it and returns how long that took from start;
// it fails if the server holds the connection open for longer than limit.
func closedAfter(t *testing.T, c net.Conn, start time.Time, limit time.Duration) time.Duration {
	t.Helper()
	c.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, c)
	took := time.Since(start)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server still held the connection open after %v", took.Round(time.Millisecond))
	}
	return took
}

// trickle writes one byte of s (then of fill, forever) every gap until the write fails or
// stop is closed.
func trickle(c net.Conn, s string, fill byte, gap time.Duration, stop <-chan struct{}) (sent int) {
	for {
		b := fill
		if sent < len(s) {
			b = s[sent]
		}
		if _, err := c.Write([]byte{b}); err != nil {
			return sent
		}
		sent++
		select {
		case <-stop:
			return sent
		case <-time.After(gap):
		}
	}
}

// I4: Slowloris headers, a 1 byte/s body, idle keep-alive connections (HTTP/1.1 and HTTP/2).
func TestSlowClients(t *testing.T) {
	ts := startFloodServer(t)
	fc := newFloodCase(t, ts)

	t.Run("slowloris-headers", func(t *testing.T) {
		fc.run(t, func(t *testing.T) {
			c := dialRaw(t, ts, "http/1.1", 0)
			defer c.Close()
			stopProbe := fc.probe(t)
			stop := make(chan struct{})
			sentc := make(chan int, 1)
			start := time.Now()
			go func() {
				sentc <- trickle(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ", 'a', 100*time.Millisecond, stop)
			}()
			took := closedAfter(t, c, start, 3*floodHeaderTimeout)
			close(stop)
			sent := <-sentc
			worst := stopProbe()
			t.Logf("headers at 10 bytes/s: closed after %v and %d bytes (read-header-timeout %v); normal client's slowest /healthz meanwhile %v",
				took.Round(time.Millisecond), sent, floodHeaderTimeout, worst.Round(time.Millisecond))
			if took < floodHeaderTimeout-50*time.Millisecond || took > floodHeaderTimeout+time.Second {
				t.Errorf("closed after %v; want read-header-timeout %v (+1s)", took, floodHeaderTimeout)
			}
		})
	})

	t.Run("slow-body", func(t *testing.T) {
		c := ts.Dev.Credentials
		hc := &http.Client{Transport: fc.normal, Timeout: 10 * time.Second}
		tok := tokenFor(t, hc, ts.resources().Base(), c.TenantID, c.ClientID, c.ClientSecret)
		host := strings.TrimSuffix(strings.TrimPrefix(c.VaultURL, "https://"), "/")
		fc.run(t, func(t *testing.T) {
			conn := dialRaw(t, ts, "http/1.1", 0)
			defer conn.Close()
			body := `{"value":"` + strings.Repeat("s", 100) + `"}`
			head := "PUT /secrets/slow-body" + kvVersion + " HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + tok +
				"\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n"
			start := time.Now()
			if _, err := io.WriteString(conn, head); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			sentc := make(chan int, 1)
			go func() { sentc <- trickle(conn, body, ' ', time.Second, stop) }()
			conn.SetReadDeadline(start.Add(3 * floodReadTimeout))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			answer := "no answer"
			if err == nil {
				raw, _ := io.ReadAll(resp.Body)
				answer = fmt.Sprintf("%d %s", resp.StatusCode, raw)
			}
			took := closedAfter(t, conn, start, 3*floodReadTimeout)
			close(stop)
			sent := <-sentc
			t.Logf("body at 1 byte/s: %s, closed after %v and %d of %d body bytes (read-timeout %v)", answer, took.Round(time.Millisecond), sent, len(body), floodReadTimeout)
			if took < floodReadTimeout-50*time.Millisecond || took > floodReadTimeout+time.Second {
				t.Errorf("closed after %v; want read-timeout %v (+1s)", took, floodReadTimeout)
			}
			if err == nil && resp.StatusCode < 400 {
				t.Errorf("the slow PUT was answered %s; want no answer or an error", answer)
			}
		})
		if status, raw := kvCall(t, hc, tok, "GET", c.VaultURL+"secrets/slow-body"+kvVersion, ""); status != 404 {
			t.Errorf("GET the slow secret = %d %s; want 404, nothing stored", status, raw)
		}
	})

	t.Run("idle-keep-alive", func(t *testing.T) {
		fc.run(t, func(t *testing.T) {
			c := dialRaw(t, ts, "http/1.1", 0)
			defer c.Close()
			io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			start := time.Now()
			took := closedAfter(t, c, start, 3*floodIdleTimeout)
			t.Logf("HTTP/1.1 kept alive after a request: closed after %v idle (idle-timeout %v)", took.Round(time.Millisecond), floodIdleTimeout)
			if took < floodIdleTimeout-50*time.Millisecond || took > floodIdleTimeout+time.Second {
				t.Errorf("closed after %v; want idle-timeout %v (+1s)", took, floodIdleTimeout)
			}

			h2c := dialRaw(t, ts, "h2", 0)
			defer h2c.Close()
			start = time.Now()
			io.WriteString(h2c, http2.ClientPreface)
			fr := http2.NewFramer(h2c, h2c)
			fr.WriteSettings()
			var goaway time.Duration // when GOAWAY came
			h2c.SetReadDeadline(start.Add(3 * floodIdleTimeout))
			for {
				f, err := fr.ReadFrame()
				if err != nil {
					break
				}
				if _, ok := f.(*http2.GoAwayFrame); ok {
					goaway = time.Since(start)
				}
				if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
					fr.WriteSettingsAck()
				}
			}
			took = time.Since(start)
			t.Logf("HTTP/2 without streams: GOAWAY after %v idle, closed after %v (Go waits 1s after GOAWAY)", goaway.Round(time.Millisecond), took.Round(time.Millisecond))
			if goaway < floodIdleTimeout-50*time.Millisecond || goaway > floodIdleTimeout+time.Second || took > goaway+2*time.Second {
				t.Errorf("HTTP/2: GOAWAY after %v, closed after %v; want GOAWAY after idle-timeout %v (+1s), then the close", goaway, took, floodIdleTimeout)
			}
		})
	})
}

// I4: more idle connections than max-connections: 300 TLS connections that send nothing
// after the handshake against a cap of 200.
func TestConnectionCap(t *testing.T) {
	ts := startFloodServer(t)
	fc := newFloodCase(t, ts)
	fc.run(t, func(t *testing.T) { idleFlood(t, fc, 300, floodMaxConns, true) })
}

// I4: 10,000 idle connections against the default cap of 4096. They are TCP connections
// that do not even start the TLS handshake: 10,000 handshakes would take this shared 2-core
// machine's CPU for seconds, and an unfinished handshake holds a slot the same way (until
// read-header-timeout). 10,000 client and 4,096 server sockets fit the 20,000 open files
// allowed here.
func TestTenThousandIdleConnections(t *testing.T) {
	// All 10,000 come from 127.0.0.1: the per-address cap is off to test the global one.
	ts := startFloodServer(t, "--max-connections", "4096", "--max-connections-per-address", "0")
	fc := newFloodCase(t, ts)
	fc.run(t, func(t *testing.T) { idleFlood(t, fc, 10000, 4096, false) })
}

// idleFlood opens n connections that send nothing after the TLS handshake (or, without
// handshake, nothing at all), and checks that the server holds at most maxConns of them at
// once and still serves the normal client, after the idle ones ahead of it are cut.
func idleFlood(t *testing.T, fc floodCase, n, maxConns int, handshake bool) {
	cfg := loopbackTransport(t, fc.ts.caFile).TLSClientConfig.Clone()
	cfg.ServerName, cfg.NextProtos = "localhost", []string{"http/1.1"}
	var (
		mu     sync.Mutex
		conns  []net.Conn
		wg     sync.WaitGroup
		failed int
	)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	start := time.Now()
	// At most 1,000 dialers, so that the goroutines the test runs, whose descriptors the
	// runtime keeps (see floodCase.run), do not depend on timing.
	var next atomic.Int64
	for range min(n, 1000) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				c, err := net.DialTimeout("tcp", fc.ts.Addr().String(), 10*time.Second)
				mu.Lock()
				if err != nil {
					failed++
				} else {
					conns = append(conns, c)
				}
				mu.Unlock()
				if err == nil && handshake {
					tc := tls.Client(c, cfg)
					tc.SetDeadline(time.Now().Add(3 * floodHeaderTimeout))
					tc.Handshake() // past the cap it waits for the server's Accept
				}
			}
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	// The peak of open connections while the idle clients connect and are cut.
	var peak int64
	watch := func(until time.Duration) {
		for time.Since(start) < until {
			peak = max(peak, fc.ts.conns.Load())
			time.Sleep(2 * time.Millisecond)
		}
	}
	watch(floodHeaderTimeout / 2)
	served, err := fc.healthz(t)
	if err != nil {
		t.Errorf("the normal client behind %d idle connections: %v", n, err)
	}
	watch(2 * floodHeaderTimeout)
	for done := false; !done; {
		select {
		case <-allDone:
			done = true
		default:
			watch(time.Since(start) + 50*time.Millisecond)
		}
	}
	t.Logf("%d idle connections (TLS handshake %v) against max-connections %d: %d connected (%d dials failed) in %v; at most %d open at once; the normal client, behind them, served in %v (read-header-timeout %v)",
		n, handshake, maxConns, len(conns), failed, time.Since(start).Round(time.Millisecond), peak, served.Round(time.Millisecond), floodHeaderTimeout)
	if peak > int64(maxConns) || peak < int64(maxConns)*9/10 {
		t.Errorf("open connections peaked at %d; want the cap %d reached and never passed", peak, maxConns)
	}
	if served > 2*floodHeaderTimeout+time.Second {
		t.Errorf("the normal client waited %v; want at most twice read-header-timeout %v (+1s), when idle connections ahead of it are cut", served, floodHeaderTimeout)
	}
}

// h2Attack is what an HTTP/2 attack writes with: the framer (buffered: flush sends), an
// HPACK encoder, and the count of frames sent, which the attack keeps.
type h2Attack struct {
	fr    *http2.Framer
	flush func() error
	enc   func(...hpack.HeaderField) []byte
	sent  atomic.Int64
}

// h2Outcome is how the attacking connection ended.
type h2Outcome struct {
	sent, sentAtGoaway int64         // frames sent in all, and when GOAWAY came
	sendTook, goawayAt time.Duration // until the attack stopped sending (its writes failed, or it was done), until GOAWAY
	took               time.Duration // until the server closed the connection (or the reads gave up)
	goaway             http2.ErrCode // the GOAWAY's code, if one came
	gotAway            bool
	frames             map[string]int // frames from the server by type
	closed             bool           // the server closed the connection
}

// h2Flood is one HTTP/2 attack on a fresh connection. The server's frames are read
// meanwhile, or (deaf) only once send returns, from a socket with a small receive buffer, so
// that what the server writes piles up. It returns when the server closes the connection,
// or 1.5 s after send returns.
func h2Flood(t *testing.T, ts *testServer, limit time.Duration, deaf bool, send func(a *h2Attack)) *h2Outcome {
	t.Helper()
	rcvbuf := 0
	if deaf {
		rcvbuf = 4096
	}
	c := dialRaw(t, ts, "h2", rcvbuf)
	defer c.Close()
	start := time.Now()
	c.SetDeadline(start.Add(limit))
	bw := bufio.NewWriterSize(c, 64<<10)
	io.WriteString(bw, http2.ClientPreface)
	a := &h2Attack{fr: http2.NewFramer(bw, c), flush: bw.Flush}
	a.fr.WriteSettings()
	var encBuf strings.Builder
	he := hpack.NewEncoder(&encBuf)
	a.enc = func(fields ...hpack.HeaderField) []byte {
		encBuf.Reset()
		for _, f := range fields {
			he.WriteField(f)
		}
		return []byte(encBuf.String())
	}
	out := &h2Outcome{frames: map[string]int{}}
	readDone, startRead := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(readDone)
		<-startRead
		for {
			f, err := a.fr.ReadFrame()
			if err != nil {
				var ne net.Error
				out.closed = !(errors.As(err, &ne) && ne.Timeout())
				return
			}
			out.frames[f.Header().Type.String()]++
			if g, ok := f.(*http2.GoAwayFrame); ok && !out.gotAway {
				out.gotAway, out.goaway, out.goawayAt, out.sentAtGoaway = true, g.ErrCode, time.Since(start), a.sent.Load()
			}
		}
	}()
	if !deaf {
		close(startRead)
	}
	send(a)
	bw.Flush()
	out.sendTook, out.sent = time.Since(start), a.sent.Load()
	c.SetReadDeadline(time.Now().Add(1500 * time.Millisecond)) // the server's last answers, or its close
	if deaf {
		close(startRead)
	}
	<-readDone
	out.took = time.Since(start)
	return out
}

// controlFlood writes a million control frames with write, flushing every thousand, until a
// write fails.
func controlFlood(a *h2Attack, write func() error) {
	for i := range 1000000 {
		if write() != nil || (i%1000 == 999 && a.flush() != nil) {
			return
		}
		a.sent.Add(1)
	}
}

// I4: HTTP/2 rapid reset, CONTINUATION flood, SETTINGS flood (and a PING flood); the
// server survives, keeps serving the normal client and closes or outlasts the attacker.
func TestHTTP2Floods(t *testing.T) {
	ts := startFloodServer(t)
	fc := newFloodCase(t, ts)
	request := []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: "localhost:" + ts.resources().port}, {Name: ":path", Value: "/healthz"}}

	for _, tc := range []struct {
		name string
		send func(a *h2Attack)
		// closes: the server must close the connection (else it must only survive it)
		closes bool
		deaf   bool // the attacker reads nothing until it has sent everything
		// goawayWithin, if not 0, is how many frames the attacker may have sent when GOAWAY
		// comes: most are still in socket buffers, which hold a few MB in the milliseconds
		// GOAWAY takes (they can grow to 36 MB here, tcp_rmem and tcp_wmem).
		goawayWithin int64
	}{
		// 10,000 requests each cancelled at once (CVE-2023-44487): Go runs at most
		// MaxConcurrentStreams (250) handlers per connection and closes it with
		// ENHANCE_YOUR_CALM once more than 1,000 wait; whether they do depends on how fast
		// the handlers finish, so only survival is required.
		{"rapid-reset", func(a *h2Attack) {
			block := a.enc(request...)
			for i := range 10000 {
				id := uint32(2*i + 1)
				if a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}) != nil ||
					a.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil || (i%100 == 99 && a.flush() != nil) {
					return
				}
				a.sent.Add(2)
			}
		}, false, false, 0},
		// A header block that never ends (CVE-2023-45288): Go refuses it with
		// PROTOCOL_ERROR once it passes twice the header limit (2 × 68 KiB, 140 frames of
		// 1 KB); with a 64 MiB limit it would take 70,000.
		{"continuation-flood", func(a *h2Attack) {
			if a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: a.enc(request...), EndStream: true}) != nil {
				return
			}
			a.sent.Add(1)
			frag := a.enc(hpack.HeaderField{Name: "x-flood", Value: strings.Repeat("c", 1000), Sensitive: true})
			for range 100000 { // 100 MB of header block
				if a.fr.WriteContinuation(1, false, frag) != nil || a.flush() != nil {
					return
				}
				a.sent.Add(1)
			}
		}, true, false, 30000},
		// Go answers any number of SETTINGS with one pending ACK (a flag, not a queue), so
		// the flood costs only the CPU to read it; the connection, with no stream open,
		// ends at idle-timeout.
		{"settings-flood", func(a *h2Attack) {
			controlFlood(a, func() error { return a.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535}) })
		}, false, true, 0},
		// Each PING needs an answer of its own: an attacker that does not read them fills
		// the server's queue of control frames, which Go closes past 10,000.
		{"ping-flood", func(a *h2Attack) {
			controlFlood(a, func() error { return a.fr.WritePing(false, [8]byte{1}) })
		}, true, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc.run(t, func(t *testing.T) {
				stopProbe := fc.probe(t)
				out := h2Flood(t, ts, 15*time.Second, tc.deaf, tc.send)
				worst := stopProbe()
				after, err := fc.healthz(t)
				t.Logf("%s: %d frames sent in %v; GOAWAY %v %v after %v and %d frames; closed %v after %v; server frames %v; normal client's slowest /healthz during it %v, after it %v",
					tc.name, out.sent, out.sendTook.Round(time.Millisecond), out.gotAway, out.goaway, out.goawayAt.Round(time.Millisecond), out.sentAtGoaway,
					out.closed, out.took.Round(time.Millisecond), out.frames, worst.Round(time.Millisecond), after.Round(time.Millisecond))
				if err != nil {
					t.Fatalf("after the flood the normal client failed: %v", err)
				}
				// 2 s: a million SETTINGS take the server's CPU for about a second, and
				// this machine's two cores are shared (up to 0.84 s seen).
				if worst > 2*time.Second {
					t.Errorf("the normal client waited up to %v during the flood; want at most 2s", worst)
				}
				if tc.goawayWithin > 0 && (!out.gotAway || out.sentAtGoaway > tc.goawayWithin) {
					t.Errorf("GOAWAY %v after %d frames; want one within %d", out.gotAway, out.sentAtGoaway, tc.goawayWithin)
				}
				if tc.closes && !out.closed {
					t.Errorf("the server kept the flooding connection open for %v", out.took)
				}
			})
		})
	}
}
