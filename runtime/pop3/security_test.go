package pop3

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/authlimit"
)

// capabilities sends CAPA and returns the listed capabilities.
func capabilities(c *testClient) []string {
	c.t.Helper()
	if r := c.cmd("CAPA"); !strings.HasPrefix(r, "+OK") {
		c.t.Fatalf("CAPA: %q", r)
	}
	return c.multi()
}

func has(caps []string, name string) bool {
	for _, c := range caps {
		if c == name || strings.HasPrefix(c, name+" ") {
			return true
		}
	}
	return false
}

// RFC 2595 section 2.3: a server implementing STLS refuses clear-text
// logins until TLS is active; section 6: PLAIN is not advertised without
// TLS; section 4: capabilities may change after STLS.
func TestSTLSRefusesCredentialsBeforeTLS(t *testing.T) {
	t.Parallel()
	ts := startServer(t, starttls)
	c := dial(t, ts.addr, nil)

	caps := capabilities(c)
	if !has(caps, "STLS") || has(caps, "USER") || has(caps, "SASL") {
		t.Errorf("CAPA before STLS = %q, want STLS and neither USER nor SASL", caps)
	}
	for _, cmd := range []string{"USER alice", "PASS secret", "AUTH PLAIN AGFsaWNlAHNlY3JldA==", "AUTH PLAIN"} {
		if r := c.cmd(cmd); !strings.HasPrefix(r, "-ERR [AUTH] ") {
			t.Errorf("%s before STLS = %q, want -ERR [AUTH]", strings.Fields(cmd)[0], r)
		}
	}

	c.stls()
	caps = capabilities(c)
	if has(caps, "STLS") || !has(caps, "USER") || !has(caps, "SASL") {
		t.Errorf("CAPA after STLS = %q, want USER and SASL and no STLS", caps)
	}
	if r := c.cmd("STLS"); r != "-ERR command not permitted when TLS active" {
		t.Errorf("second STLS = %q", r) // RFC 2595 section 4
	}
	c.login("alice", "secret")
	if r := c.cmd("STAT"); r != "+OK 3 101" {
		t.Errorf("STAT = %q", r)
	}
	if logins, _, _ := ts.backend.stats(); logins != 1 {
		t.Errorf("backend saw %d logins, want 1", logins)
	}
}

// A plain listener that does not allow insecure auth never takes a
// password either, and does not pretend otherwise in CAPA.
func TestPlainListenerWithoutInsecureAuth(t *testing.T) {
	t.Parallel()
	ts := startServer(t, plainNoAuth)
	c := dial(t, ts.addr, nil)
	if caps := capabilities(c); has(caps, "USER") || has(caps, "SASL") || has(caps, "STLS") {
		t.Errorf("CAPA = %q", caps)
	}
	if r := c.cmd("USER alice"); !strings.HasPrefix(r, "-ERR [AUTH] ") {
		t.Errorf("USER = %q", r)
	}
}

// STARTTLS command injection (CVE-2011-0411 class): commands pipelined
// after STLS in the same plain-text packet must not run inside the TLS
// session. RFC 2595 section 4 also has the client wait for the +OK.
func TestSTLSDiscardsPipelinedCommands(t *testing.T) {
	t.Parallel()
	ts := startServer(t, starttls)
	c := dial(t, ts.addr, nil)

	c.send("STLS\r\nUSER alice\r\nPASS secret\r\nCAPA\r\n")
	if r := c.line(); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("STLS = %q", r)
	}
	tc := tls.Client(c.conn, getPKI(t).client)
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)

	// The first response over TLS must answer our NOOP, not the injected
	// USER, PASS or CAPA; and we are still in AUTHORIZATION.
	if r := c.cmd("NOOP"); r != "-ERR command not valid in this state" {
		t.Errorf("first response after STLS = %q: injected commands ran", r)
	}
	if r := c.cmd("PASS secret"); r != "-ERR send USER first" {
		t.Errorf("PASS after STLS = %q: the injected USER survived", r)
	}
	if logins, _, _ := ts.backend.stats(); logins != 0 {
		t.Errorf("backend saw %d logins from injected commands", logins)
	}
}

