// Package authlimit slows down, then blocks, password guessing. One Limiter
// per runtime counts failed logins by client address across every
// connection and every protocol (SMTP submission AUTH, IMAP LOGIN and
// AUTHENTICATE, POP3 USER/PASS and AUTH), so opening more connections or
// switching protocols buys an attacker nothing.
//
// The rate under DefaultPolicy, per client address (an IPv4 address, or an
// IPv6 /64, the smallest network one subscriber is usually given):
//
//   - the first 3 failures cost nothing: a user who mistypes is not slowed;
//   - until then, up to 8 attempts are checked at once and more wait for
//     one of them to end, so a burst of guesses on many connections is
//     checked at most 8 at a time, while a client or an office behind one
//     NAT address that logs in on many connections at once is served;
//   - from the 4th on, attempts are spaced, whatever connection they come
//     on: 1 s apart after the 4th failure, 2 s after the 5th, then 4 s and
//     8 s, and 16 s from the 8th on; an attempt whose turn is more than
//     30 s away is refused at once without checking the password;
//   - the 20th failure blocks the address for 15 minutes: every attempt is
//     refused at once, a correct password too;
//   - 15 minutes after its last failure an address starts afresh.
//
// That lets one address test about 20 passwords per 19 minutes (about
// 1,500 a day), where unlimited parallel connections managed 33 a second.
// A success does not clear the count: with one known account an attacker
// could otherwise reset it between guesses at others. Loopback is not
// exempt.
package authlimit

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"
)

// ErrRefused is returned by Wait for an attempt that must not be checked:
// the address is blocked, or its turn is too far away. Front ends answer it
// with their "temporary failure, try later" reply, not "invalid
// credentials", so a real user is not told to change a right password.
var ErrRefused = errors.New("too many failed logins from this address; try again later")

// Policy is a limiter's rate. The zero Policy is not useful; start from
// DefaultPolicy.
type Policy struct {
	// Free is how many failures cost nothing.
	Free int
	// Parallel is how many attempts from one address are checked at once
	// while it has fewer than Free failures; more wait for a check to end.
	Parallel int
	// Delay is the spacing between attempts after Free failures; it
	// doubles with each further failure up to MaxDelay.
	Delay, MaxDelay time.Duration
	// MaxWait is the longest an attempt waits for its turn; one whose turn
	// is further away is refused at once.
	MaxWait time.Duration
	// BlockAfter failures block the address for Block.
	BlockAfter int
	Block      time.Duration
	// Forget drops an address's record this long after its last failure.
	Forget time.Duration
	// MaxAddresses bounds the memory: beyond it, expired records are
	// dropped, then arbitrary ones.
	MaxAddresses int
}

// DefaultPolicy is the rate the package documentation describes.
var DefaultPolicy = Policy{
	Free:         3,
	Parallel:     8,
	Delay:        time.Second,
	MaxDelay:     16 * time.Second,
	MaxWait:      30 * time.Second,
	BlockAfter:   20,
	Block:        15 * time.Minute,
	Forget:       15 * time.Minute,
	MaxAddresses: 100_000,
}

// Event is what a Limiter reports to its observer.
type Event int

const (
	// Failed is a failed login.
	Failed Event = iota
	// Refused is an attempt refused unchecked (ErrRefused).
	Refused
	// Blocked is an address reaching Policy.BlockAfter.
	Blocked
)

// Limiter counts failed logins by client address. Its methods are safe for
// concurrent use.
type Limiter struct {
	p       Policy
	observe func(protocol string, e Event)
	now     func() time.Time // replaceable in tests

	mu    sync.Mutex
	addrs map[netip.Prefix]*record
}

type record struct {
	failures int
	inflight int           // attempts let through and not yet Done
	ended    chan struct{} // closed when an attempt in flight ends; nil until someone waits

	last         time.Time // of the latest failure
	next         time.Time // the earliest moment the next attempt may be checked
	blockedUntil time.Time
}

// New returns a limiter with policy p. observe, when not nil, is told of
// every failure, refusal and block (metrics); it must not block.
func New(p Policy, observe func(protocol string, e Event)) *Limiter {
	if observe == nil {
		observe = func(string, Event) {}
	}
	return &Limiter{p: p, observe: observe, now: time.Now, addrs: map[netip.Prefix]*record{}}
}

// key is the unit a limit applies to: an IPv4 address or an IPv6 /64.
func key(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p
	}
	return netip.PrefixFrom(ip, ip.BitLen())
}

