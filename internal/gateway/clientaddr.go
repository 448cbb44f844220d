package gateway

import (
	"net/netip"
	"strings"
)

// clientAddr returns the client's address: the connection's peer, unless
// that peer is a trusted proxy, in which case the rightmost address of
// X-Forwarded-For that is not a trusted proxy (or the leftmost one when
// all are). An unparsable entry stops the walk at the last trusted hop: a
// trusted proxy appends what it saw, so anything further left is the
// client's word. The result has no port; "" when remoteAddr is not an
// address (a test request).
func clientAddr(remoteAddr string, xff []string, trusted []netip.Prefix) string {
	ap, err := netip.ParseAddrPort(remoteAddr)
	var peer netip.Addr
	if err == nil {
		peer = ap.Addr().Unmap()
	} else if a, err := netip.ParseAddr(remoteAddr); err == nil {
		peer = a.Unmap()
	} else {
		return ""
	}
	if len(trusted) == 0 || len(xff) == 0 || !isTrusted(peer, trusted) {
		return peer.String()
	}
	client := peer
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return client.String()
			}
			client = a.Unmap()
			if !isTrusted(client, trusted) {
				return client.String()
			}
		}
	}
	return client.String()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
