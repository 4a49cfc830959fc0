package listener

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/smtp"
)

// nullBackend accepts nothing; the slowloris test never gets that far.
type nullBackend struct{}

func (nullBackend) CheckRecipient(context.Context, string) error { return smtp.ErrRelayDenied }
func (nullBackend) Deliver(context.Context, string, []string, []byte) error {
	return errors.New("not reached")
}
func (nullBackend) Authenticate(context.Context, string, string) error { return smtp.ErrAuthFailed }

// Slowloris against the real SMTP front end behind a listener: a client
// that dribbles a command one byte at a time does not extend its read
// deadline (each command line must arrive whole within ReadTimeout), and
// the per-address limit caps how many such connections one host holds.
func TestSlowlorisSMTP(t *testing.T) {
	t.Parallel()
	const readTimeout = 500 * time.Millisecond
	ks := newKeystore(t, t.TempDir(), "mail.jks", ecdsaKey)
	// smtpListener serves the SMTP front end with readTimeout on a
	// listener of its own, with at most 3 connections per address.
	smtpListener := func(readTimeout time.Duration) config.Listener {
		m, _ := newManager(t, Options{NewFrontend: func(l config.Listener, starttls *tls.Config) (Frontend, error) {
			return smtp.New(smtp.Options{
				Backend:     nullBackend{},
				Hostname:    "mail.example.com",
				TLSConfig:   starttls,
				ReadTimeout: readTimeout,
				Logger:      slog.New(slog.DiscardHandler),
			}), nil
		}})
		m.SetMaxConnectionsPerIP(3, false)
		l := tlsListener(testutil.FreePort(t), config.TLSStartTLS, ks)
		l.Protocol = config.ProtocolSMTP
		apply(t, m, "smtp", l)
		return l
	}
	l := smtpListener(readTimeout)

	dribble := func() (time.Duration, string) {
		nc, err := net.Dial("tcp", l.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		r := bufio.NewReader(nc)
		nc.SetReadDeadline(time.Now().Add(testutil.HangGuard))
		if greeting, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(greeting, "220 ") {
			t.Fatalf("greeting %q: %v", greeting, err)
		}
		start := time.Now()
		closed := make(chan string, 1)
		go func() {
			rest, _ := io.ReadAll(r)
			closed <- string(rest)
		}()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case rest := <-closed:
				return time.Since(start), rest
			case <-tick.C:
				nc.Write([]byte{"EHLO slow.example"[i%17]})
			}
			// The client never stops: were the deadline renewed by every
			// byte, it would never be cut off.
			if time.Since(start) > time.Minute {
				t.Fatal("a dribbling client was still connected after a minute")
			}
		}
	}
	held, rest := dribble()
	t.Logf("held %s (ReadTimeout %s), told %q", held, readTimeout, rest)
	// What arrived before the timeout reaches go-smtp as a line (net/textproto
	// does that) and gets one error reply; then the timeout ends the session.
	if replies := strings.Split(strings.TrimSuffix(rest, "\r\n"), "\r\n"); len(replies) > 2 || !strings.HasPrefix(replies[len(replies)-1], "421 ") {
		t.Errorf("dribbling client was told %q, want at most one reply and then a 421", rest)
	}

	// One host cannot hold more than the per-address limit. The connections
	// held must not time out while the test opens the next ones, however
	// slowly it runs: that listener waits HangGuard for a command.
	l = smtpListener(testutil.HangGuard)
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := range 5 {
		c, err := net.Dial("tcp", l.Addr())
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
		c.SetReadDeadline(time.Now().Add(testutil.HangGuard))
		line, err := bufio.NewReader(c).ReadString('\n')
		if served := err == nil && strings.HasPrefix(line, "220 "); served != (i < 3) {
			t.Errorf("connection %d: served=%v (%q, %v) with a limit of 3", i+1, served, line, err)
		}
	}
}