// Wait returns when a login attempt from ip may be checked: at once for an
// address with few failures and few attempts in flight, after its turn
// otherwise. It returns ErrRefused when the address is blocked or its turn
// is more than Policy.MaxWait away, and ctx.Err() if ctx ends first. An
// attempt Wait lets through must be reported with Done once checked: up
// to Policy.Parallel attempts are checked at once before the free failures
// are used up, and past them attempts in flight are presumed to fail, so a
// burst of parallel guesses does not pass before its failures are counted.
func (l *Limiter) Wait(ctx context.Context, protocol string, ip netip.Addr) error {
	k := key(ip)
	deadline := l.now().Add(l.p.MaxWait)
	for {
		l.mu.Lock()
		now := l.now()
		r := l.current(k, now)
		if r == nil {
			l.makeRoom(now)
			r = &record{}
			l.addrs[k] = r
		}
		if now.Before(r.blockedUntil) {
			l.mu.Unlock()
			l.observe(protocol, Refused)
			return ErrRefused
		}
		if r.failures >= l.p.Free {
			return l.waitTurn(ctx, protocol, ip, r, now)
		}
		if r.inflight < l.p.Parallel {
			r.inflight++
			l.mu.Unlock()
			return nil
		}
		// As many checks as may run at once are running: wait for one to
		// end, then look again (it may have been a failure).
		if r.ended == nil {
			r.ended = make(chan struct{})
		}
		ended := r.ended
		l.mu.Unlock()
		if err := l.sleep(ctx, protocol, deadline.Sub(now), ended); err != nil {
			return err
		}
	}
}

// waitTurn reserves the next turn of an address past its free failures and
// waits for it. Called with l.mu held; it unlocks it.
func (l *Limiter) waitTurn(ctx context.Context, protocol string, ip netip.Addr, r *record, now time.Time) error {
	slot := r.next
	if slot.Before(now) {
		slot = now
	}
	wait := slot.Sub(now)
	if wait > l.p.MaxWait {
		l.mu.Unlock()
		l.observe(protocol, Refused)
		return ErrRefused
	}
	// Attempts in flight are presumed to fail: a burst of them reserves
	// turns ever further apart, as their failures would space them.
	r.next = slot.Add(l.spacing(r.failures + r.inflight + 1))
	r.inflight++
	l.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	if err := l.sleep(ctx, protocol, wait, nil); err != nil {
		l.Done(protocol, ip, false)
		return err
	}
	return nil
}

// sleep waits d, or until wake is closed (nil: never); it returns ctx.Err()
// if ctx ends first, and ErrRefused if wake was given and d passed first.
func (l *Limiter) sleep(ctx context.Context, protocol string, d time.Duration, wake <-chan struct{}) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-wake:
		return nil
	case <-t.C:
		if wake != nil {
			l.observe(protocol, Refused)
			return ErrRefused
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done reports the outcome of an attempt Wait let through: failed means
// the credentials were wrong.
func (l *Limiter) Done(protocol string, ip netip.Addr, failed bool) { l.record(protocol, ip, failed) }

// spacing is the gap between attempts after n failures (n > Free).
func (l *Limiter) spacing(n int) time.Duration {
	return min(l.p.Delay<<min(n-l.p.Free-1, 30), l.p.MaxDelay)
}

// Failed records a failed login from ip that did not go through Wait (a
// malformed exchange, say).
func (l *Limiter) Failed(protocol string, ip netip.Addr) { l.record(protocol, ip, true) }

// record ends an attempt from ip: one fewer in flight, and one more
// failure if it failed. A record left with nothing to remember is dropped.
func (l *Limiter) record(protocol string, ip netip.Addr, failed bool) {
	l.mu.Lock()
	now := l.now()
	k := key(ip)
	r := l.current(k, now)
	if r == nil {
		if !failed {
			l.mu.Unlock()
			return
		}
		l.makeRoom(now)
		r = &record{}
		l.addrs[k] = r
	}
	r.inflight = max(r.inflight-1, 0)
	if r.ended != nil {
		close(r.ended)
		r.ended = nil
	}
	if !failed {
		if r.failures == 0 && r.inflight == 0 {
			delete(l.addrs, k)
		}
		l.mu.Unlock()
		return
	}
	r.failures++
	r.last = now
	if r.failures > l.p.Free {
		if next := now.Add(l.spacing(r.failures)); next.After(r.next) {
			r.next = next
		}
	}
	blocked := r.failures == l.p.BlockAfter
	if blocked {
		r.blockedUntil = now.Add(l.p.Block)
	}
	l.mu.Unlock()
	l.observe(protocol, Failed)
	if blocked {
		l.observe(protocol, Blocked)
	}
}

// current returns k's record, dropping it if it has expired. Called with
// l.mu held.
func (l *Limiter) current(k netip.Prefix, now time.Time) *record {
	r := l.addrs[k]
	if r != nil && l.expired(r, now) {
		delete(l.addrs, k)
		return nil
	}
	return r
}

func (l *Limiter) expired(r *record, now time.Time) bool {
	return r.inflight == 0 && now.Sub(r.last) > l.p.Forget && !now.Before(r.blockedUntil)
}

// makeRoom keeps the table within MaxAddresses. Called with l.mu held.
func (l *Limiter) makeRoom(now time.Time) {
	if len(l.addrs) < l.p.MaxAddresses {
		return
	}
	for k, r := range l.addrs {
		if l.expired(r, now) {
			delete(l.addrs, k)
		}
	}
	for k := range l.addrs {
		if len(l.addrs) < l.p.MaxAddresses {
			break
		}
		delete(l.addrs, k)
	}
}

// Addresses is how many client addresses the limiter holds a record for.
func (l *Limiter) Addresses() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.addrs)
}

// ClientIP is the client address of a connection's remote address; the zero
// Addr when it has none (a unix socket or a pipe), which all such clients
// share.
func ClientIP(remote net.Addr) netip.Addr {
	if a, ok := remote.(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	if remote == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(remote.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
