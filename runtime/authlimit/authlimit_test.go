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

func failN(l *Limiter, ip netip.Addr, n int) {
	for range n {
		l.Failed("test", ip)
	}
}

func timeWait(t *testing.T, l *Limiter, ip netip.Addr) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	err := l.Wait(context.Background(), "test", ip)
	return time.Since(start), err
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
	l := New(DefaultPolicy, nil)
	for i := range DefaultPolicy.Free {
		if took, err := timeWait(t, l, alice); err != nil || took > 50*time.Millisecond {
			t.Fatalf("attempt %d: waited %v, %v", i+1, took, err)
		}
		l.Failed("test", alice)
	}
	if l.Addresses() != 1 {
		t.Errorf("%d addresses recorded", l.Addresses())
	}
}

// Past the free failures, attempts from one address are spaced however many
// connections they come on: 32 parallel attempts take as long as 32 in a
// row would, and other addresses are not held up.
func TestParallelAttemptsAreSerialised(t *testing.T) {
	p := fast()
	p.BlockAfter = 1000
	l := New(p, nil)
	failN(l, mallory, p.Free+3) // spacing 40 ms, the cap
	start := time.Now()
	var wg sync.WaitGroup
	var refused atomic.Int32
	for range 20 {
		wg.Go(func() {
			if err := l.Wait(context.Background(), "test", mallory); errors.Is(err, ErrRefused) {
				refused.Add(1)
			}
		})
	}
	if took, err := timeWait(t, l, alice); err != nil || took > 20*time.Millisecond {
		t.Errorf("another address waited %v, %v", took, err)
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
	p := fast()
	p.Delay, p.MaxDelay, p.MaxWait = time.Second, time.Second, time.Minute
	l := New(p, nil)
	failN(l, mallory, p.Free+1) // the next turn is a second away
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if took, err := func() (time.Duration, error) {
		start := time.Now()
		err := l.Wait(ctx, "test", mallory)
		return time.Since(start), err
	}(); !errors.Is(err, context.DeadlineExceeded) || took > 500*time.Millisecond {
		t.Errorf("canceled wait: %v after %v", err, took)
	}
}

// Turns a burst reserves grow apart as if its attempts had failed: with
// the policy's doubling (here 10 ms to 160 ms, at most 300 ms of waiting),
// 32 parallel attempts get the 3 free ones and then turns 0, 10, 30, 70
// and 150 ms away; the rest are beyond MaxWait and refused.
func TestBurstTurnsGrowApart(t *testing.T) {
	p := DefaultPolicy
	p.Delay, p.MaxDelay, p.MaxWait = 10*time.Millisecond, 160*time.Millisecond, 300*time.Millisecond
	l := New(p, nil)
	var checked, refused atomic.Int32
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			switch err := l.Wait(context.Background(), "test", mallory); {
			case err == nil:
				checked.Add(1)
				time.Sleep(time.Second) // a slow check: all turns are reserved before any failure counts
				l.Done("test", mallory, true)
			case errors.Is(err, ErrRefused):
				refused.Add(1)
			}
		})
	}
	wg.Wait()
	if want := int32(p.Free + 5); checked.Load() != want || refused.Load() != 32-want {
		t.Errorf("%d checked, %d refused; want %d and the rest", checked.Load(), refused.Load(), want)
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
