package store_test

import (
	"log/slog"
	"testing"

	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
	"github.com/mailstack/terraform-provider-mailstack/runtime/store/storetest"
)

// TestConformance runs the store.Backend conformance table against the
// embedded store.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend { return openEmbedded(t) })
}

// BenchmarkDeliver measures durable deliveries (file fsync, directory
// fsync, index commit): storetest.BenchDeliver, the load the PostgreSQL
// store is measured with too.
func BenchmarkDeliver(b *testing.B) {
	storetest.BenchDeliver(b, func(b *testing.B) store.Backend { return openEmbedded(b) })
}

func openEmbedded(t testing.TB) *store.Store {
	s, err := store.Open(t.TempDir(), store.Options{
		Argon2:   store.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1},
		Hostname: "test",
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
