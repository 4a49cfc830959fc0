package listener

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// acceptLoop takes connections from the socket and hands each to the
// current front end, wrapped in TLS first on implicit-TLS listeners (so a
// plain-text client gets no greeting: the front end's first write waits
// for the handshake).
func (m *Manager) acceptLoop(l *listener) {
	defer close(l.done)
	var delay time.Duration
	for {
		c, err := l.sock.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Resource exhaustion (EMFILE and the like): back off.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			m.log.Warn("accept failed", "address", l.sock.Addr().String(), "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		if limit := m.maxConns.Load(); limit > 0 && l.conns.Load() >= limit {
			m.log.Warn("connection refused: listener at max_connections", "address", l.sock.Addr().String(), "remote", c.RemoteAddr().String())
			c.Close()
			continue
		}
		l.conns.Add(1)
		tracked := &trackedConn{Conn: c, l: l}
		for {
			g := l.gen.Load()
			var conn net.Conn = tracked
			if g.implicit != nil {
				conn = tls.Server(tracked, g.implicit)
			}
			if g.queue.push(conn) {
				break
			}
			// The front end was swapped between Load and push: retry with
			// the new one.
		}
	}
}

// trackedConn counts a listener's open connections.
type trackedConn struct {
	net.Conn
	l    *listener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.l.conns.Add(-1) })
	return c.Conn.Close()
}
