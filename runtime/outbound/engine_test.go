package outbound

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil/dnstest"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/queue"
)

func port(t testing.TB, addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// mxZone is example.test with one MX on loopback, not signed.
func mxZone(extra ...string) dnstest.Zone {
	return dnstest.Zone{Origin: "test.", Records: append([]string{
		"example.test. 60 IN MX 10 mx.example.test.",
		"mx.example.test. 60 IN A 127.0.0.1",
		"nullmx.test. 60 IN MX 0 .",
		"implicit.test. 60 IN A 127.0.0.1",
	}, extra...)}
}

// TestDeliverReusesConnections sends a stream of messages to one domain:
// every one arrives once, over STARTTLS, in far fewer connections than
// messages (RFC 5321 section 5.1 MX routing, PIPELINING).
func TestDeliverReusesConnections(t *testing.T) {
	s := startSink(t, false, false, "mx.example.test")
	dns := dnstest.Start(t, mxZone())
	h := newHarness(t, port(t, s.addr), config.Server{DNSResolvers: []string{dns.Addr}}, func(o *Options) {
		o.MaxConnections = 4
		o.IdleTimeout = DefaultIdleTimeout
	})
	const n = 40
	var ids []string
	for i := range n {
		ids = append(ids, h.submit("alice@ours.test", fmt.Sprintf("r%d@example.test", i)).ID)
	}
	for _, id := range ids {
		h.waitGone(id)
	}
	msgs := s.be.messages()
	if len(msgs) != n {
		t.Fatalf("%d messages arrived, want %d", len(msgs), n)
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		if seen[m.rcpts[0]] {
			t.Errorf("%s got the message twice", m.rcpts[0])
		}
		seen[m.rcpts[0]] = true
		if !strings.Contains(m.body, "with ESMTPS") || !strings.Contains(m.body, "\r\n.leading dot\r\n") {
			t.Errorf("message arrived without TLS or with its dot-stuffing wrong:\n%s", m.body)
		}
	}
	// At most 4 at a time; a connection that idles out under a loaded
	// machine may be followed by another, but reuse must dominate.
	if s.be.sessions > 8 {
		t.Errorf("%d connections for %d messages, want a handful", s.be.sessions, n)
	}
	if !strings.Contains(h.logs.String(), "tls=\"TLS 1.3") {
		t.Errorf("the delivery log does not name TLS 1.3:\n%s", h.logs.String())
	}
}

// TestTLSSessionResumed: a connection to an MX after the last one idled
// out resumes its TLS session instead of a full handshake, and the
// delivery log says so.
func TestTLSSessionResumed(t *testing.T) {
	s := startSink(t, false, false, "mx.example.test")
	dns := dnstest.Start(t, mxZone())
	h := newHarness(t, port(t, s.addr), config.Server{DNSResolvers: []string{dns.Addr}}, func(o *Options) {
		o.IdleTimeout = 20 * time.Millisecond
	})
	for i := range 2 {
		h.waitGone(h.submit("alice@ours.test", "bob@example.test").ID)
		testutil.Eventually(t, "the connection to idle out", func() bool {
			h.e.mu.Lock()
			d := h.e.dests["example.test"]
			h.e.mu.Unlock()
			d.mu.Lock()
			defer d.mu.Unlock()
			return d.conns == 0
		})
		s.be.mu.Lock()
		n := s.be.sessions
		s.be.mu.Unlock()
		if n != i+1 {
			t.Fatalf("%d connections for %d messages, want one each", n, i+1)
		}
	}
	var lines []string
	for _, l := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(l, "outbound delivery") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2 || strings.Contains(lines[0], "resumed") || !strings.Contains(lines[1], "resumed\"") {
		t.Fatalf("want a full handshake, then a resumed one:\n%s", strings.Join(lines, "\n"))
	}
}

// TestConcurrentSubmissionsDeliveredOnce: submissions from many
// goroutines start their own delivery while the scheduler retries the
// deferred ones; every message arrives exactly once, none is started
// twice, and the queue ends empty.
func TestConcurrentSubmissionsDeliveredOnce(t *testing.T) {
	s := startSink(t, false, false, "mx.example.test")
	const clients, each = 8, 15
	s.be.reply = func(n int) error {
		if n%3 == 0 && n <= clients*each {
			return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
		}
		return nil
	}
	dns := dnstest.Start(t, mxZone())
	h := newHarness(t, port(t, s.addr), config.Server{DNSResolvers: []string{dns.Addr}}, func(o *Options) {
		o.MaxConnections = 3
	})
	ids := make(chan string, clients*each)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range each {
				ids <- h.submit("alice@ours.test", fmt.Sprintf("c%d-%d@example.test", c, i)).ID
			}
		})
	}
	wg.Wait()
	close(ids)
	testutil.Eventually(t, "every message to leave the queue", func() bool {
		if n, _ := h.q.Stats(); n == 0 {
			return true
		}
		h.clock.Add(config.DefaultRetryMin) // the deferred ones are due again
		h.e.Wake()
		return false
	})
	got := map[string]int{}
	for _, m := range s.be.messages() {
		got[m.rcpts[0]]++
	}
	for c := range clients {
		for i := range each {
			if r := fmt.Sprintf("c%d-%d@example.test", c, i); got[r] != 1 {
				t.Errorf("%s got %d copies, want 1", r, got[r])
			}
		}
	}
	for id := range ids {
		if _, err := h.q.Entry(id); !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("message %s is still queued: %v", id, err)
		}
	}
}