// RFC 2595 section 4: TLS negotiation starts right after the +OK; a client
// that sends something else instead is disconnected.
func TestSTLSHandshakeFailureEndsSession(t *testing.T) {
	t.Parallel()
	ts := startServer(t, starttls)
	c := dial(t, ts.addr, nil)
	c.send("STLS\r\n")
	if r := c.line(); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("STLS = %q", r)
	}
	c.send("USER alice\r\n") // not a ClientHello
	c.expectClosed()
}

// An implicit-TLS port says nothing to a plain-text client.
func TestImplicitTLSNoGreetingForPlainClient(t *testing.T) {
	t.Parallel()
	ts := startServer(t, implicitTLS)

	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 64)
	if n, err := conn.Read(buf); n > 0 || !isTimeout(err) {
		t.Fatalf("plain client got %q, %v before sending anything; want silence", buf[:n], err)
	}
	io.WriteString(conn, "CAPA\r\n")
	conn.SetReadDeadline(time.Now().Add(testutil.HangGuard))
	out, _ := io.ReadAll(conn)
	if strings.Contains(string(out), "+OK") {
		t.Fatalf("plain client got %q", out)
	}

	// A TLS client does get the greeting, and may log in at once.
	c := dial(t, ts.addr, getPKI(t).client)
	if caps := capabilities(c); has(caps, "STLS") || !has(caps, "USER") {
		t.Errorf("CAPA over implicit TLS = %q", caps)
	}
	c.login("alice", "secret")
	if r := c.cmd("STLS"); r != "-ERR command not valid in this state" {
		t.Errorf("STLS in TRANSACTION = %q", r)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Failed logins are paced by the AUTH limiter, and the third ends the
// session; the log line counts them and never contains a password.
func TestFailedLoginDelayAndLimit(t *testing.T) {
	t.Parallel()
	const base = 30 * time.Millisecond
	p := authlimit.DefaultPolicy
	p.Free, p.Delay, p.MaxDelay = 0, base, 2*base
	limiter := authlimit.New(p, nil)
	ts := startServer(t, implicitTLS, func(s *Server) { s.limiter = limiter })
	c := dial(t, ts.addr, getPKI(t).client)

	// The limiter spaces attempts from the moment it recorded the previous
	// failure, which lies between sending that PASS and its answer: the
	// sound lower bound is from sending the previous PASS to this answer.
	wantSpacing := []time.Duration{0, base, 2 * base}
	var prevSent time.Time
	for i, want := range wantSpacing {
		c.cmd("USER alice")
		sent := time.Now()
		r := c.cmd("PASS hunter2-" + string(rune('a'+i)))
		if gap := time.Since(prevSent); i > 0 && gap < want {
			t.Errorf("failure %d answered %v after the previous PASS was sent, want at least %v", i+1, gap, want)
		}
		prevSent = sent
		if !strings.HasPrefix(r, "-ERR [AUTH] ") {
			t.Errorf("failure %d: %q", i+1, r)
		}
	}
	c.expectClosed()

	testutil.Eventually(t, "session log line", func() bool { return strings.Contains(ts.logs.String(), "pop3 session") })
	logs := ts.logs.String()
	if !strings.Contains(logs, "auth_failures=3") {
		t.Errorf("log does not count failures: %s", logs)
	}
	if strings.Contains(logs, "hunter2") {
		t.Errorf("log contains a password: %s", logs)
	}
}

// One session per maildrop: the second gets [IN-USE] (RFC 2449 section
// 8.1.1) until the first ends.
func TestMaildropLock(t *testing.T) {
	t.Parallel()
	ts := startServer(t, implicitTLS)
	first := dial(t, ts.addr, getPKI(t).client)
	first.login("alice", "secret")

	second := dial(t, ts.addr, getPKI(t).client)
	second.cmd("USER alice")
	if r := second.cmd("PASS secret"); !strings.HasPrefix(r, "-ERR [IN-USE] ") {
		t.Errorf("second login = %q, want -ERR [IN-USE]", r)
	}
	if r := first.cmd("QUIT"); !strings.HasPrefix(r, "+OK") {
		t.Errorf("QUIT = %q", r)
	}
	first.expectClosed()
	second.login("alice", "secret")
}

// RFC 1939 section 3 autologout: an idle client is told and disconnected,
// without UPDATE.
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	ts := startServer(t, plainInsecure, func(s *Server) { s.idle = 150 * time.Millisecond })
	// The commands go out before the greeting is read (RFC 2449
	// PIPELINING), so that the session has them all however slowly this
	// test runs, and the idle time starts after the DELE.
	conn := testutil.Dial(t, ts.addr, nil)
	c := &testClient{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.send("USER alice\r\nPASS secret\r\nDELE 1\r\n")
	for _, what := range []string{"greeting", "USER", "PASS", "DELE"} {
		if r := c.line(); !strings.HasPrefix(r, "+OK") {
			t.Fatalf("%s: %q", what, r)
		}
	}
	if r := c.line(); r != "-ERR autologout: idle for too long" {
		t.Errorf("after idling: %q", r)
	}
	c.expectClosed()
	testutil.Eventually(t, "maildrop release", func() bool { _, closes, _ := ts.backend.stats(); return closes == 1 })
	if _, _, commits := ts.backend.stats(); len(commits) != 0 {
		t.Errorf("autologout committed %q", commits)
	}
}

// Slowloris: a command line trickled in byte by byte must still arrive
// within the idle timeout. The client never stops trickling: were the
// timeout renewed by every byte, the session would not end at all.
func TestSlowCommandLine(t *testing.T) {
	t.Parallel()
	ts := startServer(t, plainInsecure, func(s *Server) { s.idle = 150 * time.Millisecond })
	c := dial(t, ts.addr, nil)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for b := "CAPA"; ; b = " " {
			if _, err := io.WriteString(c.conn, b); err != nil {
				return // the server hung up
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	if r := c.line(); r != "-ERR autologout: idle for too long" {
		t.Errorf("slow line: %q", r)
	}
	c.expectClosed()
}

// A client that stops reading a large RETR is dropped after the idle
// timeout instead of holding the session forever.
func TestClientNotReading(t *testing.T) {
	t.Parallel()
	ts := startServer(t, plainInsecure, func(s *Server) { s.idle = 200 * time.Millisecond })
	ts.backend.drops["alice"] = []memMessage{{"big", strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n", 1<<17)}}
	c := dial(t, ts.addr, nil)
	c.login("alice", "secret")
	c.send("RETR 1\r\n")
	testutil.Eventually(t, "session end", func() bool { _, closes, _ := ts.backend.stats(); return closes == 1 })
	// The session closes the maildrop, then writes its log line.
	testutil.Eventually(t, "session log line", func() bool { return strings.Contains(ts.logs.String(), "pop3 session") })
	if !strings.Contains(ts.logs.String(), "i/o timeout") {
		t.Errorf("log does not say why the session ended: %s", ts.logs.String())
	}
}

// Lines longer than the limit end the session with a reason.
func TestLineTooLong(t *testing.T) {
	t.Parallel()
	ts := startServer(t, plainInsecure)
	c := dial(t, ts.addr, nil)
	if r := c.cmd("USER " + strings.Repeat("a", maxLineLength)); r != "-ERR line too long" {
		t.Errorf("long line: %q", r)
	}
	c.expectClosed()
}

// Something that is not POP3 is cut off after a few lines.
func TestTooManyBadCommands(t *testing.T) {
	t.Parallel()
	ts := startServer(t, plainInsecure)
	c := dial(t, ts.addr, nil)
	c.send("POST / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Header: y\r\n", 20))
	for i := 0; i < maxBadCommands; i++ {
		if r := c.line(); !strings.HasPrefix(r, "-ERR") {
			t.Fatalf("line %d = %q", i, r)
		}
	}
	if r := c.line(); r != "-ERR too many bad commands, closing connection" {
		t.Errorf("after %d bad commands: %q", maxBadCommands, r)
	}
	c.expectClosed()
}

// Backend failures reach the client only as response codes (RFC 2449
// section 8, RFC 3206 section 5 SYS/TEMP) and the log as details.
func TestBackendErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		setup func(*memBackend)
		cmds  []string
		want  string
		log   string
	}{
		{"login fails", func(b *memBackend) { b.failWith = errors.New("disk on fire") },
			[]string{"USER alice", "PASS secret"}, "-ERR [SYS/TEMP] temporary failure, try again later", "disk on fire"},
		{"invalid unique-id", func(b *memBackend) { b.badUID = true },
			[]string{"USER alice", "PASS secret"}, "-ERR [SYS/TEMP] maildrop not available, try again later", "invalid unique-id"},
		{"message gone", func(b *memBackend) {}, []string{"USER alice", "PASS secret", "-clear", "RETR 1"},
			"-ERR [SYS/TEMP] message not available, try again later", "no such message"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, plainInsecure)
			tc.setup(ts.backend)
			c := dial(t, ts.addr, nil)
			var r string
			for _, cmd := range tc.cmds {
				if cmd == "-clear" {
					ts.backend.mu.Lock()
					ts.backend.drops["alice"] = nil
					ts.backend.mu.Unlock()
					continue
				}
				r = c.cmd(cmd)
			}
			if r != tc.want {
				t.Errorf("got %q, want %q", r, tc.want)
			}
			c.cmd("QUIT")
			testutil.Eventually(t, "session log line", func() bool { return strings.Contains(ts.logs.String(), "pop3 session") })
			if logs := ts.logs.String(); !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, tc.log) {
				t.Errorf("log lacks %q: %s", tc.log, logs)
			}
		})
	}
}

