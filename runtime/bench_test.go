package runtime_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/internal/loadgen"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

// The benchmarks here run the whole runtime in-process (runtime.Serve on a
// temporary state directory, the store fsyncing before every 250) with
// internal/loadgen's clients, so that `go test -cpuprofile` shows where
// the time goes. `make bench` runs the same loads against the real
// executable in its own process.

// benchRuntime starts a runtime with an smtp (STARTTLS), an smtps and an
// imaps listener and 32 users.
func benchRuntime(b *testing.B) (h *harness, addrs map[string]string, ks *testKeystore, rcpts []string) {
	b.Helper()
	h = start(b, b.TempDir(), 0)
	ks = newKeystore(b, b.TempDir())
	for i := range 32 {
		rcpts = append(rcpts, fmt.Sprintf("rcpt%02d@example.com", i))
		h.putUser(rcpts[i], alicePassword)
	}
	addrs = map[string]string{}
	ports := testutil.FreePorts(b, 3)
	on := true
	for i, l := range []struct{ id, protocol, mode string }{
		{"smtp", config.ProtocolSMTP, config.TLSStartTLS},
		{"smtps", config.ProtocolSMTP, config.TLSImplicit},
		{"imaps", config.ProtocolIMAP, config.TLSImplicit},
	} {
		cfg := config.Listener{Protocol: l.protocol, Address: "127.0.0.1", Port: ports[i], TLS: ks.tls(l.mode)}
		// MX ports issue no session tickets unless set: BenchmarkHandshake
		// measures resumption on smtps.
		cfg.TLS.SessionTickets = &on
		h.putListener(l.id, cfg)
		addrs[l.id] = cfg.Addr()
	}
	return h, addrs, ks, rcpts
}

// BenchmarkSMTP delivers through the runtime into the store: msgs/s for
// STARTTLS and implicit TLS, 1 KiB and 100 KiB, 1 and 32 clients.
func BenchmarkSMTP(b *testing.B) {
	_, addrs, ks, rcpts := benchRuntime(b)
	for _, mode := range []string{"starttls", "implicit"} {
		for _, size := range []int{1 << 10, 100 << 10} {
			for _, clients := range []int{1, 32} {
				b.Run(fmt.Sprintf("%s/%dKiB/clients=%d", mode, size>>10, clients), func(b *testing.B) {
					addr := addrs["smtp"]
					if mode == "implicit" {
						addr = addrs["smtps"]
					}
					b.SetBytes(int64(size))
					b.ResetTimer()
					r, err := loadgen.RunSMTP(context.Background(), loadgen.SMTPLoad{
						Addr: addr, TLS: ks.clientConfig(), Implicit: mode == "implicit", Size: size,
						Clients: clients, Recipients: rcpts, Messages: int64(b.N),
					})
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(r.PerSecond(), "msgs/s")
				})
			}
		}
	}
}

// BenchmarkHandshake compares implicit-TLS handshakes with the runtime's
// smtps listener against a bare crypto/tls server on the same certificate
// in the same process.
func BenchmarkHandshake(b *testing.B) {
	_, addrs, ks, _ := benchRuntime(b)
	cert, err := keystore.LoadCertificate(context.Background(), host.LocalFile(ks.path), []byte(keystorePassword), nil, "")
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go loadgen.ServeBareTLS(ln, cert)
	for _, target := range []struct{ name, addr string }{{"listener", addrs["smtps"]}, {"bare", ln.Addr().String()}} {
		for _, resumed := range []bool{false, true} {
			name := target.name + "/full"
			if resumed {
				name = target.name + "/resumed"
			}
			b.Run(name, func(b *testing.B) {
				cfg := ks.clientConfig()
				if resumed {
					cfg.ClientSessionCache = tls.NewLRUClientSessionCache(8)
				}
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := loadgen.Handshake(context.Background(), target.addr, cfg); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkFetch fetches an INBOX of 2,000 messages of 1 KiB over implicit
// TLS with UID FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[]), from 1 and 4
// sessions; it reports messages fetched per second.
func BenchmarkFetch(b *testing.B) {
	_, addrs, ks, rcpts := benchRuntime(b)
	user := rcpts[0]
	if _, err := loadgen.RunSMTP(context.Background(), loadgen.SMTPLoad{
		Addr: addrs["smtps"], TLS: ks.clientConfig(), Implicit: true, Size: 1 << 10,
		Clients: 8, Recipients: []string{user}, Messages: 2000,
	}); err != nil {
		b.Fatal(err)
	}
	for _, sessions := range []int{1, 4} {
		b.Run(fmt.Sprintf("sessions=%d", sessions), func(b *testing.B) {
			r, err := loadgen.RunFetch(context.Background(), loadgen.FetchLoad{
				Addr: addrs["imaps"], TLS: ks.clientConfig(), User: user, Password: alicePassword,
				Clients: sessions, Duration: time.Duration(b.N) * time.Millisecond,
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(r.PerSecond(), "msgs/s")
		})
	}
}
