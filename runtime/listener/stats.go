package listener

import (
	"crypto/tls"
	"net"
	"sync/atomic"
	"time"
)

// TLS versions the counters tell apart, by index; versionOther is anything
// else a client may offer at most (SSL 3.0, a version not yet known).
var versionNames = [...]string{"1.0", "1.1", "1.2", "1.3", "other"}

const versionOther = len(versionNames) - 1

func versionIndex(v uint16) int {
	switch v {
	case tls.VersionTLS10:
		return 0
	case tls.VersionTLS11:
		return 1
	case tls.VersionTLS12:
		return 2
	case tls.VersionTLS13:
		return 3
	}
	return versionOther
}

// highestOffered is the index of the highest version a ClientHello offers.
func highestOffered(versions []uint16) int {
	best, bestIdx := uint16(0), versionOther
	for _, v := range versions {
		if i := versionIndex(v); i != versionOther && v > best {
			best, bestIdx = v, i
		}
	}
	return bestIdx
}

// counters are a listener's running totals. They live as long as its id
// does, across in-place changes and re-binds, and cost an atomic add each.
type counters struct {
	accepted        atomic.Uint64
	refusedListener atomic.Uint64 // at max_connections
	refusedClient   atomic.Uint64 // at max_connections_per_ip
	// handshakes by negotiated version and [full, resumed]; failures by
	// the highest version the client offered.
	handshakes [len(versionNames)][2]atomic.Uint64
	failures   [len(versionNames)]atomic.Uint64
}

// Stats is a snapshot of one listener: what it holds now and its totals
// since the id was first applied.
type Stats struct {
	ID, Protocol, Address string
	// Open is the connections open now.
	Open int64
	// Accepted counts connections taken past the limits; RefusedListener
	// and RefusedClient those turned away at max_connections and at
	// max_connections_per_ip.
	Accepted, RefusedListener, RefusedClient uint64
	// Handshakes counts completed TLS handshakes (implicit TLS and
	// STARTTLS alike); HandshakeFailures those that got a ClientHello and
	// never completed, by the highest version the client offered.
	Handshakes        []HandshakeCount
	HandshakeFailures []HandshakeCount
	// Certificates are the expiries of the certificates the listener
	// serves, the default first; none without TLS.
	Certificates []CertificateExpiry
}

// CertificateExpiry is when one of a listener's certificates expires.
type CertificateExpiry struct {
	// Source names the keystore (and alias) or PEM files.
	Source   string
	NotAfter time.Time
}

// HandshakeCount is a number of TLS handshakes of one version ("1.2",
// "1.3", ...; "other" for what a client offered beyond those).
type HandshakeCount struct {
	Version string
	Resumed bool
	N       uint64
}

func (c *counters) snapshot(s *Stats) {
	s.Accepted = c.accepted.Load()
	s.RefusedListener = c.refusedListener.Load()
	s.RefusedClient = c.refusedClient.Load()
	for v, name := range versionNames {
		for r, resumed := range []bool{false, true} {
			if n := c.handshakes[v][r].Load(); n > 0 {
				s.Handshakes = append(s.Handshakes, HandshakeCount{Version: name, Resumed: resumed, N: n})
			}
		}
		if n := c.failures[v].Load(); n > 0 {
			s.HandshakeFailures = append(s.HandshakeFailures, HandshakeCount{Version: name, N: n})
		}
	}
}

// Stats reports every listener.
func (m *Manager) Stats() []Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Stats, 0, len(m.listeners))
	for id, l := range m.listeners {
		s := Stats{ID: id, Protocol: l.cfg.Protocol, Address: l.sock.Addr().String(), Open: l.conns.Load()}
		l.counters.snapshot(&s)
		if l.certs != nil {
			for _, src := range l.certs.sources {
				if c := src.loaded.Load(); c != nil && c.Leaf != nil {
					name := src.name()
					if src.key.Alias != "" {
						name += " alias " + src.key.Alias
					}
					s.Certificates = append(s.Certificates, CertificateExpiry{Source: name, NotAfter: c.Leaf.NotAfter})
				}
			}
		}
		out = append(out, s)
	}
	return out
}

// countHandshakes wraps a listener's TLS config so that every handshake
// on it, the implicit-TLS ones the listener runs and the STARTTLS ones the
// front ends run, is counted: GetConfigForClient marks the connection as
// having sent a ClientHello and hands out a copy of the config whose
// VerifyConnection marks it handshaken. A marked connection that closes
// unhandshaken counts as a failure. Session tickets stay the outer
// config's (crypto/tls keeps the original config's ticket keys), so
// resumption works as before; the copy costs well under a microsecond
// against a handshake's tens.
func countHandshakes(cfg *tls.Config, c *counters) *tls.Config {
	base := cfg
	outer := cfg.Clone()
	outer.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		inner := base
		if base.GetConfigForClient != nil {
			var err error
			if inner, err = base.GetConfigForClient(hello); err != nil || inner == nil {
				return inner, err
			}
		}
		tc := trackedOf(hello.Conn)
		if tc == nil {
			return inner, nil
		}
		tc.hello.Store(int32(highestOffered(hello.SupportedVersions)) + 1)
		per := inner.Clone()
		per.GetConfigForClient = nil
		per.VerifyConnection = func(cs tls.ConnectionState) error {
			resumed := 0
			if cs.DidResume {
				resumed = 1
			}
			if tc.handshaken.CompareAndSwap(false, true) {
				c.handshakes[versionIndex(cs.Version)][resumed].Add(1)
			}
			return nil
		}
		return per, nil
	}
	return outer
}

// trackedOf finds the listener's connection beneath c: c itself, or what
// TLS and other wrappers expose with NetConn.
func trackedOf(c net.Conn) *trackedConn {
	for c != nil {
		switch w := c.(type) {
		case *trackedConn:
			return w
		case *tls.Conn:
			c = w.NetConn()
		case interface{ NetConn() net.Conn }:
			c = w.NetConn()
		default:
			return nil
		}
	}
	return nil
}
