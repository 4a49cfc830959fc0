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
	storetest.Run(t, func(t *testing.T) store.Backend {
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
	})
}
