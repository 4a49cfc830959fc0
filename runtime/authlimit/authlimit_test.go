package authlimit

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	alice    = netip.MustParseAddr("192.0.2.1")
	mallory  = netip.MustParseAddr("198.51.100.7")
	loopback = netip.MustParseAddr("127.0.0.1")
)

// fast is DefaultPolicy scaled down from seconds to milliseconds.
func fast() Policy {
	p := DefaultPolicy
	p.Delay, p.MaxDelay, p.MaxWait = 10*time.Millisecond, 40*time.Millisecond, time.Second
	return p
}

// slow is DefaultPolicy with turns an hour apart: an attempt that had to
// wait for one would not come back within any test's patience, so a test
// can tell "did not wait" from "waited" without timing anything.
func slow() Policy {
	p := DefaultPolicy
	p.Delay, p.MaxDelay, p.MaxWait = time.Hour, time.Hour, 1000*time.Hour
	return p
}

// passes is Wait for an attempt that must not wait for a turn: nil when it
// passed, context.DeadlineExceeded when it was still waiting after 30 s
// (for a turn an hour away, under slow()).
func passes(l *Limiter, ip netip.Addr) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return l.Wait(ctx, "test", ip)
}

func failN(l *Limiter, ip netip.Addr, n int) {
	for range n {
		l.Failed("test", ip)
	}
}

// The default policy's figures are the ones the package documents.
func TestDefaultPolicy(t *testing.T) {
	l := New(DefaultPolicy, nil)
	var spacing []time.Duration
	for n := DefaultPolicy.Free + 1; n < 10; n++ {
		spacing = append(spacing, l.spacing(n))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 16 * time.Second}
	for i := range want {
		if spacing[i] != want[i] {
			t.Errorf("after %d failures: spacing %v, want %v", DefaultPolicy.Free+1+i, spacing[i], want[i])
		}
	}
	if DefaultPolicy.BlockAfter != 20 || DefaultPolicy.Block != 15*time.Minute || DefaultPolicy.Forget != 15*time.Minute {
		t.Errorf("block policy %+v", DefaultPolicy)
	}
}

// A user who mistypes a few times is not slowed down at all.
func TestFreeFailures(t *testing.T) {
	l := New(slow(), nil)
	for i := range DefaultPolicy.Free {
		if err := passes(l, alice); err != nil {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
		l.Failed("test", alice)
	}
	if l.Addresses() != 1 {
		t.Errorf("%d addresses recorded", l.Addresses())
	}
}

// Past the free failures, attempts from one address are spaced however many
// connections they come on: 20 parallel attempts take as long as 20 in a
// row would.
func TestParallelAttemptsAreSerialised(t *testing.T) {
	p := fast()
	p.BlockAfter = 1000
	l := New(p, nil)
	// Turns are spaced from the last failure: the time taken before it is
	// a sound lower bound however late this goroutine runs after it.
	start := time.Now()
	failN(l, mallory, p.Free+3) // spacing 40 ms, the cap
	var wg sync.WaitGroup
	var refused atomic.Int32
	for range 20 {
		wg.Go(func() {
			if err := l.Wait(context.Background(), "test", mallory); errors.Is(err, ErrRefused) {
				refused.Add(1)
			}
		})
	}
	wg.Wait()
	// 20 turns 40 ms apart, the first 40 ms after the last failure.
	if took := time.Since(start); took < 780*time.Millisecond {
		t.Errorf("20 parallel attempts passed in %v; want at least 800 ms", took)
	}
	if refused.Load() != 0 {
		t.Errorf("%d refused within MaxWait", refused.Load())
	}
}

// An attempt whose turn is further than MaxWait is refused at once.
func TestTurnTooFarIsRefused(t *testing.T) {
	p := fast()
	p.MaxWait = 50 * time.Millisecond
	l := New(p, nil)
	failN(l, mallory, p.Free+3) // spacing 40 ms
	var results []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			err := l.Wait(context.Background(), "test", mallory)
			mu.Lock()
			results = append(results, err)
			mu.Unlock()
		})
	}
	wg.Wait()
	var ok, refused int
	for _, err := range results {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrRefused):
			refused++
		default:
			t.Errorf("unexpected %v", err)
		}
	}
	// Turns at 40, 80, ... ms: one fits within 50 ms.
	if ok != 1 || refused != 4 {
		t.Errorf("%d checked, %d refused; want 1 and 4", ok, refused)
	}
}

