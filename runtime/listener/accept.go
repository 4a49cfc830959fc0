package listener

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/connid"
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
		if limit := l.connLimit(); limit > 0 && l.conns.Load() >= limit {
			l.counters.refusedListener.Add(1)
			l.refuse(c, ip, false)
			continue
		}
		if !l.perIP.acquire(ip, l.perIPLimit(ip)) {
			l.counters.refusedClient.Add(1)
			l.refuse(c, ip, true)
			continue
		}
		l.counters.accepted.Add(1)
		l.conns.Add(1)
		tracked := &trackedConn{Conn: c, l: l, ip: ip, id: connid.New()}
		g := l.gen.Load()
		if g.implicit != nil {
			go m.handshake(l, g, tracked)
			continue
		}
		l.hand(g, tracked, tracked, false)
	}
}

// handshake completes an implicit-TLS handshake and hands the connection to
// the front end. A handshake that fails, times out or is cut short by the
// listener stopping closes the connection; the front end never sees it.
func (m *Manager) handshake(l *listener, g *generation, c *trackedConn) {
	tc := tls.Server(c, g.implicit)
	c.SetDeadline(time.Now().Add(m.opts.HandshakeTimeout))
	if err := tc.HandshakeContext(l.ctx); err != nil {
		m.log.Debug("TLS handshake failed", connid.Key, c.id, "address", l.sock.Addr().String(), "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	l.hand(g, tc, c, true)
}

// hand gives c, which is raw or the TLS connection over it, to the front
// end of generation g, or of whichever generation replaced it meanwhile,
// and records raw as that generation's to close at its drain deadline. A
// connection already handshaken for implicit TLS is closed when the
// listener no longer does implicit TLS, and every connection is closed
// when the listener stops.
func (l *listener) hand(g *generation, c net.Conn, raw *trackedConn, handshaken bool) {
	for {
		g.conns.add(raw)
		if g.queue.push(c, l.stopping) {
			return
		}
		g.conns.remove(raw)
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
			go l.m.handshake(l, next, raw)
			return
		}
		g = next
	}
}

// trackedConn counts a listener's open connections, in total and per client
// address, names its session for the logs, and makes read timeouts final.
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
	id      string // session id (connid)
	once    sync.Once
	readErr atomic.Pointer[error]
	set     atomic.Pointer[connSet] // the generation's set it is in, if any

	// hello is 1 + the index of the highest TLS version the client
	// offered once its ClientHello arrived, zero before; handshaken is
	// set when the handshake completed (countHandshakes).
	hello      atomic.Int32
	handshaken atomic.Bool
}

// SessionID implements connid.Named.
func (c *trackedConn) SessionID() string { return c.id }

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
		if v := c.hello.Load(); v > 0 && !c.handshaken.Load() {
			c.l.counters.failures[v-1].Add(1)
		}
		if s := c.set.Load(); s != nil {
			s.remove(c)
		}
	})
	return c.Conn.Close()
}

// connSet is the connections a generation's front end was handed and has
// not closed: at the drain deadline the manager closes them, whatever the
// front end does. They are the raw connections the listener accepted, so
// closing one does not wait for a TLS write in progress.
type connSet struct {
	mu sync.Mutex
	m  map[*trackedConn]struct{}
}

func (s *connSet) add(c *trackedConn) {
	s.mu.Lock()
	if s.m == nil {
		s.m = map[*trackedConn]struct{}{}
	}
	s.m[c] = struct{}{}
	s.mu.Unlock()
	c.set.Store(s)
}

func (s *connSet) remove(c *trackedConn) {
	c.set.CompareAndSwap(s, nil)
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
}

func (s *connSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// closeAll closes every connection in the set.
func (s *connSet) closeAll() {
	s.mu.Lock()
	open := make([]*trackedConn, 0, len(s.m))
	for c := range s.m {
		open = append(open, c)
	}
	s.mu.Unlock()
	for _, c := range open {
		c.Close()
	}
}

// remoteIP is c's client address; the zero Addr when it has none (not TCP).
func remoteIP(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// setLimits keeps cfg's own connection limits for the accept loop.
func (l *listener) setLimits(cfg config.Listener) {
	l.maxConns.Store(int64(cfg.MaxConnections))
	l.maxPerIP.Store(int64(cfg.MaxConnectionsPerIP))
}

// connLimit is the listener's connection limit: its own, else the
// Manager's; zero means none.
func (l *listener) connLimit() int64 {
	if n := l.maxConns.Load(); n > 0 {
		return n
	}
	return l.m.maxConns.Load()
}

// perIPLimit is the connection limit for a client at ip: the listener's
// own (loopback included), else the Manager's; zero means none.
func (l *listener) perIPLimit(ip netip.Addr) int {
	if n := l.maxPerIP.Load(); n > 0 {
		return int(n)
	}
	s := l.m.perIP.Load()
	if s == nil || (s.exemptLoopback && ip.IsLoopback()) {
		return 0
	}
	return s.limit
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

// Refuser is a Frontend that has a reply for a client turned away by a
// connection limit: SMTP's 421, IMAP's "* BYE", POP3's "-ERR". The manager
// writes it (over TLS on an implicit-TLS listener) and hangs up; front ends
// that are not Refusers are hung up on without a word.
type Refuser interface {
	// Refusal returns the whole reply line, CRLF included. perClient says
	// that the client's address, not the listener, is at its limit.
	Refusal(perClient bool) string
}

// Bounds on refusing a connection politely: a connection flood must not
// turn into a flood of goroutines writing replies.
const (
	// maxRefusing is how many refusals a listener writes at once; the
	// connections beyond it are closed without a reply.
	maxRefusing = 64
	// refuseTimeout bounds a refusal, TLS handshake included.
	refuseTimeout = 5 * time.Second
)

// refuse turns c away: with the front end's refusal line where it has one
// and the listener is not already writing maxRefusing of them, else by
// closing it. c is not counted as open.
func (l *listener) refuse(c net.Conn, ip netip.Addr, perClient bool) {
	why := "listener at max_connections"
	if perClient {
		why = "client at max_connections_per_ip"
	}
	l.refused.report(l.m, l, why, ip)
	g := l.gen.Load()
	r, ok := g.fe.(Refuser)
	if !ok || l.refusing.Add(1) > maxRefusing {
		if ok {
			l.refusing.Add(-1)
		}
		c.Close()
		return
	}
	go func() {
		defer l.refusing.Add(-1)
		writeRefusal(c, g.implicit, r.Refusal(perClient))
	}()
}

// writeRefusal writes line to c, after a TLS handshake when implicit is
// set, and closes c. Whatever the client sent is read and dropped for a
// moment after the reply, so that closing does not reset the connection
// under a reply the client has not read yet.
func writeRefusal(c net.Conn, implicit *tls.Config, line string) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(refuseTimeout))
	raw := c
	if implicit != nil {
		tc := tls.Server(c, implicit)
		if err := tc.Handshake(); err != nil {
			return
		}
		c = tc
	}
	if _, err := io.WriteString(c, line); err != nil {
		return
	}
	if tc, ok := c.(*tls.Conn); ok {
		tc.CloseWrite()
	} else if tcp, ok := raw.(*net.TCPConn); ok {
		tcp.CloseWrite()
	}
	raw.SetReadDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, io.LimitReader(c, 64<<10))
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