// TestDeferredThenDelivered: a 451 keeps the message queued with the
// reply as its last error; when the clock reaches the next attempt it is
// delivered, once.
func TestDeferredThenDelivered(t *testing.T) {
	s := startSink(t, false, false, "mx.example.test")
	s.be.reply = func(n int) error {
		if n == 1 {
			return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
		}
		return nil
	}
	dns := dnstest.Start(t, mxZone())
	h := newHarness(t, port(t, s.addr), config.Server{DNSResolvers: []string{dns.Addr}})
	en := h.submit("alice@ours.test", "bob@example.test")
	got := h.waitAttempted(en.ID, 1)
	r := got.Recipients[0]
	if r.State != queue.Queued || !strings.Contains(r.LastError, "451 4.3.0") || !strings.Contains(r.LastError, "mx.example.test[127.0.0.1]") {
		t.Fatalf("after a 451: %+v", r)
	}
	if want := h.clock.Now().Add(config.DefaultRetryMin); !got.NextAttempt.Equal(want) {
		t.Errorf("next attempt %s, want %s", got.NextAttempt, want)
	}
	h.clock.Add(config.DefaultRetryMin)
	h.e.Wake()
	h.waitGone(en.ID)
	if n := len(s.be.messages()); n != 1 {
		t.Errorf("%d copies arrived, want 1", n)
	}
	if dsn := h.local.get("alice@ours.test"); len(dsn) != 0 {
		t.Errorf("the sender got a notification for a delivered message:\n%s", dsn[0])
	}
}

