// Package smtpstrip is a STARTTLS-stripping man in the middle for tests:
// a TCP proxy on loopback that overwrites the STARTTLS keyword in the
// server's replies with "XXXXXXXA" (as some firewalls do), and records
// everything the client sends, so a test can show that no message crossed
// it in clear text. It is for tests only.
package smtpstrip

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy is a running stripping proxy.
type Proxy struct {
	// Addr is the 127.0.0.1:port clients connect to.
	Addr string

	mu      sync.Mutex
	capture bytes.Buffer
	conns   int
}

// Start proxies connections to target until the test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.handle(c, target) })
		}
	})
	return p
}

func (p *Proxy) handle(client net.Conn, target string) {
	defer client.Close()
	server, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer server.Close()
	p.mu.Lock()
	p.conns++
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 {
				client.Write(bytes.ReplaceAll(buf[:n], []byte("STARTTLS"), []byte("XXXXXXXA")))
			}
			if err != nil {
				client.Close()
				return
			}
		}
	}()
	io.Copy(io.MultiWriter(server, p), client)
	server.Close()
	<-done
}

// Write records what clients send.
func (p *Proxy) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.capture.Write(b)
}

// Captured returns everything clients sent so far.
func (p *Proxy) Captured() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.capture.String()
}

// Connections returns how many connections the proxy passed on.
func (p *Proxy) Connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns
}
