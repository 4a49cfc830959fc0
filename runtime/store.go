package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
	"github.com/mailstack/terraform-provider-mailstack/runtime/store/postgres"
)

// StoreDir is the embedded mail store's folder in a state directory.
const StoreDir = "mail"

// openStore opens the mail store the server settings name: the embedded
// store in the state directory, or the PostgreSQL database (connected,
// its schema migrated).
func openStore(ctx context.Context, dir string, s config.Server, log *slog.Logger) (store.Backend, error) {
	switch s.StoreKind() {
	case config.StorePostgres:
		st, err := postgres.Open(ctx, s.PostgresDSN, postgres.Options{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("opening the PostgreSQL mail store: %w", err)
		}
		return st, nil
	default:
		st, err := store.Open(filepath.Join(dir, StoreDir), store.Options{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("opening mail store: %w", err)
		}
		return st, nil
	}
}

// mailStores holds the store in force. When the server settings name
// another store, the new one takes over at once for new sessions, the
// control API and outbound delivery; the old one is closed once the
// sessions built on it have had their drain time.
type mailStores struct {
	mu      sync.Mutex
	cur     store.Backend
	retired []*retiredStore
}

type retiredStore struct {
	st    store.Backend
	timer *time.Timer
}

func (m *mailStores) current() store.Backend {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cur
}

// set makes st the store in force, and closes the one it replaces after
// drain. A store retired earlier and still open is closed now: its
// sessions have had their time, and an embedded store must be closed
// before it can be opened again.
func (m *mailStores) set(st store.Backend, drain time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.retired {
		if r.timer.Stop() {
			r.st.Close()
		}
	}
	m.retired = nil
	if old := m.cur; old != nil {
		m.retired = append(m.retired, &retiredStore{st: old, timer: time.AfterFunc(drain+time.Second, func() { old.Close() })})
	}
	m.cur = st
}

// close closes the store in force and any retired one.
func (m *mailStores) close(log *slog.Logger) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.retired {
		if r.timer.Stop() {
			r.st.Close()
		}
	}
	if err := m.cur.Close(); err != nil {
		log.Error("closing mail store", "err", err)
	}
}

// liveDeliverer delivers into the store in force: outbound delivery's
// local recipients follow a change of store.
type liveDeliverer struct{ stores *mailStores }

func (d liveDeliverer) Deliver(ctx context.Context, recipients []string, body []byte) error {
	return d.stores.current().Deliver(ctx, recipients, body)
}