// A panicking backend ends that session, not the server.
func TestBackendPanic(t *testing.T) {
	t.Parallel()
	ts := startServer(t, plainInsecure)
	ts.backend.panicky = true
	c := dial(t, ts.addr, nil)
	c.login("alice", "secret")
	c.send("RETR 1\r\n")
	c.expectClosed()
	testutil.Eventually(t, "session log line", func() bool { return strings.Contains(ts.logs.String(), "pop3 session") })
	if _, closes, _ := ts.backend.stats(); closes != 1 {
		t.Errorf("maildrop closed %d times, want 1", closes)
	}
	if logs := ts.logs.String(); !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "panic: backend bug") {
		t.Errorf("log lacks the panic: %s", logs)
	}
	dial(t, ts.addr, nil).login("bob", "pass word")
}

// One log line per session with the fields operators need.
func TestSessionLogLine(t *testing.T) {
	t.Parallel()
	ts := startServer(t, implicitTLS)
	c := dial(t, ts.addr, getPKI(t).client)
	c.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==")
	c.cmd("RETR 1")
	c.multi()
	c.cmd("DELE 2")
	c.cmd("QUIT")
	testutil.Eventually(t, "session log line", func() bool { return strings.Contains(ts.logs.String(), "pop3 session") })
	logs := ts.logs.String()
	if n := strings.Count(logs, "\n"); n != 1 {
		t.Errorf("%d log lines, want 1: %s", n, logs)
	}
	for _, want := range []string{"level=INFO", "remote=127.0.0.1:", "user=alice", "tls=true", "retrieved=1", "deleted=1", "duration="} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q: %s", want, logs)
		}
	}
	if strings.Contains(logs, "secret") || strings.Contains(logs, "AGFsaWNlAHNlY3JldA") {
		t.Errorf("log contains the password: %s", logs)
	}
}

