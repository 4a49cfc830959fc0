package pop3

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// benchMessage is a message of about size bytes of 78-octet lines, every
// tenth of them starting with "." so byte-stuffing is exercised.
func benchMessage(size int) string {
	var b strings.Builder
	b.WriteString("Subject: benchmark\r\n\r\n")
	for i := 0; b.Len() < size; i++ {
		if i%10 == 0 {
			b.WriteByte('.')
		} else {
			b.WriteByte('x')
		}
		b.WriteString(strings.Repeat("0123456789", 7) + "abcde\r\n")
	}
	return b.String()
}

// BenchmarkRETR measures RETR throughput end to end: one logged-in client
// retrieving the same message over loopback, plain and over TLS.
func BenchmarkRETR(b *testing.B) {
	for _, kind := range []struct {
		name string
		kind listenerKind
	}{{"plain", plainInsecure}, {"tls", implicitTLS}} {
		for _, size := range []int{4 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("%s/%dKiB", kind.name, size>>10), func(b *testing.B) {
				ts := startServer(b, kind.kind)
				msg := benchMessage(size)
				ts.backend.drops["alice"] = []memMessage{{"bench", msg}}
				var c *testClient
				if kind.kind == implicitTLS {
					c = dial(b, ts.addr, getPKI(b).client)
				} else {
					c = dial(b, ts.addr, nil)
				}
				c.login("alice", "secret")
				c.conn.SetReadDeadline(time.Time{}) // the helpers set one
				r := bufio.NewReaderSize(c.conn, 64<<10)
				b.SetBytes(int64(len(msg)))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					c.send("RETR 1\r\n")
					if err := readMultiLine(r); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// readMultiLine consumes a status line and a multi-line body.
func readMultiLine(r *bufio.Reader) error {
	status, err := r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(status, []byte("+OK")) {
		return fmt.Errorf("status %q", status)
	}
	for {
		line, err := r.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			return err
		}
		if string(line) == ".\r\n" {
			return nil
		}
	}
}

// BenchmarkDotWriter measures byte-stuffing alone.
func BenchmarkDotWriter(b *testing.B) {
	msg := []byte(benchMessage(1 << 20))
	bw := bufio.NewWriterSize(io.Discard, writeBufferSize)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		dw := newDotWriter(bw)
		for p := msg; len(p) > 0; p = p[min(len(p), 32<<10):] {
			dw.Write(p[:min(len(p), 32<<10)])
		}
		dw.Close()
	}
}

// BenchmarkBareTLSCopy is the practical limit for BenchmarkRETR/tls/1024KiB:
// a bare crypto/tls server on the same certificate that answers each line
// by copying the message through a buffer of the same size, with no POP3
// and no byte-stuffing.
func BenchmarkBareTLSCopy(b *testing.B) {
	msg := benchMessage(1 << 20)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", getPKI(b).server)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		w := bufio.NewWriterSize(c, writeBufferSize)
		for {
			if _, err := r.ReadSlice('\n'); err != nil {
				return
			}
			w.WriteString("+OK\r\n")
			io.Copy(w, strings.NewReader(msg))
			w.WriteString(".\r\n")
			if w.Flush() != nil {
				return
			}
		}
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), getPKI(b).client)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReaderSize(conn, 64<<10)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		io.WriteString(conn, "RETR 1\r\n")
		if err := readMultiLine(r); err != nil {
			b.Fatal(err)
		}
	}
}
