package smtp

import (
	"crypto/tls"
	"net"
	"runtime"
	"sync"
	"weak"
)

// connSet tracks the connections Serve accepted so that Shutdown can close
// the ones still open when its deadline passes. go-smtp keeps its own list
// but only closes it from Close, which refuses to run once Shutdown started.
//
// Plain connections are wrapped so that Close removes them. A *tls.Conn
// cannot be wrapped - go-smtp recognises implicit TLS by that concrete type
// and handshakes before the greeting - so it is held through a weak pointer
// and a cleanup removes its entry once go-smtp drops the connection.
type connSet struct {
	mu    sync.Mutex
	next  uint64
	conns map[uint64]func() net.Conn // returns nil once the conn is gone
}

// track registers c and returns the connection to hand to go-smtp.
func (cs *connSet) track(c net.Conn) net.Conn {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	id := cs.next
	cs.next++

	if tc, ok := c.(*tls.Conn); ok {
		wp := weak.Make(tc)
		cs.conns[id] = func() net.Conn {
			if tc := wp.Value(); tc != nil {
				// The raw connection: closing it does not wait for a TLS
				// write in progress.
				return tc.NetConn()
			}
			return nil
		}
		runtime.AddCleanup(tc, cs.remove, id)
		return tc
	}

	tracked := &trackedConn{Conn: c, set: cs, id: id}
	cs.conns[id] = func() net.Conn { return c }
	return tracked
}

func (cs *connSet) remove(id uint64) {
	cs.mu.Lock()
	delete(cs.conns, id)
	cs.mu.Unlock()
}

// closeAll closes every connection still tracked.
func (cs *connSet) closeAll() {
	cs.mu.Lock()
	open := make([]net.Conn, 0, len(cs.conns))
	for _, conn := range cs.conns {
		if c := conn(); c != nil {
			open = append(open, c)
		}
	}
	cs.mu.Unlock()
	for _, c := range open {
		c.Close()
	}
}

// trackedConn is a plain connection that leaves its connSet when closed.
type trackedConn struct {
	net.Conn
	set  *connSet
	id   uint64
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.set.remove(c.id) })
	return c.Conn.Close()
}

// trackingListener registers every connection it accepts in conns.
type trackingListener struct {
	net.Listener
	conns *connSet
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.conns.track(c), nil
}
