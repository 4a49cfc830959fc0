package listener

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"sync"
	"testing"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/internal/loadgen"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

// greetFrontend does per connection what loadgen.ServeBareTLS does: greet,
// read until the client hangs up, close. Against it, BenchmarkHandshake
// measures what the listener adds to crypto/tls (certificate source,
// handshake goroutine and timeout, connection limits and hand-over),
// without a protocol's session.
type greetFrontend struct {
	mu  sync.Mutex
	lns []net.Listener
	wg  sync.WaitGroup
}

func (fe *greetFrontend) Serve(ln net.Listener) error {
	fe.mu.Lock()
	fe.lns = append(fe.lns, ln)
	fe.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		fe.wg.Go(func() {
			defer c.Close()
			if _, err := io.WriteString(c, "220 listener\r\n"); err != nil {
				return
			}
			io.Copy(io.Discard, c)
		})
	}
}

func (fe *greetFrontend) Shutdown(ctx context.Context) error {
	fe.mu.Lock()
	for _, ln := range fe.lns {
		ln.Close()
	}
	fe.mu.Unlock()
	fe.wg.Wait()
	return nil
}

// BenchmarkHandshake compares implicit-TLS handshakes through a listener
// with a bare crypto/tls server (loadgen.ServeBareTLS) on the same RSA 2048
// certificate, full and resumed (TLS 1.3 tickets). Client and servers
// share the process; ns/op is per handshake with 8 clients in parallel.
func BenchmarkHandshake(b *testing.B) {
	ks := newKeystore(b, b.TempDir(), "mail.p12", keystore.KeySpec{Algorithm: benchKey()})
	m, _ := newManager(b, Options{NewFrontend: func(config.Listener, *tls.Config) (Frontend, error) {
		return &greetFrontend{}, nil
	}})
	l := tlsListener(testutil.FreePort(b), config.TLSImplicit, ks)
	apply(b, m, "bench", l)

	cert, err := keystore.LoadCertificate(context.Background(), host.LocalFile(ks.path), []byte(testPassword), nil, "")
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go loadgen.ServeBareTLS(ln, cert)

	for _, target := range []struct{ name, addr string }{{"listener", l.Addr()}, {"bare", ln.Addr().String()}} {
		for _, kind := range []string{"full", "resumed"} {
			b.Run(target.name+"/"+kind, func(b *testing.B) {
				cfg := &tls.Config{InsecureSkipVerify: true}
				if kind == "resumed" {
					cfg.ClientSessionCache = tls.NewLRUClientSessionCache(64)
					if _, err := loadgen.Handshake(context.Background(), target.addr, cfg); err != nil {
						b.Fatal(err)
					}
				}
				b.SetParallelism(4) // 8 clients on 2 CPUs
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						resumed, err := loadgen.Handshake(context.Background(), target.addr, cfg)
						if err != nil {
							b.Error(err)
							return
						}
						if resumed != (kind == "resumed") {
							b.Errorf("resumed = %v", resumed)
							return
						}
					}
				})
			})
		}
	}
}

// benchKey is the benchmarks' key algorithm: RSA, or MAILSTACK_BENCH_KEY.
func benchKey() string {
	if k := os.Getenv("MAILSTACK_BENCH_KEY"); k != "" {
		return k
	}
	return "RSA"
}
