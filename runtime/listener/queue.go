package listener

import (
	"net"
	"sync"
)

// connQueue is the net.Listener a front end serves: the manager's accept
// loop owns the socket and hands connections over through it, so a front
// end can be replaced (new TLS mode, new certificate settings) without
// closing and reopening the socket.
type connQueue struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

var _ net.Listener = (*connQueue)(nil)

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

// Accept waits for the next connection, or returns net.ErrClosed.
func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.closed:
		return nil, net.ErrClosed
	}
}

// push hands c to the front end; false if the queue or stop closed first,
// in which case the caller still owns c.
func (q *connQueue) push(c net.Conn, stop <-chan struct{}) bool {
	select {
	case q.conns <- c:
		return true
	case <-q.closed:
		return false
	case <-stop:
		return false
	}
}

// Close stops Accept; it does not touch the socket.
func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.closed) })
	return nil
}

// Addr is the socket's address.
func (q *connQueue) Addr() net.Addr { return q.addr }
