package imap

import (
	"net"
	"sync"
	"time"
)

// throttle slows down failed logins per client IP: after each failure the
// next LOGIN from that address waits longer (250 ms doubling up to 8 s),
// which makes guessing passwords over many connections slow without
// locking real users out. Failures are forgotten after 15 minutes.
type throttle struct {
	mu       sync.Mutex
	failures map[string]failure
}

type failure struct {
	count int
	last  time.Time
}

const (
	throttleBase   = 250 * time.Millisecond
	throttleMax    = 8 * time.Second
	throttleForget = 15 * time.Minute
)

func newThrottle() *throttle { return &throttle{failures: make(map[string]failure)} }

func ipOf(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}

// delay returns how long a login attempt from ip must wait.
func (t *throttle) delay(ip string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, ok := t.failures[ip]
	if !ok {
		return 0
	}
	if time.Since(f.last) > throttleForget {
		delete(t.failures, ip)
		return 0
	}
	return min(throttleBase<<min(f.count-1, 6), throttleMax)
}

// fail records a failed login from ip.
func (t *throttle) fail(ip string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if len(t.failures) > 10000 {
		for k, f := range t.failures {
			if now.Sub(f.last) > throttleForget {
				delete(t.failures, k)
			}
		}
	}
	f := t.failures[ip]
	t.failures[ip] = failure{count: f.count + 1, last: now}
}

// succeed forgets the failures of ip.
func (t *throttle) succeed(ip string) {
	t.mu.Lock()
	delete(t.failures, ip)
	t.mu.Unlock()
}