// TestBounceDSN: a 550 fails the recipient at once and the sender gets a
// delivery status notification (RFC 3464) naming it; the recipient that
// was accepted is delivered.
func TestBounceDSN(t *testing.T) {
	s := startSink(t, false, false, "mx.example.test")
	dns := dnstest.Start(t, mxZone())
	h := newHarness(t, port(t, s.addr), config.Server{DNSResolvers: []string{dns.Addr}})
	en := h.submit("alice@ours.test", "unknown@example.test", "bob@example.test", "nobody@nullmx.test")
	h.waitGone(en.ID)
	if n := len(s.be.messages()); n != 1 {
		t.Fatalf("%d messages arrived, want 1 (for bob)", n)
	}
	dsns := h.local.get("alice@ours.test")
	if len(dsns) != 1 {
		t.Fatalf("the sender got %d notifications, want 1", len(dsns))
	}
	for _, want := range []string{
		"Content-Type: multipart/report; report-type=delivery-status",
		"Final-Recipient: rfc822; unknown@example.test", "Action: failed", "Status: 5.1.1",
		"Remote-MTA: dns; mx.example.test", "Diagnostic-Code: smtp; 550 5.1.1",
		"Final-Recipient: rfc822; nobody@nullmx.test", "Status: 5.1.10",
		"Content-Type: text/rfc822-headers", "Subject: m",
	} {
		if !strings.Contains(dsns[0], want) {
			t.Errorf("the DSN lacks %q:\n%s", want, dsns[0])
		}
	}
	if strings.Contains(dsns[0], "bob@example.test\r\nAction") {
		t.Errorf("the DSN names the delivered recipient:\n%s", dsns[0])
	}
}

// TestDelayWarningAndGiveUp moves the clock: after 4 hours the sender is
// told once that the message is delayed; after 5 days it is returned.
func TestDelayWarningAndGiveUp(t *testing.T) {
	dns := dnstest.Start(t, mxZone())
	// Nothing listens on this port: every attempt fails to connect.
	h := newHarness(t, testutil.FreePort(t), config.Server{DNSResolvers: []string{dns.Addr}})
	en := h.submit("alice@ours.test", "bob@example.test")
	attempts := 1
	got := h.waitAttempted(en.ID, attempts)
	if !strings.Contains(got.Recipients[0].LastError, "connection refused") {
		t.Fatalf("last error %q", got.Recipients[0].LastError)
	}
	for h.clock.Now().Sub(en.Created) < 4*time.Hour+time.Minute {
		h.clock.Add(got.NextAttempt.Sub(h.clock.Now()))
		h.e.Wake()
		attempts++
		got = h.waitAttempted(en.ID, attempts)
	}
	dsns := h.local.get("alice@ours.test")
	if len(dsns) != 1 || !strings.Contains(dsns[0], "Action: delayed") || !strings.Contains(dsns[0], "Will-Retry-Until:") {
		t.Fatalf("after 4 hours the sender has %d notifications, want one delay warning: %q", len(dsns), dsns)
	}
	if !got.DelayWarned {
		t.Error("the entry does not record the warning")
	}
	// The backoff doubles up to 4 hours, then 5 days end it.
	for {
		h.clock.Add(got.NextAttempt.Sub(h.clock.Now()))
		h.e.Wake()
		attempts++
		if h.clock.Now().Sub(en.Created) >= config.DefaultGiveUpAfter {
			break
		}
		got = h.waitAttempted(en.ID, attempts)
		if gap := got.NextAttempt.Sub(h.clock.Now()); gap > config.DefaultRetryMax {
			t.Fatalf("retry gap %s exceeds %s", gap, config.DefaultRetryMax)
		}
	}
	h.waitGone(en.ID)
	dsns = h.local.get("alice@ours.test")
	if len(dsns) != 2 || !strings.Contains(dsns[1], "Action: failed") || !strings.Contains(dsns[1], "gave up after 120h0m0s") {
		t.Fatalf("after 5 days: %d notifications, want the warning and a failure: %q", len(dsns), dsns)
	}
	if attempts > 40 {
		t.Errorf("%d attempts in 5 days; the backoff does not grow", attempts)
	}
}

// TestLocalRecipientsThroughTheQueue: local recipients of a message that
// also goes out are delivered from the queue; an unknown local user is
// returned to the sender.
func TestLocalRecipientsThroughTheQueue(t *testing.T) {
	s := startSink(t, false, false, "mx.example.test")
	dns := dnstest.Start(t, mxZone())
	h := newHarness(t, port(t, s.addr), config.Server{DNSResolvers: []string{dns.Addr}})
	en := h.submit("alice@ours.test", "bob@example.test", "carol@ours.test", "ghost@ours.test")
	h.waitGone(en.ID)
	if got := h.local.get("carol@ours.test"); len(got) != 1 || !strings.Contains(got[0], "Subject: m") {
		t.Errorf("carol has %d messages", len(got))
	}
	dsns := h.local.get("alice@ours.test")
	if len(dsns) != 1 || !strings.Contains(dsns[0], "Final-Recipient: rfc822; ghost@ours.test") {
		t.Errorf("the sender's notifications: %q", dsns)
	}
}

