package postgres_test

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil/pgtest"
	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
	"github.com/mailstack/terraform-provider-mailstack/runtime/store/postgres"
	"github.com/mailstack/terraform-provider-mailstack/runtime/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// testArgon2 keeps password hashing cheap in tests.
var testArgon2 = store.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}

// open opens a store on dsn, closed when the test ends.
func open(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn, postgres.Options{Argon2: testArgon2, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformance runs the store.Backend conformance table against the
// PostgreSQL store, each case on a database of its own.
func TestConformance(t *testing.T) {
	c := pgtest.Shared(t)
	storetest.Run(t, func(t *testing.T) store.Backend { return open(t, c.NewDatabase(t)) })
}

// BenchmarkDeliver measures durable deliveries (a synchronous commit each)
// with storetest.BenchDeliver, the load the embedded store is measured
// with.
func BenchmarkDeliver(b *testing.B) {
	c := pgtest.Shared(b)
	storetest.BenchDeliver(b, func(b *testing.B) store.Backend { return open(b, c.NewDatabase(b)) })
}