// The BlockAfter-th failure blocks the address: every attempt, a correct
// password too, is refused without waiting, until Block has passed; then
// the address starts afresh.
func TestBlockAndForget(t *testing.T) {
	p := fast()
	l := New(p, nil)
	now := time.Unix(1_700_000_000, 0)
	l.now = func() time.Time { return now }
	failN(l, mallory, p.BlockAfter)
	if err := l.Wait(context.Background(), "test", mallory); !errors.Is(err, ErrRefused) {
		t.Fatalf("blocked address: %v", err)
	}
	now = now.Add(p.Block - time.Second)
	if err := l.Wait(context.Background(), "test", mallory); !errors.Is(err, ErrRefused) {
		t.Fatalf("a second before the block ends: %v", err)
	}
	now = now.Add(2 * time.Second)
	if err := l.Wait(context.Background(), "test", mallory); err != nil {
		t.Fatalf("after the block: %v", err)
	}
	l.Done("test", mallory, false)
	if l.Addresses() != 0 {
		t.Errorf("the expired record is kept")
	}
}

// Failures are forgotten Forget after the last one.
func TestForget(t *testing.T) {
	p := fast()
	l := New(p, nil)
	now := time.Unix(1_700_000_000, 0)
	l.now = func() time.Time { return now }
	failN(l, alice, p.Free+3)
	now = now.Add(p.Forget + time.Second)
	l.Failed("test", alice)
	if r := l.addrs[key(alice)]; r.failures != 1 {
		t.Errorf("failures %d after Forget, want 1", r.failures)
	}
}

// IPv6 clients are limited per /64; IPv4 per address, mapped or not.
func TestKeys(t *testing.T) {
	l := New(fast(), nil)
	failN(l, netip.MustParseAddr("2001:db8:1:2::1"), 2)
	failN(l, netip.MustParseAddr("2001:db8:1:2:ffff::9"), 2)
	failN(l, netip.MustParseAddr("2001:db8:1:3::1"), 1)
	failN(l, netip.MustParseAddr("::ffff:192.0.2.1"), 1)
	failN(l, alice, 1)
	failN(l, loopback, 1)
	if got := l.addrs[key(netip.MustParseAddr("2001:db8:1:2::77"))].failures; got != 4 {
		t.Errorf("the /64 counts %d failures, want 4", got)
	}
	if got := l.addrs[key(alice)].failures; got != 2 {
		t.Errorf("192.0.2.1 counts %d failures, want 2 (mapped and plain)", got)
	}
	if l.Addresses() != 4 {
		t.Errorf("%d records, want 4", l.Addresses())
	}
}

// The table never grows past MaxAddresses.
func TestMaxAddresses(t *testing.T) {
	p := fast()
	p.MaxAddresses = 100
	l := New(p, nil)
	for i := range 1000 {
		l.Failed("test", netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
	}
	if n := l.Addresses(); n > 100 {
		t.Errorf("%d records, want at most 100", n)
	}
}

// The observer sees failures, the block and refusals, by protocol.
func TestObserver(t *testing.T) {
	p := fast()
	p.BlockAfter = 5
	var mu sync.Mutex
	seen := map[string]map[Event]int{}
	l := New(p, func(protocol string, e Event) {
		mu.Lock()
		defer mu.Unlock()
		if seen[protocol] == nil {
			seen[protocol] = map[Event]int{}
		}
		seen[protocol][e]++
	})
	failN(l, mallory, 3)
	l.Failed("imap", mallory)
	l.Failed("pop3", mallory)
	_ = l.Wait(context.Background(), "smtp", mallory)
	if seen["test"][Failed] != 3 || seen["imap"][Failed] != 1 || seen["pop3"][Failed] != 1 ||
		seen["pop3"][Blocked] != 1 || seen["smtp"][Refused] != 1 {
		t.Errorf("observed %v", seen)
	}
}

// A waiting attempt ends with its context.
func TestWaitCanceled(t *testing.T) {
	p := slow()
	l := New(p, nil)
	failN(l, mallory, p.Free+1) // the next turn is an hour away
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := l.Wait(ctx, "test", mallory); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("canceled wait: %v", err)
	}
}

// Attempts from one address waiting for their turns hold up no other.
func TestOtherAddressesNotHeldUp(t *testing.T) {
	p := slow()
	p.BlockAfter = 1000
	l := New(p, nil)
	failN(l, mallory, p.Free+1) // mallory's next turn is an hour away
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for range 20 {
		wg.Go(func() { _ = l.Wait(ctx, "test", mallory) })
	}
	deadline := time.Now().Add(30 * time.Second)
	for inflight := 0; inflight < 20; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of mallory's 20 attempts waiting after 30 s", inflight)
		}
		time.Sleep(time.Millisecond)
		l.mu.Lock()
		inflight = l.addrs[key(mallory)].inflight
		l.mu.Unlock()
	}
	if err := passes(l, alice); err != nil {
		t.Errorf("another address, while mallory's attempts wait their turns: %v", err)
	}
}