// TestImplicitMX: a domain without MX records is its own MX (RFC 5321
// section 5.1).
func TestImplicitMX(t *testing.T) {
	s := startSink(t, false, false, "implicit.test")
	dns := dnstest.Start(t, mxZone())
	h := newHarness(t, port(t, s.addr), config.Server{DNSResolvers: []string{dns.Addr}})
	h.waitGone(h.submit("alice@ours.test", "bob@implicit.test").ID)
	if n := len(s.be.messages()); n != 1 {
		t.Errorf("%d messages arrived, want 1", n)
	}
}

// TestRelayWithAuth sends through a smarthost that requires AUTH over
// implicit TLS, its certificate pinned by a tls_policy for its address.
func TestRelayWithAuth(t *testing.T) {
	s := startSink(t, true, true, "relay.example.net", "127.0.0.1")
	s.be.users = map[string]string{"alice@ours.test": "relay-secret"}
	fp := fmt.Sprintf("%X", sha256Sum(s.cert.TLS.Leaf.Raw))
	h := newHarness(t, 0, config.Server{
		DNSResolvers: []string{"127.0.0.1:9"},
		Relay:        &config.Relay{Address: s.addr, Mode: config.TLSImplicit, Username: "alice@ours.test", Password: "relay-secret"},
		TLSPolicies:  []config.TLSPolicy{{Domain: "127.0.0.1", FingerprintsSHA256: []string{fp}}},
	})
	h.waitGone(h.submit("alice@ours.test", "friend@elsewhere.example").ID)
	if msgs := s.be.messages(); len(msgs) != 1 || msgs[0].rcpts[0] != "friend@elsewhere.example" {
		t.Fatalf("the relay got %+v", msgs)
	}

	// A wrong password keeps the message queued, and says why.
	h2 := newHarness(t, 0, config.Server{
		DNSResolvers: []string{"127.0.0.1:9"},
		Relay:        &config.Relay{Address: s.addr, Mode: config.TLSImplicit, Username: "alice@ours.test", Password: "wrong"},
		TLSPolicies:  []config.TLSPolicy{{Domain: "127.0.0.1", FingerprintsSHA256: []string{fp}}},
	})
	en := h2.waitAttempted(h2.submit("alice@ours.test", "friend@elsewhere.example").ID, 1)
	if r := en.Recipients[0]; r.State != queue.Queued || !strings.Contains(r.LastError, "535") {
		t.Errorf("with a wrong relay password: %+v", r)
	}
}

// TestConfigureRetiresOpenConnections: a connection kept open for the
// destination's next message carries nothing after Configure. Moving the
// relay sends the next message to the new one, however long the old
// connection would have waited (a connection made under a weaker TLS
// policy must not outlive it either).
func TestConfigureRetiresOpenConnections(t *testing.T) {
	relay := func(s *sink) *config.Relay {
		return &config.Relay{Address: s.addr, Mode: config.TLSImplicit, Username: "alice@ours.test", Password: "relay-secret"}
	}
	server := func(s *sink) config.Server {
		return config.Server{
			Hostname: "mail.ours.test", DNSResolvers: []string{"127.0.0.1:9"}, Relay: relay(s),
			TLSPolicies: []config.TLSPolicy{{Domain: "127.0.0.1", FingerprintsSHA256: []string{fmt.Sprintf("%X", sha256Sum(s.cert.TLS.Leaf.Raw))}}},
		}
	}
	old, next := startSink(t, true, true, "old.example.net", "127.0.0.1"), startSink(t, true, true, "new.example.net", "127.0.0.1")
	for _, s := range []*sink{old, next} {
		s.be.users = map[string]string{"alice@ours.test": "relay-secret"}
	}
	h := newHarness(t, 0, server(old), func(o *Options) { o.IdleTimeout = time.Hour })
	h.waitGone(h.submit("alice@ours.test", "friend@elsewhere.example").ID)
	if err := h.e.Configure(server(next)); err != nil {
		t.Fatal(err)
	}
	h.waitGone(h.submit("alice@ours.test", "friend@elsewhere.example").ID)
	if o, n := len(old.be.messages()), len(next.be.messages()); o != 1 || n != 1 {
		t.Errorf("the old relay got %d messages and the new one %d; want 1 and 1", o, n)
	}
}

