package storetest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
)

// BenchDeliver measures durable deliveries through Backend.Deliver, the
// same load for every implementation: 1 KiB and 100 KiB messages from 1
// and 32 concurrent clients, spread over 8 users, each sub-benchmark on a
// store of its own from open. It reports msgs/s.
func BenchDeliver(b *testing.B, open func(b *testing.B) store.Backend) {
	for _, size := range []int{1 << 10, 100 << 10} {
		for _, clients := range []int{1, 32} {
			b.Run(fmt.Sprintf("size=%dKiB/clients=%d", size>>10, clients), func(b *testing.B) {
				s := open(b)
				users := make([]string, 8)
				for i := range users {
					users[i] = fmt.Sprintf("user%d@example.com", i)
					if err := s.PutUser(users[i], "pw", 0); err != nil {
						b.Fatal(err)
					}
				}
				body := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n"), size/64)
				var next atomic.Int64
				b.SetBytes(int64(size))
				b.ResetTimer()
				var wg sync.WaitGroup
				for range clients {
					wg.Go(func() {
						for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
							if err := s.Deliver(context.Background(), []string{users[i%int64(len(users))]}, body); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}
