// Package loadgen drives a mail server with load for benchmarks: SMTP
// deliveries over STARTTLS or implicit TLS, TLS handshakes, IMAP FETCH and
// idle IMAP sessions, plus a bare crypto/tls server as the practical limit
// for handshakes and the process measurements (CPU time, resident memory)
// that make the numbers comparable across machines. Its clients are lean
// (pipelining, preformatted messages, no per-message allocation to speak
// of), so that on a shared machine the server under test gets the CPU.
//
// `make bench` runs it through cmd/loadgen against the real runtime
// executable; runtime's own benchmarks use it in-process for profiles.
package loadgen

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Result is what one measurement did.
type Result struct {
	// Ops counts messages delivered, handshakes completed or messages
	// fetched.
	Ops int64
	// Bytes counts message bytes moved.
	Bytes int64
	// Resumed counts handshakes that resumed a session.
	Resumed int64
	// Elapsed is the measured time, connection set-up excluded.
	Elapsed time.Duration
}

// PerSecond is Ops per second.
func (r Result) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

// MiBPerSecond is Bytes per second in MiB.
func (r Result) MiBPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bytes) / (1 << 20) / r.Elapsed.Seconds()
}

// SMTPLoad describes an SMTP delivery measurement: Clients connections,
// each sending messages back to back (MAIL, RCPT and DATA pipelined as RFC
// 2920 allows, as Postfix's client does) until Messages have been sent in
// all or Duration has passed.
type SMTPLoad struct {
	// Addr is the server's host:port.
	Addr string
	// TLS is the client's TLS configuration. Required.
	TLS *tls.Config
	// Implicit selects implicit TLS; false means STARTTLS.
	Implicit bool
	// Size is the size of each message in bytes, headers included.
	Size int
	// Clients is the number of concurrent connections; zero means one.
	Clients int
	// Recipients are spread over the clients: client i sends to
	// Recipients[i % len(Recipients)]. Required.
	Recipients []string
	// Messages, when positive, is how many messages to send in all.
	Messages int64
	// Duration is how long to send when Messages is zero.
	Duration time.Duration
	// From is the envelope and header sender; empty means
	// loadgen@load.example.
	From string
	// Username and Password, when set, log in with AUTH PLAIN after TLS
	// (a submission service).
	Username, Password string
}

// RunSMTP connects every client (EHLO, STARTTLS and EHLO again when asked
// for), then sends messages and measures from the first to the last.
func RunSMTP(ctx context.Context, l SMTPLoad) (Result, error) {
	clients := max(l.Clients, 1)
	if len(l.Recipients) == 0 {
		return Result{}, errors.New("loadgen: no recipients")
	}
	from := l.From
	if from == "" {
		from = defaultFrom
	}
	msg := messageFrom(l.Size, from)
	conns := make([]*smtpClient, clients)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.nc.Close()
			}
		}
	}()
	for i := range conns {
		c, err := dialSMTP(ctx, l.Addr, l.TLS, l.Implicit)
		if err == nil && l.Username != "" {
			err = c.auth(l.Username, l.Password)
		}
		if err != nil {
			return Result{}, fmt.Errorf("client %d: %w", i, err)
		}
		c.cmds = []byte("MAIL FROM:<" + from + ">\r\nRCPT TO:<" + l.Recipients[i%len(l.Recipients)] + ">\r\nDATA\r\n")
		conns[i] = c
	}

	var (
		sent, todo atomic.Int64
		firstErr   error
		errOnce    sync.Once
		wg         sync.WaitGroup
	)
	todo.Store(l.Messages)
	deadline := time.Now().Add(l.Duration)
	start := time.Now()
	for _, c := range conns {
		wg.Go(func() {
			for ctx.Err() == nil {
				if l.Messages > 0 {
					if todo.Add(-1) < 0 {
						return
					}
				} else if time.Now().After(deadline) {
					return
				}
				if err := c.send(msg); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				sent.Add(1)
			}
		})
	}
	wg.Wait()
	r := Result{Ops: sent.Load(), Elapsed: time.Since(start)}
	r.Bytes = r.Ops * int64(l.Size)
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return r, firstErr
}

const defaultFrom = "loadgen@load.example"

// Message returns a size-byte message of 78-octet lines, dot-terminated for
// DATA (the terminator is not counted in size).
func Message(size int) []byte { return messageFrom(size, defaultFrom) }

func messageFrom(size int, from string) []byte {
	var sb strings.Builder
	sb.WriteString("From: " + from + "\r\nTo: rcpt@example.com\r\nSubject: load\r\n\r\n")
	line := strings.Repeat("0123456789", 7) + "abcdef\r\n"
	for sb.Len()+len(line) <= size {
		sb.WriteString(line)
	}
	if n := size - sb.Len() - 2; n > 0 {
		sb.WriteString(strings.Repeat("x", n))
	}
	sb.WriteString("\r\n.\r\n")
	return []byte(sb.String())
}

// auth logs in with AUTH PLAIN (RFC 4954).
func (c *smtpClient) auth(user, pass string) error {
	c.nc.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.nc.SetDeadline(time.Time{})
	c.w.WriteString("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass)) + "\r\n")
	if err := c.w.Flush(); err != nil {
		return err
	}
	return c.expect("235")
}

// smtpClient is one pipelining SMTP connection.
type smtpClient struct {
	nc   net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	cmds []byte
}

func dialSMTP(ctx context.Context, addr string, cfg *tls.Config, implicit bool) (*smtpClient, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if implicit {
		nc = tls.Client(nc, cfg)
	}
	c := &smtpClient{nc: nc, r: bufio.NewReaderSize(nc, 4<<10), w: bufio.NewWriterSize(nc, 32<<10)}
	step := func(cmd, code string) error {
		if cmd != "" {
			c.w.WriteString(cmd + "\r\n")
			if err := c.w.Flush(); err != nil {
				return err
			}
		}
		return c.expect(code)
	}
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	err = step("", "220")
	if err == nil {
		err = step("EHLO load.example", "250")
	}
	if err == nil && !implicit {
		if err = step("STARTTLS", "220"); err == nil {
			tc := tls.Client(nc, cfg)
			c.nc, c.r, c.w = tc, bufio.NewReaderSize(tc, 4<<10), bufio.NewWriterSize(tc, 32<<10)
			err = step("EHLO load.example", "250")
		}
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	c.nc.SetDeadline(time.Time{})
	return c, nil
}

func (c *smtpClient) send(msg []byte) error {
	c.nc.SetDeadline(time.Now().Add(time.Minute))
	c.w.Write(c.cmds)
	if err := c.w.Flush(); err != nil {
		return err
	}
	for _, code := range []string{"250", "250", "354"} {
		if err := c.expect(code); err != nil {
			return err
		}
	}
	c.w.Write(msg)
	if err := c.w.Flush(); err != nil {
		return err
	}
	return c.expect("250")
}

// expect reads one (possibly multi-line) reply and checks its code.
func (c *smtpClient) expect(code string) error {
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) < 4 || string(line[:3]) != code {
			return fmt.Errorf("SMTP: got %q, want %s", line, code)
		}
		if line[3] != '-' {
			return nil
		}
	}
}