// TestRetryNowAndDrop: the operator's retry starts the next attempt at
// once, whatever the clock says; a dropped message leaves the queue and
// its sender is not told.
func TestRetryNowAndDrop(t *testing.T) {
	dns := dnstest.Start(t, mxZone())
	h := newHarness(t, testutil.FreePort(t), config.Server{DNSResolvers: []string{dns.Addr}})
	en := h.submit("alice@ours.test", "bob@example.test")
	h.waitAttempted(en.ID, 1)
	if err := h.e.RetryNow(en.ID); err != nil {
		t.Fatal(err)
	}
	h.waitAttempted(en.ID, 2) // the clock has not moved
	if err := h.e.Drop(en.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.q.Entry(en.ID); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("the dropped message is still queued: %v", err)
	}
	if err := h.e.RetryNow(en.ID); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("retrying a dropped message: %v", err)
	}
	h.clock.Add(config.DefaultGiveUpAfter)
	h.e.Wake()
	time.Sleep(50 * time.Millisecond)
	if dsn := h.local.get("alice@ours.test"); len(dsn) != 0 {
		t.Errorf("the sender of a dropped message was notified: %q", dsn)
	}
}

// TestDeliversPreviousQueueLayout: a queue written before inline bodies
// (runtime/queue/testdata: two messages in spool files, one of them 76 KiB,
// and a send log from a runtime killed while sending) is delivered after
// the upgrade: the recipient in the reply window is sent again, the one
// whose 250 was logged is not, and the spool files go with the messages.
func TestDeliversPreviousQueueLayout(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "queue", "testdata", "v1"))); err != nil {
		t.Fatal(err)
	}
	s := startSink(t, false, false, "mx.example.test")
	dns := dnstest.Start(t, mxZone("dest.test. 60 IN MX 10 mx.example.test.", "other.test. 60 IN MX 10 mx.example.test."))
	h := newHarnessIn(t, dir, port(t, s.addr), config.Server{DNSResolvers: []string{dns.Addr}})
	// The fixture's messages were queued on 2026-12-06 at 09:00.
	h.clock.Add(time.Date(2026, 12, 6, 9, 30, 0, 0, time.UTC).Sub(h.clock.Now()))
	h.e.Wake()
	const small, large = "18ee9e861014a00000000001", "18ee9e861014a00000000002"
	h.waitGone(small)
	h.waitGone(large)
	got := map[string]string{}
	for _, m := range s.be.messages() {
		for _, r := range m.rcpts {
			if _, dup := got[r]; dup {
				t.Errorf("%s got the message twice", r)
			}
			got[r] = m.body
		}
	}
	if len(got) != 2 || !strings.Contains(got["bob@dest.test"], "Message-ID: <v1-small@ours.test>") ||
		!strings.Contains(got["carol@other.test"], "Message-ID: <v1-large@ours.test>") || len(got["carol@other.test"]) < 78097 {
		t.Errorf("arrived: %d recipients %v; want bob@dest.test the small message and carol@other.test the large one whole", len(got), slices.Collect(maps.Keys(got)))
	}
	// A spool file goes right after the commit that removed its entry.
	testutil.Eventually(t, "the spool files to be removed", func() bool {
		files, err := os.ReadDir(filepath.Join(dir, "spool"))
		return err == nil && len(files) == 0
	})
}

