package runtime_test

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

// Stopping the runtime (SIGTERM cancels Serve's context) closes the ports at
// once, lets a message in flight finish with its 250, and closes sessions
// that are still open at the drain deadline. The message in flight is
// finished under a drain deadline no test can outrun (the runtime stops
// when its last session ends); the closing at the deadline is shown by a
// second run with a short one, which also finds the message stored.
func TestShutdownDrainsSessions(t *testing.T) {
	const drain = 2 * time.Second
	dir := t.TempDir()
	ks := newKeystore(t, t.TempDir())
	h := start(t, dir, testutil.HangGuard)
	h.putUser("alice@example.com", alicePassword)
	ports := testutil.FreePorts(t, 2)
	smtps := config.Listener{Protocol: config.ProtocolSMTP, Address: "127.0.0.1", Port: ports[0], TLS: ks.tls(config.TLSImplicit)}
	imaps := config.Listener{Protocol: config.ProtocolIMAP, Address: "127.0.0.1", Port: ports[1], TLS: ks.tls(config.TLSImplicit)}
	h.putListener("smtps", smtps)
	h.putListener("imaps", imaps)

	inflight := dialText(t, smtps.Addr(), ks.clientConfig())
	inflight.smtpReply()
	inflight.smtp("250", "EHLO go.example")
	inflight.smtp("250", "MAIL FROM:<someone@elsewhere.example>")
	inflight.smtp("250", "RCPT TO:<alice@example.com>")
	inflight.smtp("354", "DATA")
	inflight.send("Subject: drained\r\n\r\nfirst half,")

	stopped := make(chan error, 1)
	go func() { stopped <- h.stop() }()
	portsClose := func() {
		t.Helper()
		for _, l := range []config.Listener{smtps, imaps} {
			testutil.Eventually(t, l.Addr()+" to stop accepting", func() bool {
				c, err := net.Dial("tcp", l.Addr())
				if err == nil {
					c.Close()
				}
				return errors.Is(err, syscall.ECONNREFUSED)
			})
		}
	}
	portsClose()
	inflight.send("second half.\r\n.")
	if got := inflight.smtpReply(); !strings.HasPrefix(got, "250") {
		t.Fatalf("DATA in flight during shutdown: %q", got)
	}
	inflight.smtp("221", "QUIT")
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Serve returned %v", err)
		}
	case <-time.After(testutil.HangGuard):
		t.Fatal("the runtime did not stop when its last session ended")
	}

	// The message that got its 250 is there after a restart; sessions
	// still open when the runtime stops are closed at the drain deadline.
	h2 := start(t, dir, drain)
	h2.putListener("smtps", smtps)
	h2.putListener("imaps", imaps)
	c := dialText(t, imaps.Addr(), ks.clientConfig())
	c.line()
	c.imap("a", "LOGIN alice@example.com "+alicePassword)
	c.imap("b", "SELECT INBOX")
	c.send("c FETCH 1 BODY.PEEK[TEXT]")
	var body strings.Builder
	for {
		l := c.line()
		body.WriteString(l + "\n")
		if strings.HasPrefix(l, "c ") {
			break
		}
	}
	if !strings.Contains(body.String(), "first half,\nsecond half.\n") {
		t.Errorf("the drained message: %q", body.String())
	}

	idleSMTP := dialText(t, smtps.Addr(), ks.clientConfig())
	idleSMTP.smtpReply()
	idleSMTP.smtp("250", "EHLO idle.example")
	began := time.Now()
	stopped = make(chan error, 1)
	go func() { stopped <- h2.stop() }()
	portsClose()
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Serve returned %v", err)
		}
	case <-time.After(drain + testutil.HangGuard):
		t.Fatal("the runtime did not stop at the drain deadline")
	}
	if took := time.Since(began); took < drain-100*time.Millisecond {
		t.Errorf("stopped after %s, before the drain deadline %s, though sessions were open", took, drain)
	}
	for name, c := range map[string]*textConn{"idle SMTP": idleSMTP, "idle IMAP": c} {
		c.nc.SetDeadline(time.Now().Add(testutil.HangGuard))
		if _, err := c.r.ReadString('\n'); err == nil {
			// A goodbye line is fine; then the connection must end.
			if _, err := c.r.ReadString('\n'); err == nil {
				t.Errorf("%s session still open after shutdown", name)
			}
		} else if isTimeout(err) {
			t.Errorf("%s session still open after shutdown", name)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
