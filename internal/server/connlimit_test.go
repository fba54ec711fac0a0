package server

import (
	"net"
	"net/netip"
	"testing"
)

// sourceIP keys a connection by its IP alone, an IPv6 one by its /64: the port and an IPv6
// zone do not make another source, nor does another address of the same /64, and an IPv4
// client of a dual-stack listener (::ffff:a.b.c.d) counts as a.b.c.d.
func TestSourceIP(t *testing.T) {
	for _, tt := range []struct {
		name string
		addr net.Addr
		want string // "" for no key
	}{
		{"ok/ipv4", &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 4431}, "192.0.2.7/32"},
		{"ok/ipv4-4-byte", &net.TCPAddr{IP: net.IP{192, 0, 2, 7}, Port: 1}, "192.0.2.7/32"},
		{"ok/ipv4-mapped-ipv6", &net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 4432}, "192.0.2.7/32"},
		{"ok/ipv6", &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443}, "2001:db8::/64"},
		{"ok/ipv6-same-64", &net.TCPAddr{IP: net.ParseIP("2001:db8::ffff:1:2:3"), Port: 443}, "2001:db8::/64"},
		{"ok/ipv6-other-64", &net.TCPAddr{IP: net.ParseIP("2001:db8:0:1::1"), Port: 443}, "2001:db8:0:1::/64"},
		{"ok/ipv6-zone", &net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 443, Zone: "eth0"}, "fe80::/64"},
		{"ok/other-net-addr", &net.UDPAddr{IP: net.ParseIP("::ffff:10.0.0.1"), Port: 53}, "10.0.0.1/32"},
		{"fail/unix", &net.UnixAddr{Name: "/run/coffer.sock", Net: "unix"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ip, ok := sourceIP(tt.addr)
			switch {
			case tt.want == "" && ok:
				t.Errorf("sourceIP(%v) = %v; want no key", tt.addr, ip)
			case tt.want != "" && (!ok || ip != netip.MustParsePrefix(tt.want)):
				t.Errorf("sourceIP(%v) = %v, %v; want %s", tt.addr, ip, ok, tt.want)
			}
		})
	}
}
