package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
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
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
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

	for _, mode := range []struct {
		name string
		mode tlsMode
	}{{"plain", modeNone}, {"implicit TLS", modeImplicit}} {
		t.Run("closes idle sessions at the deadline, "+mode.name, func(t *testing.T) {
			srv, ln, served := newTestServer(t, mode.mode)
			// One client in a session, one that has not said EHLO.
			inSession := dial(t, ln.Addr().String(), mode.mode == modeImplicit)
			inSession.reply()
			inSession.cmd(ehlo)
			silent := dial(t, ln.Addr().String(), mode.mode == modeImplicit)
			silent.reply()

			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Shutdown = %v, want deadline exceeded", err)
			}
			if err := <-served; err != nil {
				t.Errorf("Serve returned %v", err)
			}
			inSession.expectHangup()
			silent.expectHangup()
		})
	}

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

// TestConnSetForgetsClosedConns: the set does not grow with connections
// that come and go, including implicit-TLS ones that never reach EHLO.
func TestConnSetForgetsClosedConns(t *testing.T) {
	for _, mode := range []tlsMode{modeNone, modeImplicit} {
		srv, ln, _ := newTestServer(t, mode)
		for range 20 {
			c := dial(t, ln.Addr().String(), mode == modeImplicit)
			c.reply()
			c.nc.Close()
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			runtime.GC()
			srv.conns.mu.Lock()
			n := len(srv.conns.conns)
			srv.conns.mu.Unlock()
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("mode %d: %d closed connections still tracked", mode, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
