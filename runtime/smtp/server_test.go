package smtp

import (
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
)

// TestImplicitTLSNoGreeting: on an implicit-TLS port a plain-text client
// gets no greeting (DESIGN "Rules the runtime keeps").
func TestImplicitTLSNoGreeting(t *testing.T) {
	ts := startServer(t, modeImplicit, Options{})
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 64)
	n, err := nc.Read(buf)
	var ne net.Error
	if n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("plain client read %q, %v; want nothing until the deadline", buf[:n], err)
	}
	// A plain-text EHLO is no ClientHello: the server hangs up, still
	// without a greeting.
	nc.SetReadDeadline(time.Now().Add(testutil.HangGuard))
	io.WriteString(nc, "EHLO client.example\r\n")
	data, _ := io.ReadAll(nc)
	if strings.Contains(string(data), "220") {
		t.Fatalf("plain client got %q", data)
	}
}

func newTestServer(t *testing.T, mode tlsMode) (*Server, net.Listener, chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Backend: &memBackend{}, Hostname: testHostname, Logger: slog.New(slog.DiscardHandler)}
	if mode == modeImplicit {
		ln = tls.NewListener(ln, serverTLSConfig(t))
	}
	srv := New(opts)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	return srv, ln, served
}

func TestShutdown(t *testing.T) {
	t.Run("waits for a session to QUIT", func(t *testing.T) {
		srv, ln, served := newTestServer(t, modeNone)
		c := dial(t, ln.Addr().String(), false)
		c.reply()
		c.cmd(ehlo)

		shut := make(chan error, 1)
		go func() { shut <- srv.Shutdown(context.Background()) }()
		if err := <-served; err != nil {
			t.Errorf("Serve returned %v", err)
		}
		if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			t.Error("listener still accepts after Shutdown")
		}
		select {
		case err := <-shut:
			t.Fatalf("Shutdown returned %v with a session open", err)
		case <-time.After(100 * time.Millisecond):
		}
		if got := c.cmd("NOOP"); !strings.HasPrefix(got, "250") {
			t.Errorf("session broken during Shutdown: %q", got)
		}
		c.cmd("QUIT")
		if err := <-shut; err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})

	t.Run("returns at the deadline and cancels deliveries", func(t *testing.T) {
		srv, ln, served := newTestServer(t, modeNone)
		c := dial(t, ln.Addr().String(), false)
		c.reply()
		c.cmd(ehlo)

		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v, want deadline exceeded", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve returned %v", err)
		}
		if srv.ctx.Err() == nil {
			t.Error("the backend's context is still live after the deadline")
		}
		// Closing the connection is the listener's part
		// (runtime/listener TestDrainClosesSMTPSessions); then the
		// session ends.
		c.nc.Close()
	})

	t.Run("Serve after Shutdown returns at once", func(t *testing.T) {
		srv, _, served := newTestServer(t, modeNone)
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		<-served
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Serve(ln); err != nil {
			t.Errorf("Serve = %v", err)
		}
		if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			t.Error("listener left open")
		}
	})

	t.Run("closing the listener ends Serve only", func(t *testing.T) {
		srv, ln, served := newTestServer(t, modeNone)
		c := dial(t, ln.Addr().String(), false)
		c.reply()
		ln.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve = %v", err)
		}
		if got := c.cmd(ehlo); !strings.HasPrefix(got, "250") {
			t.Errorf("open session broken: %q", got)
		}
		c.cmd("QUIT")
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown = %v", err)
		}
	})
}
