package queue

import (
	"fmt"
	"testing"
)

// BenchmarkEnqueueSettle is a message's life in the queue as the relay
// sees it when the destination takes it at once: Enqueue (durable before
// the 250), Open for sending, Settle as delivered (the entry and body
// leave the queue), from 32 submitters, as in make bench-outbound.
func BenchmarkEnqueueSettle(b *testing.B) {
	for _, size := range []int{1 << 10, 100 << 10} {
		b.Run(fmt.Sprintf("size=%dKiB", size>>10), func(b *testing.B) {
			q := openQ(b, b.TempDir())
			defer q.Close()
			body := make([]byte, size)
			b.SetBytes(int64(size))
			b.SetParallelism(16) // 32 goroutines on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					en, err := q.Enqueue(env("a@x.test"), body)
					if err != nil {
						b.Error(err)
						return
					}
					f, err := q.Open(en.ID)
					if err != nil {
						b.Error(err)
						return
					}
					f.Close()
					if _, _, err := q.Settle(en.ID, func(e *Entry) error {
						e.Recipients[0].State = Delivered
						return nil
					}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