// countingConn counts the writes on a connection, below TLS.
type countingConn struct {
	net.Conn
	writes *atomic.Int32
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// TestPipelinesAcrossMessages: with messages waiting, the commands of the
// next one go out behind the end of data of the one before (RFC 2920
// section 3.1), so a stream over one connection costs one write a message,
// not two, and every message still arrives once, whole.
func TestPipelinesAcrossMessages(t *testing.T) {
	s := startSink(t, false, false, "mx.example.test")
	// The first message's reply waits until the others are queued, so
	// that they are sent back to back.
	first, gate := make(chan struct{}), make(chan struct{})
	s.be.reply = func(n int) error {
		if n == 1 {
			close(first)
			<-gate
		}
		return nil
	}
	dns := dnstest.Start(t, mxZone())
	var writes atomic.Int32
	h := newHarness(t, port(t, s.addr), config.Server{DNSResolvers: []string{dns.Addr}}, func(o *Options) {
		o.MaxConnections = 1
		o.IdleTimeout = time.Minute // one connection, however slow the machine
		o.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			nc, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return countingConn{nc, &writes}, nil
		}
	})
	const n = 20
	ids := []string{h.submit("alice@ours.test", "r0@example.test").ID}
	<-first
	for i := 1; i < n; i++ {
		ids = append(ids, h.submit("alice@ours.test", fmt.Sprintf("r%d@example.test", i)).ID)
	}
	close(gate)
	for _, id := range ids {
		h.waitGone(id)
	}
	msgs := s.be.messages()
	seen := map[string]bool{}
	for _, m := range msgs {
		if seen[m.rcpts[0]] || !strings.Contains(m.body, "\r\n.leading dot\r\n") {
			t.Errorf("%s: a second copy, or the body arrived changed:\n%s", m.rcpts[0], m.body)
		}
		seen[m.rcpts[0]] = true
	}
	if len(seen) != n || s.be.sessions != 1 {
		t.Fatalf("%d of %d recipients got the message, over %d connections; want all over one", len(seen), n, s.be.sessions)
	}
	// Two writes for each of the first two messages, one for each of the
	// others, and at most ten for EHLO, STARTTLS, the handshake and QUIT;
	// without pipelining across messages it would be 2n and more.
	if got := writes.Load(); got > n+2+10 {
		t.Errorf("%d writes for %d messages over one connection; want at most %d", got, n, n+12)
	}
}

// TestCloseLeavesTheRestQueued: Close ends a connection after the
// transaction in progress (and one pipelined behind it); the messages
// still waiting for that destination stay queued, they are not sent
// first.
func TestCloseLeavesTheRestQueued(t *testing.T) {
	s := startSink(t, false, false, "mx.example.test")
	first, release := make(chan struct{}), make(chan struct{})
	s.be.reply = func(n int) error {
		if n == 1 {
			close(first)
			<-release
		}
		return nil
	}
	dns := dnstest.Start(t, mxZone())
	h := newHarness(t, port(t, s.addr), config.Server{DNSResolvers: []string{dns.Addr}}, func(o *Options) {
		o.MaxConnections = 1
	})
	const n = 20
	for i := range n {
		h.submit("alice@ours.test", fmt.Sprintf("r%d@example.test", i))
	}
	<-first
	closed := make(chan struct{})
	go func() { h.e.Close(); close(closed) }()
	testutil.Eventually(t, "Close to cancel the engine", func() bool { return h.e.ctx.Err() != nil })
	close(release)
	<-closed
	if got := len(s.be.messages()); got > 2 {
		t.Errorf("%d messages delivered after Close, want the one in progress and at most one pipelined behind it", got)
	}
	if left, _ := h.q.Stats(); left < n-2 {
		t.Errorf("%d messages left queued, want at least %d", left, n-2)
	}
}