// A burst of guesses on many connections is checked Parallel at a time
// until failures count: here a slow check that fails, and turns further
// away than MaxWait once the free failures are used up, so of 32 attempts
// Parallel are checked, plus at most one per free failure (each failure
// before the last free one frees a slot, and the turn right after the
// free ones is now), and the others are refused.
func TestBurstCheckedParallelAtATime(t *testing.T) {
	p := DefaultPolicy
	p.Delay, p.MaxDelay, p.MaxWait = time.Hour, time.Hour, time.Minute
	l := New(p, nil)
	var checked, refused atomic.Int32
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			switch err := l.Wait(context.Background(), "test", mallory); {
			case err == nil:
				checked.Add(1)
				time.Sleep(100 * time.Millisecond) // a slow check: the others queue behind it
				l.Done("test", mallory, true)
			case errors.Is(err, ErrRefused):
				refused.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if c := int(checked.Load()); c < p.Parallel || c > p.Parallel+p.Free || c+int(refused.Load()) != 32 {
		t.Errorf("%d checked, %d refused; want %d to %d checked and the rest refused", c, refused.Load(), p.Parallel, p.Parallel+p.Free)
	}
}

// Turns reserved past the free failures grow apart as if the attempts in
// flight had failed: after Free failures (with the policy's doubling, 10
// ms to 160 ms, at most 300 ms of waiting), parallel attempts get turns
// 0, 10, 30, 70 and 150 ms away; the rest are beyond MaxWait and refused.
func TestBurstTurnsGrowApart(t *testing.T) {
	p := DefaultPolicy
	p.Delay, p.MaxDelay, p.MaxWait = 10*time.Millisecond, 160*time.Millisecond, 300*time.Millisecond
	l := New(p, nil)
	l.now = func() time.Time { return time.Unix(1e9, 0) } // turns reserved, never reached by the clock
	failN(l, mallory, p.Free)
	var checked, refused atomic.Int32
	var wg sync.WaitGroup
	// The attempts given a turn wait until all 32 have asked: one that
	// ended sooner would hand back its place in flight, and the turns
	// reserved after it would lie closer together.
	ctx, cancel := context.WithCancel(context.Background())
	for range 32 {
		wg.Go(func() {
			switch err := l.Wait(ctx, "test", mallory); {
			case err == nil, errors.Is(err, context.Canceled):
				checked.Add(1) // given a turn
			case errors.Is(err, ErrRefused):
				refused.Add(1)
			}
		})
	}
	deadline := time.Now().Add(30 * time.Second)
	for asked := 0; asked < 32; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 32 attempts asked after 30 s", asked)
		}
		time.Sleep(time.Millisecond)
		l.mu.Lock()
		asked = l.addrs[key(mallory)].inflight + int(refused.Load())
		l.mu.Unlock()
	}
	cancel()
	wg.Wait()
	if checked.Load() != 5 || refused.Load() != 27 {
		t.Errorf("%d given a turn, %d refused; want 5 and 27", checked.Load(), refused.Load())
	}
}

// Correct logins on many connections from one address (a client opening
// several, an office behind NAT) are all served, at most Parallel checked
// at once: nothing counts as a failure until one happens.
func TestParallelLoginsServed(t *testing.T) {
	l := New(DefaultPolicy, nil)
	var inflight, most atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range 4 {
				if err := l.Wait(context.Background(), "test", alice); err != nil {
					t.Error(err)
					return
				}
				n := inflight.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(time.Millisecond)
				inflight.Add(-1)
				l.Done("test", alice, false)
			}
		})
	}
	wg.Wait()
	if m := most.Load(); m > int32(DefaultPolicy.Parallel) {
		t.Errorf("%d checked at once; Parallel is %d", m, DefaultPolicy.Parallel)
	}
	if n := l.Addresses(); n != 0 {
		t.Errorf("%d records left after successes only", n)
	}
}

// A success leaves nothing behind for an address without failures.
func TestSuccessLeavesNoRecord(t *testing.T) {
	l := New(fast(), nil)
	for range 5 {
		if err := l.Wait(context.Background(), "test", alice); err != nil {
			t.Fatal(err)
		}
		l.Done("test", alice, false)
	}
	if n := l.Addresses(); n != 0 {
		t.Errorf("%d records after successes only", n)
	}
}
