package imap

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// imapserver flushes its output after every response line, which costs a
// TLS record and a write system call per FETCH response: most of what one
// session spends sending 1 KiB messages. A coalescingConn under imapserver
// gathers those flushes into fewer, larger writes.

// flushThreshold is how much pending output is written at once: a full
// TLS record.
const flushThreshold = 16 << 10

// closeFlushTimeout bounds writing what is pending when the connection
// closes, as crypto/tls bounds its close_notify.
const closeFlushTimeout = 5 * time.Second

// outBufs holds the output buffers of sessions that are not writing, so
// that idle sessions hold none.
var outBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, 2*flushThreshold)
	return &b
}}

// coalescingConn buffers writes until the session reads from the client,
// until flushThreshold bytes are pending, or until the connection closes;
// once the client has ended its half of the connection, it writes nothing.
// Nothing waits unsent while the session waits for the client: Read
// writes what is pending first, and writes made while a Read is blocked
// (IDLE updates, from another goroutine) go out at once.
//
// imapserver sets a write deadline around each response; the buffered
// bytes are written later, so SetWriteDeadline only records the longest
// timeout asked for, and each write to the connection gets that much time.
type coalescingConn struct {
	net.Conn

	mu      sync.Mutex
	out     *[]byte       // pending output, from outBufs; nil when none is held
	timeout time.Duration // longest write timeout asked for since the last write
	reading bool          // a Read is waiting for the client
	err     error         // the first write error (or net.ErrClosed); later writes fail with it
}

func (c *coalescingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.reading || (c.out == nil && len(p) >= flushThreshold) {
		return c.writeLocked(p)
	}
	if c.out == nil {
		c.out = outBufs.Get().(*[]byte)
	}
	*c.out = append(*c.out, p...)
	if len(*c.out) >= flushThreshold {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Read writes what is pending, then reads from the client.
// NetConn returns the connection beneath, where connid finds the session id.
func (c *coalescingConn) NetConn() net.Conn { return c.Conn }

func (c *coalescingConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	err := c.flushLocked()
	c.reading = err == nil
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.reading = false
	if n == 0 && err == io.EOF && c.err == nil {
		// The client has ended its half of the connection. Every command
		// it finished was answered before this Read (imapserver reads
		// one command at a time, and what it wrote went out above), so
		// anything written from now on would answer a command cut off by
		// the end: imapserver answers that NO [SERVERBUG], as if the
		// server were at fault. Nothing more is written.
		c.err = net.ErrClosed
	}
	c.mu.Unlock()
	return n, err
}

func (c *coalescingConn) SetWriteDeadline(t time.Time) error {
	if !t.IsZero() {
		c.mu.Lock()
		c.timeout = max(c.timeout, time.Until(t))
		c.mu.Unlock()
	}
	return nil
}

// Close writes what is pending and closes the connection. Like
// crypto/tls's Close, it does not wait for a write in progress in another
// goroutine: closing is then what interrupts that write.
func (c *coalescingConn) Close() error {
	if c.mu.TryLock() {
		if c.err == nil {
			c.timeout = closeFlushTimeout
			c.flushLocked()
			c.err = net.ErrClosed
		}
		c.mu.Unlock()
	}
	return c.Conn.Close()
}

// flushLocked writes the pending output and gives its buffer back to
// outBufs.
func (c *coalescingConn) flushLocked() error {
	if c.out == nil {
		return c.err
	}
	var err error
	if len(*c.out) > 0 {
		_, err = c.writeLocked(*c.out)
	}
	*c.out = (*c.out)[:0]
	outBufs.Put(c.out)
	c.out = nil
	return err
}

func (c *coalescingConn) writeLocked(b []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	var deadline time.Time
	if c.timeout > 0 {
		deadline = time.Now().Add(c.timeout)
		c.timeout = 0
	}
	c.Conn.SetWriteDeadline(deadline)
	n, err := c.Conn.Write(b)
	c.err = err
	return n, err
}

// coalescingListener hands imapserver coalescingConns. imapserver then no
// longer sees a *tls.Conn and allows LOGIN only where Options.InsecureAuth
// says so, which New sets on servers for implicit TLS; this listener
// therefore closes any connection to such a server that is not TLS.
type coalescingListener struct {
	net.Listener
	implicitTLS bool
	log         *slog.Logger
}

func (l coalescingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if _, isTLS := c.(*tls.Conn); l.implicitTLS && !isTLS {
			l.log.Error("imap: closing a connection without TLS on an implicit-TLS server; this is always a bug", "remote", c.RemoteAddr().String())
			c.Close()
			continue
		}
		return &coalescingConn{Conn: c}, nil
	}
}
