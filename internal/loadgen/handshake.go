package loadgen

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// HandshakeLoad describes a TLS handshake measurement against an
// implicit-TLS port: Clients goroutines each connect, handshake, read the
// server's first line (which also takes in a TLS 1.3 session ticket) and
// hang up, over and over for Duration.
type HandshakeLoad struct {
	// Addr is the server's host:port.
	Addr string
	// TLS is the client configuration. With a ClientSessionCache the
	// handshakes after the first resume (if the server allows it);
	// without one every handshake is a full one.
	TLS *tls.Config
	// Clients is the number of concurrent clients; zero means one.
	Clients int
	// Duration is how long to measure.
	Duration time.Duration
}

// RunHandshakes measures handshakes per second. With a session cache, each
// client primes it with one handshake before the clock starts.
func RunHandshakes(ctx context.Context, l HandshakeLoad) (Result, error) {
	clients := max(l.Clients, 1)
	if l.TLS.ClientSessionCache != nil {
		for range clients {
			if _, err := Handshake(ctx, l.Addr, l.TLS); err != nil {
				return Result{}, fmt.Errorf("priming the session cache: %w", err)
			}
		}
	}
	var (
		done, resumed atomic.Int64
		firstErr      error
		errOnce       sync.Once
		wg            sync.WaitGroup
	)
	deadline := time.Now().Add(l.Duration)
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				r, err := Handshake(ctx, l.Addr, l.TLS)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				done.Add(1)
				if r {
					resumed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return Result{Ops: done.Load(), Resumed: resumed.Load(), Elapsed: time.Since(start)}, firstErr
}

// Handshake connects to addr, handshakes, reads the first line and hangs
// up; it reports whether the session was resumed.
func Handshake(ctx context.Context, addr string, cfg *tls.Config) (bool, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false, err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return false, err
	}
	if _, err := bufio.NewReaderSize(tc, 512).ReadSlice('\n'); err != nil {
		return false, fmt.Errorf("reading the greeting: %w", err)
	}
	return tc.ConnectionState().DidResume, nil
}

// ServeBareTLS is the practical limit for a TLS listener: crypto/tls with
// cert and nothing else (session tickets on, as by default). Each
// connection is handshaken, greeted with one line, read until the client
// hangs up and closed with a close_notify alert, as a mail front end does.
// It returns when ln is closed.
func ServeBareTLS(ln net.Listener, cert tls.Certificate) error {
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go func() {
			c.SetDeadline(time.Now().Add(30 * time.Second))
			tc := tls.Server(c, cfg)
			defer tc.Close()
			if err := tc.Handshake(); err != nil {
				return
			}
			if _, err := io.WriteString(tc, "220 bare crypto/tls\r\n"); err != nil {
				return
			}
			io.Copy(io.Discard, tc)
		}()
	}
}
