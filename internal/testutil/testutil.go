// Package testutil holds the helpers that more than one test package of
// the runtime needs: test certificates and keystores (pki.go), ports
// reserved on 127.0.0.1 for servers a test does not bind itself (ports.go),
// polling for a condition, a log buffer that goroutines
// may write to while a test reads it, and a small tmpfs to fill (tmpfs.go).
//
// It is for tests only: nothing outside _test.go files imports it. Each
// helper takes a testing.TB and fails the test itself, so callers need no
// error handling; none of them knows about a particular protocol.
package testutil

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/runtime/authlimit"
)

// SyncBuffer is a bytes.Buffer that is safe for concurrent use, for a
// server's logs or a process's output that goroutines write while the test
// reads them. The zero value is ready to use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// HangGuard is how long a test waits for what a healthy machine does at
// once (an answer on loopback, a goroutine's result, a port that closes)
// before it calls that a hang: a safety net only. A correct but slow
// server on a machine under a load of 20 and more must not trip it, and a
// passing test never waits it out. Where a test asserts a timeout, its own
// short deadline is the point and stays.
const HangGuard = time.Minute

// Dial connects to addr over TCP, with TLS (the handshake done) when
// tlsConfig is not nil, and fails the test if that fails or hangs
// (HangGuard). The connection is closed when the test ends.
func Dial(t testing.TB, addr string, tlsConfig *tls.Config) net.Conn {
	t.Helper()
	d := &net.Dialer{Timeout: HangGuard}
	var conn net.Conn
	var err error
	if tlsConfig != nil {
		conn, err = tls.DialWithDialer(d, "tcp", addr, tlsConfig)
	} else {
		conn, err = d.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Eventually polls cond every 10ms until it holds, and fails the test with
// "timed out waiting for <what>" if it does not within HangGuard: a
// deadline for something that does not happen at all, generous enough for
// a machine loaded with other tests (it costs a passing test nothing).
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(HangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// NoAuthLimit is an AUTH limiter that never waits or refuses, for tests of
// a protocol's login replies; the limiter's own tests and one test per
// front end check the real pacing.
func NoAuthLimit() *authlimit.Limiter {
	p := authlimit.DefaultPolicy
	p.Free, p.BlockAfter = 1<<30, 1<<30
	return authlimit.New(p, nil)
}

// OneConn is a net.Listener that hands out one connection, then blocks
// until it is closed: a server's Serve on a net.Pipe, for fuzz targets that
// drive whole sessions without sockets.
type OneConn struct {
	conn net.Conn
	addr net.Addr
	once sync.Once
	stop sync.Once
	done chan struct{}
}

// NewOneConn returns a listener that yields conn, reporting addr as its
// address. The connection seems to come from a loopback client
// (127.0.0.1), the only one a clear-text listener lets log in.
func NewOneConn(conn net.Conn, addr net.Addr) *OneConn {
	return &OneConn{conn: loopbackConn{conn}, addr: addr, done: make(chan struct{})}
}

// loopbackConn is a connection whose client is on loopback.
type loopbackConn struct{ net.Conn }

func (loopbackConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 49152}
}

// Accept returns the connection the first time, then waits for Close.
func (l *OneConn) Accept() (net.Conn, error) {
	var c net.Conn
	l.once.Do(func() { c = l.conn })
	if c != nil {
		return c, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

// Close makes Accept return net.ErrClosed.
func (l *OneConn) Close() error { l.stop.Do(func() { close(l.done) }); return nil }

// Addr is the address given to NewOneConn.
func (l *OneConn) Addr() net.Addr { return l.addr }

// ErrorLog is a slog.Handler that keeps the messages logged at Error level,
// with their attributes, for tests that require a server to log none.
type ErrorLog struct {
	mu   sync.Mutex
	msgs []string
}

func (r *ErrorLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }

func (r *ErrorLog) Handle(_ context.Context, rec slog.Record) error {
	msg := rec.Message
	rec.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, msg)
	return nil
}

func (r *ErrorLog) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *ErrorLog) WithGroup(string) slog.Handler      { return r }

// Messages returns what was logged at Error level so far.
func (r *ErrorLog) Messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}
