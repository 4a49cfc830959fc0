package smtp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// countingBackend accepts every recipient and counts deliveries: the
// benchmarks measure the front end; the store measures its fsyncs itself.
type countingBackend struct{ delivered atomic.Int64 }

func (*countingBackend) CheckRecipient(context.Context, string) error { return nil }
func (*countingBackend) Authenticate(context.Context, string, string) error {
	return nil
}
func (b *countingBackend) Deliver(context.Context, string, []string, []byte) error {
	b.delivered.Add(1)
	return nil
}

// BenchmarkSMTPDelivery sends messages over STARTTLS and implicit TLS, 1 KiB
// and 100 KiB, from 1 and 32 clients that each keep one connection and
// pipeline MAIL, RCPT and DATA (RFC 2920) as Postfix's smtp client does.
// Client and server share the machine. It reports msgs/s.
func BenchmarkSMTPDelivery(b *testing.B) {
	for _, mode := range []struct {
		name string
		mode tlsMode
	}{{"starttls", modeStartTLS}, {"implicit", modeImplicit}} {
		for _, size := range []int{1 << 10, 100 << 10} {
			for _, clients := range []int{1, 32} {
				name := fmt.Sprintf("%s/%dKiB/clients=%d", mode.name, size>>10, clients)
				b.Run(name, func(b *testing.B) { benchDelivery(b, mode.mode, size, clients) })
			}
		}
	}
}

func benchDelivery(b *testing.B, mode tlsMode, size, clients int) {
	be := &countingBackend{}
	// A real text handler, so that the per-delivery log line is paid for.
	ts := startServer(b, mode, Options{Backend: be, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	msg := benchMessage(size)

	conns := make([]*benchClient, clients)
	for i := range conns {
		conns[i] = newBenchClient(b, ts.addr, mode)
	}

	var next atomic.Int64
	var wg sync.WaitGroup
	b.SetBytes(int64(size))
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := c.send(msg); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	// CPU time of the process (server and client) per message: unlike
	// msgs/s it does not depend on what else the machine is running.
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
	if got := be.delivered.Load(); got != int64(b.N) && !b.Failed() {
		b.Errorf("%d delivered, want %d", got, b.N)
	}
	for _, c := range conns {
		c.nc.Close()
	}
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchMessage is a size-byte message of 78-octet lines, ready for DATA.
func benchMessage(size int) []byte {
	var sb strings.Builder
	sb.WriteString("From: alice@example.com\r\nTo: bob@example.com\r\nSubject: benchmark\r\n\r\n")
	line := strings.Repeat("0123456789", 7) + "abcdef\r\n"
	for sb.Len()+len(line) <= size {
		sb.WriteString(line)
	}
	sb.WriteString(strings.Repeat("x", size-sb.Len()-2) + "\r\n")
	sb.WriteString(".\r\n")
	return []byte(sb.String())
}

// benchClient is a lean pipelining client, so that the client side costs
// little next to the server.
type benchClient struct {
	nc net.Conn
	r  *bufio.Reader
	w  *bufio.Writer
}

func newBenchClient(b *testing.B, addr string, mode tlsMode) *benchClient {
	b.Helper()
	c := dial(b, addr, mode == modeImplicit)
	c.reply()
	c.cmd("EHLO bench.example")
	if mode == modeStartTLS {
		c.cmd("STARTTLS")
		c.startTLS()
		c.cmd("EHLO bench.example")
	}
	c.nc.SetDeadline(time.Time{})
	return &benchClient{nc: c.nc, r: c.r, w: bufio.NewWriterSize(c.nc, 32<<10)}
}

func (c *benchClient) send(msg []byte) error {
	c.w.WriteString("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
	if err := c.w.Flush(); err != nil {
		return err
	}
	for _, want := range []string{"250", "250", "354"} {
		if err := c.expect(want); err != nil {
			return err
		}
	}
	c.w.Write(msg)
	if err := c.w.Flush(); err != nil {
		return err
	}
	return c.expect("250")
}

func (c *benchClient) expect(code string) error {
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(string(line), code) {
			return fmt.Errorf("got %q, want %s", line, code)
		}
		if len(line) < 4 || line[3] != '-' {
			return nil
		}
	}
}
