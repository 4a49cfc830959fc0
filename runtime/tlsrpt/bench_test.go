package tlsrpt

import (
	"fmt"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

// BenchmarkRecord is the cost outbound pays per TLS session (one per
// connection, not per message): counting a success, or a failure with its
// details, from as many goroutines as GOMAXPROCS into one domain's report,
// the most contended case.
func BenchmarkRecord(b *testing.B) {
	for _, bc := range []struct {
		name string
		fn   func(r *Reports, i int)
	}{
		{"success", func(r *Reports, _ int) { r.Success(sts) }},
		{"failure", func(r *Reports, i int) {
			r.Failure(sts, Failure{Result: StartTLSNotSupported, SendingIP: "192.0.2.1", ReceivingMX: "mx.example.org",
				ReceivingIP: fmt.Sprintf("198.51.100.%d", i%8), Reason: "mx.example.org[198.51.100.1] did not offer STARTTLS"})
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := testutil.NewClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
			r, err := Open(Options{Dir: b.TempDir(), Organization: "mail.ours.test", Contact: "postmaster@ours.test", Now: c.Now, FlushInterval: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					bc.fn(r, i)
					i++
				}
			})
		})
	}
}
