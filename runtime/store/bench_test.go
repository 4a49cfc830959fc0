package store

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkDeliver measures durable deliveries (file fsync, directory fsync,
// index commit) for 1 KiB and 100 KiB messages from 1 and 32 concurrent
// clients, spread over 8 users. It reports msgs/s.
func BenchmarkDeliver(b *testing.B) {
	for _, size := range []int{1 << 10, 100 << 10} {
		for _, clients := range []int{1, 32} {
			b.Run(fmt.Sprintf("size=%dKiB/clients=%d", size>>10, clients), func(b *testing.B) {
				s, _ := newTestStore(b)
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

// BenchmarkPasswordHash measures one argon2id hash with DefaultArgon2 and
// with OWASP's other configuration of the same strength that this one
// replaced (m=19 MiB, t=2): the CPU every login pays, and its memory.
func BenchmarkPasswordHash(b *testing.B) {
	for _, p := range []struct {
		name   string
		params Argon2Params
	}{
		{"default", DefaultArgon2},
		{"m=19MiB,t=2", Argon2Params{Time: 2, MemoryKiB: 19 * 1024, Threads: 1}},
	} {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := hashPassword("correct horse battery staple", p.params); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
