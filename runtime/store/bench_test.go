package store

import (
	"testing"
)

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
