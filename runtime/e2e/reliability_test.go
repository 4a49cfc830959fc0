//go:build reliability

package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
)

// The reliability suite (make reliability): long runs against the real
// runtime executable that print the figures docs/reliability.md records.

// authOnce connects from local, says EHLO and tries one AUTH PLAIN; it
// returns the reply's code.
func authOnce(addr string, local net.IP, cfg *tls.Config, password string) (string, error) {
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: local}}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReader(conn)
	reply := func() (string, error) {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return "", err
			}
			if len(l) < 4 || l[3] != '-' {
				return l[:3], nil
			}
		}
	}
	if _, err := reply(); err != nil {
		return "", err
	}
	fmt.Fprintf(conn, "EHLO brute.example\r\n")
	if _, err := reply(); err != nil {
		return "", err
	}
	fmt.Fprintf(conn, "AUTH PLAIN %s\r\n", base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password)))
	return reply()
}

// TestBruteForceRate: 32 connections guess passwords from one address as
// fast as the runtime lets them, for a minute, over submission with
// implicit TLS. It reports how many guesses were checked (535) and how
// many refused unchecked (454), and how long a real user on another
// address waits for a correct login meanwhile.
func TestBruteForceRate(t *testing.T) {
	const (
		attackers = 32
		duration  = time.Minute
	)
	dir, tlsSettings, clientTLS := setup(t)
	subs := config.Listener{Protocol: config.ProtocolSubmission, Address: "127.0.0.1", Port: testutil.FreePort(t), TLS: tlsSettings}
	p := serve(t, dir)
	ctx := context.Background()
	if _, err := p.client.PutUser(ctx, user, control.UserRequest{Password: userPassword}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.client.PutListener(ctx, "submissions", subs); err != nil {
		t.Fatal(err)
	}
	attacker, real := net.ParseIP("127.0.0.1"), net.ParseIP("127.0.0.2")

	var checked, refused, other atomic.Int64
	stop := time.Now().Add(duration)
	var wg sync.WaitGroup
	for range attackers {
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				code, err := authOnce(subs.Addr(), attacker, clientTLS, fmt.Sprintf("guess-%d", i))
				switch {
				case err != nil:
					other.Add(1)
				case code == "535":
					checked.Add(1)
				case code == "454":
					refused.Add(1)
				default:
					other.Add(1)
				}
			}
		})
	}
	var waits []time.Duration
	for time.Now().Before(stop) {
		start := time.Now()
		code, err := authOnce(subs.Addr(), real, clientTLS, userPassword)
		if err != nil || code != "235" {
			t.Errorf("the real user on another address: %q, %v", code, err)
		}
		waits = append(waits, time.Since(start))
		time.Sleep(5 * time.Second)
	}
	wg.Wait()
	slices.Sort(waits)
	t.Logf("brute force from one address, %d connections, %v: %d guesses checked (%.2f/s), %d refused unchecked, %d other; "+
		"the real user's login from another address took %v at most (median %v)",
		attackers, duration, checked.Load(), float64(checked.Load())/duration.Seconds(), refused.Load(), other.Load(),
		waits[len(waits)-1].Round(time.Millisecond), waits[len(waits)/2].Round(time.Millisecond))
	// 3 free, a burst's turns at 0, 1, 3, 7 and 15 s, then 16 s apart.
	if checked.Load() > 15 {
		t.Errorf("%d guesses checked in %v; the limiter allows about 12", checked.Load(), duration)
	}
}

// TestConnectionFlood: one address opens connections as fast as it can
// and holds them for 30 s while a legitimate client on another address
// connects, reads the greeting and says EHLO every 100 ms. It reports how
// many flood connections were served and refused, and the legitimate
// client's latency.
func TestConnectionFlood(t *testing.T) {
	const (
		flooders = 16
		duration = 30 * time.Second
		perIP    = 50
	)
	dir, _, _ := setup(t)
	smtp := config.Listener{Protocol: config.ProtocolSMTP, Address: "127.0.0.1", Port: testutil.FreePort(t), TLS: config.TLS{Mode: config.TLSNone}}
	p := serve(t, dir)
	ctx := context.Background()
	srv, err := p.client.Server(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv.MaxConnectionsPerIP = perIP // explicit: loopback is limited too
	if _, err := p.client.SetServer(ctx, srv); err != nil {
		t.Fatal(err)
	}
	if _, err := p.client.PutListener(ctx, "smtp", smtp); err != nil {
		t.Fatal(err)
	}
	flood, legit := net.ParseIP("127.0.0.1"), net.ParseIP("127.0.0.3")

	var served, refused, failed atomic.Int64
	var mu sync.Mutex
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	stop := time.Now().Add(duration)
	var wg sync.WaitGroup
	for range flooders {
		wg.Go(func() {
			d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: flood}}
			for time.Now().Before(stop) {
				c, err := d.Dial("tcp", smtp.Addr())
				if err != nil {
					failed.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				switch {
				case err == nil && strings.HasPrefix(line, "220 "):
					served.Add(1)
					mu.Lock()
					held = append(held, c)
					mu.Unlock()
				case err == nil && strings.HasPrefix(line, "421 "):
					refused.Add(1)
					c.Close()
				default:
					failed.Add(1)
					c.Close()
				}
			}
		})
	}
	var lat []time.Duration
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: legit}}
	for time.Now().Before(stop) {
		start := time.Now()
		c, err := d.Dial("tcp", smtp.Addr())
		if err != nil {
			t.Errorf("legitimate client: %v", err)
			continue
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		greeting, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(greeting, "220 ") {
			t.Errorf("legitimate client greeted %q, %v", greeting, err)
		}
		fmt.Fprintf(c, "EHLO legit.example\r\n")
		for {
			l, err := r.ReadString('\n')
			if err != nil || len(l) < 4 || l[3] != '-' {
				break
			}
		}
		lat = append(lat, time.Since(start))
		c.Close()
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))].Round(10 * time.Microsecond) }
	t.Logf("connection flood from one address (%d dialers, %v, max_connections_per_ip=%d): %d served and held, %d refused with 421, %d failed; "+
		"legitimate client from another address, %d connections: p50 %v, p99 %v, max %v",
		flooders, duration, perIP, served.Load(), refused.Load(), failed.Load(), len(lat), pct(0.5), pct(0.99), lat[len(lat)-1].Round(10*time.Microsecond))
	if served.Load() > perIP {
		t.Errorf("%d flood connections served, limit %d", served.Load(), perIP)
	}
}
