package listener

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// acceptLoop takes connections from the socket, applies the connection
// limits and hands each to the current front end. On implicit-TLS
// listeners the handshake runs first, in its own goroutine and within
// Options.HandshakeTimeout, so a plain-text client gets no greeting, a
// client that never finishes its ClientHello cannot hold a session, and
// front ends only ever see handshaken *tls.Conn values.
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
		ip := remoteIP(c)
		if limit := m.maxConns.Load(); limit > 0 && l.conns.Load() >= limit {
			l.refused.report(m, l, "listener at max_connections", ip)
			c.Close()
			continue
		}
		if !l.perIP.acquire(ip, m.perIPLimit(ip)) {
			l.refused.report(m, l, "client at max_connections_per_ip", ip)
			c.Close()
			continue
		}
		l.conns.Add(1)
		tracked := &trackedConn{Conn: c, l: l, ip: ip}
		g := l.gen.Load()
		if g.implicit != nil {
			go m.handshake(l, g, tracked)
			continue
		}
		l.hand(g, tracked, false)
	}
}

// handshake completes an implicit-TLS handshake and hands the connection to
// the front end. A handshake that fails, times out or is cut short by the
// listener stopping closes the connection; the front end never sees it.
func (m *Manager) handshake(l *listener, g *generation, c *trackedConn) {
	tc := tls.Server(c, g.implicit)
	c.SetDeadline(time.Now().Add(m.opts.HandshakeTimeout))
	if err := tc.HandshakeContext(l.ctx); err != nil {
		m.log.Debug("TLS handshake failed", "address", l.sock.Addr().String(), "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	l.hand(g, tc, true)
}

// hand gives c to the front end of generation g, or of whichever generation
// replaced it meanwhile. A connection already handshaken for implicit TLS
// is closed when the listener no longer does implicit TLS, and every
// connection is closed when the listener stops.
func (l *listener) hand(g *generation, c net.Conn, handshaken bool) {
	for {
		if g.queue.push(c, l.stopping) {
			return
		}
		next := l.gen.Load()
		select {
		case <-l.stopping:
			c.Close()
			return
		default:
		}
		if next == g || (handshaken && next.implicit == nil) {
			c.Close()
			return
		}
		if !handshaken && next.implicit != nil {
			// The listener switched to implicit TLS between Accept and
			// now: this connection gets the new mode like any other.
			go l.m.handshake(l, next, c.(*trackedConn))
			return
		}
		g = next
	}
}

// trackedConn counts a listener's open connections, in total and per client
// address, and makes read timeouts final.
//
// A read that times out ends the connection for reading: every later Read
// fails with the same error. go-smtp reads commands with net/textproto,
// whose bufio.Reader.ReadLine returns the bytes read before a timeout as a
// whole line with no error; without this a client dribbling a command one
// byte at a time had it cut into "commands" at every ReadTimeout and held
// the connection until go-smtp's error limit, four timeouts later. With it
// the front end sees the timeout on its next read and hangs up.
type trackedConn struct {
	net.Conn
	l       *listener
	ip      netip.Addr
	once    sync.Once
	readErr atomic.Pointer[error]
}

func (c *trackedConn) Read(p []byte) (int, error) {
	if err := c.readErr.Load(); err != nil {
		return 0, *err
	}
	n, err := c.Conn.Read(p)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.readErr.Store(&err)
		}
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.conns.Add(-1)
		c.l.perIP.release(c.ip)
	})
	return c.Conn.Close()
}

// remoteIP is c's client address; the zero Addr when it has none (not TCP).
func remoteIP(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// perIPLimit is the connection limit for a client at ip; zero means none.
func (m *Manager) perIPLimit(ip netip.Addr) int {
	l := m.perIP.Load()
	if l == nil || (l.exemptLoopback && ip.IsLoopback()) {
		return 0
	}
	return l.limit
}

// ipCounter counts open connections per client address.
type ipCounter struct {
	mu sync.Mutex
	n  map[netip.Addr]int
}

// acquire counts one more connection from ip unless that would exceed
// limit (zero: no limit); it reports whether it did.
func (c *ipCounter) acquire(ip netip.Addr, limit int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if limit > 0 && c.n[ip] >= limit {
		return false
	}
	if c.n == nil {
		c.n = map[netip.Addr]int{}
	}
	c.n[ip]++
	return true
}

func (c *ipCounter) release(ip netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[ip] <= 1 {
		delete(c.n, ip)
		return
	}
	c.n[ip]--
}

// refusals reports refused connections without flooding the log under a
// connection flood: at most one line per second per listener, with the
// number refused since the last line.
type refusals struct {
	last  atomic.Int64 // unix nanoseconds of the last line
	count atomic.Int64 // refused since the last line
}

func (r *refusals) report(m *Manager, l *listener, why string, ip netip.Addr) {
	n := r.count.Add(1)
	now := time.Now().UnixNano()
	last := r.last.Load()
	if now-last < int64(time.Second) || !r.last.CompareAndSwap(last, now) {
		return
	}
	r.count.Add(-n)
	m.log.Warn("connections refused", "reason", why, "address", l.sock.Addr().String(), "remote", ip.String(), "refused", n)
}