// Shutdown lets sessions finish; when its context ends first it closes
// them without UPDATE.
func TestShutdown(t *testing.T) {
	t.Parallel()
	t.Run("graceful", func(t *testing.T) {
		t.Parallel()
		ts := startServer(t, plainInsecure)
		c := dial(t, ts.addr, nil)
		c.login("alice", "secret")
		c.cmd("DELE 1")

		done := make(chan error, 1)
		go func() { done <- ts.srv.Shutdown(context.Background()) }()
		testutil.Eventually(t, "listener close", func() bool { _, err := net.Dial("tcp", ts.addr); return err != nil })
		if r := c.cmd("QUIT"); !strings.HasPrefix(r, "+OK") {
			t.Errorf("QUIT during shutdown = %q", r)
		}
		if err := <-done; err != nil {
			t.Errorf("Shutdown = %v", err)
		}
		if _, _, commits := ts.backend.stats(); len(commits) != 1 {
			t.Errorf("commits = %q, want uid-1", commits)
		}
	})
	t.Run("forced", func(t *testing.T) {
		t.Parallel()
		ts := startServer(t, plainInsecure)
		c := dial(t, ts.addr, nil)
		c.login("alice", "secret")
		c.cmd("DELE 1")

		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v, want deadline exceeded", err)
		}
		if _, closes, commits := ts.backend.stats(); len(commits) != 0 || closes != 1 {
			t.Errorf("forced close: commits %q, closes %d; want none and 1", commits, closes)
		}
		c.expectClosed()
		if err := <-ts.done; err != nil {
			t.Errorf("Serve = %v", err)
		}
		ts.done <- nil // for the cleanup
	})
}
