package listener

import (
	"crypto/tls"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/smtp"
)

func smtpFrontends(l config.Listener, starttls *tls.Config) (Frontend, error) {
	return smtp.New(smtp.Options{
		Backend:     nullBackend{},
		Hostname:    "mail.example.com",
		TLSConfig:   starttls,
		AuthLimiter: testutil.NoAuthLimit(),
		Logger:      slog.New(slog.DiscardHandler),
	}), nil
}

// Removing a listener lets its SMTP sessions go on until the drain
// deadline, then closes them: go-smtp's Shutdown waits for sessions without
// end, and the listener, which accepted the connections, closes what is
// left, implicit-TLS ones included. A session that goes on is shown with a
// drain deadline no test can outrun; the closing, with a short one.
func TestDrainClosesSMTPSessions(t *testing.T) {
	t.Parallel()
	const drain = 300 * time.Millisecond
	ks := newKeystore(t, t.TempDir(), "mail.jks", ecdsaKey)
	long, _ := newManager(t, Options{NewFrontend: smtpFrontends, DrainTimeout: testutil.HangGuard})
	short, _ := newManager(t, Options{NewFrontend: smtpFrontends, DrainTimeout: drain})
	for _, mode := range []string{config.TLSNone, config.TLSImplicit} {
		t.Run(mode, func(t *testing.T) {
			// greeted applies a listener in mode to m and returns a
			// client it has greeted.
			greeted := func(m *Manager) *client {
				l := tlsListener(testutil.FreePort(t), mode, ks)
				if mode == config.TLSNone {
					l.TLS = config.TLS{Mode: mode}
				}
				l.Protocol = config.ProtocolSMTP
				apply(t, m, mode, l)
				var c *client
				if mode == config.TLSImplicit {
					c = mustDialTLS(t, l.Addr())
				} else {
					c = dialPlain(t, l.Addr())
				}
				if got := c.mustLine(); !strings.HasPrefix(got, "220 ") {
					t.Fatalf("greeting %q", got)
				}
				return c
			}

			c := greeted(long)
			if err := long.Remove(mode); err != nil {
				t.Fatal(err)
			}
			if got := c.cmd("NOOP"); !strings.HasPrefix(got, "250") {
				t.Errorf("NOOP while draining: %q", got)
			}
			if got := c.cmd("QUIT"); !strings.HasPrefix(got, "221") {
				t.Errorf("QUIT while draining: %q", got)
			}

			c = greeted(short)
			removed := time.Now()
			if err := short.Remove(mode); err != nil {
				t.Fatal(err)
			}
			c.nc.SetReadDeadline(time.Now().Add(testutil.HangGuard))
			if got, err := c.line(); err == nil {
				t.Errorf("session still open after the drain deadline: %q", got)
			} else if isTimeout(err) {
				t.Errorf("session still open %v after the removal: %v", testutil.HangGuard, err)
			}
			if took := time.Since(removed); took < drain-50*time.Millisecond {
				t.Errorf("closed %v after the removal, before the drain deadline %v", took, drain)
			}
		})
	}
}

// A generation forgets each connection when it closes, implicit-TLS ones
// that never get past the greeting included, so the set it closes at the
// drain deadline does not grow with connections that came and went.
func TestDrainSetForgetsClosedConns(t *testing.T) {
	t.Parallel()
	ks := newKeystore(t, t.TempDir(), "mail.jks", ecdsaKey)
	m, _ := newManager(t, Options{NewFrontend: smtpFrontends})
	for _, mode := range []string{config.TLSStartTLS, config.TLSImplicit} {
		l := tlsListener(testutil.FreePort(t), mode, ks)
		l.Protocol = config.ProtocolSMTP
		apply(t, m, mode, l)
		var open []*client
		for range 20 {
			var c *client
			if mode == config.TLSImplicit {
				c = mustDialTLS(t, l.Addr())
			} else {
				c = dialPlain(t, l.Addr())
			}
			c.mustLine()
			open = append(open, c)
		}
		if n := tracked(m, mode); n != 20 {
			t.Errorf("%s: %d connections tracked with 20 open", mode, n)
		}
		for _, c := range open {
			c.cmd("QUIT")
			c.nc.Close()
		}
		testutil.Eventually(t, mode+" connections to be forgotten", func() bool { return tracked(m, mode) == 0 })
	}
}

// tracked is how many connections listener id's current front end holds.
func tracked(m *Manager, id string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.listeners[id].gen.Load().conns.len()
}
