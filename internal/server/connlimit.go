package server

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/coffer-kms/coffer/internal/failcount"
)

// addrLimitListener caps the connections each source IP address holds open at once
// (max-connections-per-address): a connection accepted past its address's cap is closed at
// once, before the TLS handshake, and Accept goes on to the next one, so it never reaches
// the server. It sits inside netutil.LimitListener (max-connections): a refused connection
// is closed while the Accept that holds a global slot is still looking for one to return,
// so it takes no slot of its own. The count of an address is released when its connection
// closes (addrConn.Close, once), as the global cap's is.
type addrLimitListener struct {
	net.Listener
	max int
	// refused is called, in the accept loop, for each connection closed over the cap.
	refused func(src netip.Prefix)

	mu   sync.Mutex
	open map[netip.Prefix]int // connections open by source (failcount.SourceKey); absent when none
}

func newAddrLimitListener(ln net.Listener, max int, refused func(netip.Prefix)) *addrLimitListener {
	return &addrLimitListener{Listener: ln, max: max, refused: refused, open: map[netip.Prefix]int{}}
}

// Accept returns the next connection whose address is under its cap.
func (l *addrLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip, ok := sourceIP(c.RemoteAddr())
		if !ok { // not an IP connection: nothing to key it by
			return c, nil
		}
		if l.take(ip) {
			return &addrConn{Conn: c, l: l, ip: ip}, nil
		}
		c.Close()
		l.refused(ip)
	}
}

// take counts one more connection of ip, unless it already holds max.
func (l *addrLimitListener) take(ip netip.Prefix) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip] >= l.max {
		return false
	}
	l.open[ip]++
	return true
}

func (l *addrLimitListener) release(ip netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip) // the map holds only addresses with connections open
	}
}

// holding is how many connections ip holds open now.
func (l *addrLimitListener) holding(ip netip.Prefix) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[ip]
}

// addrConn releases its address's count on its first Close.
type addrConn struct {
	net.Conn
	l    *addrLimitListener
	ip   netip.Prefix
	once sync.Once
}

func (c *addrConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}

// sourceIP is the key of a connection's source (failcount.SourceKey: the IPv4 address, or
// the IPv6 address's /64; port and zone dropped, an IPv4-mapped IPv6 address as IPv4).
func sourceIP(a net.Addr) (netip.Prefix, bool) {
	var ip netip.Addr
	if ta, ok := a.(*net.TCPAddr); ok {
		ip = ta.AddrPort().Addr()
	} else if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		ip = ap.Addr()
	}
	return failcount.SourceKey(ip), ip.IsValid()
}

// limitPerAddress wraps ln in the per-address cap, if max-connections-per-address is set.
// Refusals are counted in coffer_connections_refused_total{reason="per-address"} and logged
// at most once per address and minute.
func (s *Server) limitPerAddress(ln net.Listener) net.Listener {
	if s.cfg.MaxConnectionsPerAddress == 0 {
		return ln
	}
	logged := failcount.New(s.now, time.Minute) // an address "fails" once it is logged
	s.perAddr = newAddrLimitListener(ln, s.cfg.MaxConnectionsPerAddress, func(src netip.Prefix) {
		s.metrics.connRefused.WithLabelValues(connRefusedPerAddress).Inc()
		key := src.String()
		if logged.Blocked(key, 1) == 0 {
			logged.Fail(key)
			s.log.Warn("connection refused: the source address holds max-connections-per-address connections (further refusals of this address are not logged for a minute; coffer_connections_refused_total counts them)",
				"source", key, "max_connections_per_address", s.cfg.MaxConnectionsPerAddress)
		}
	})
	return s.perAddr
}
