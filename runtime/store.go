package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
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

// CopyStats says what CopyStore copied.
type CopyStats struct {
	Users, Messages int
	Bytes           int64
}

// CopyStore copies the embedded store of the state directory dir into the
// PostgreSQL database dsn (`runtime store copy`): every user with their
// password hash, quota, subscriptions, mailboxes and messages, keeping
// UIDVALIDITY, UIDs, flags and MODSEQs, so that IMAP clients carry on as
// if nothing moved. The runtime of dir must not run while it copies (it
// takes the runtime's lock), and no user may already exist in the
// database: both are checked before anything is written. Each user is
// copied in one transaction.
func CopyStore(ctx context.Context, dir, dsn string, log *slog.Logger) (CopyStats, error) {
	var stats CopyStats
	lock, err := statedir.Local(dir).Lock(ctx)
	if errors.Is(err, statedir.ErrRunning) {
		return stats, fmt.Errorf("%w: stop its runtime (its supervisor or systemd unit) before copying its store", err)
	} else if err != nil {
		return stats, err
	}
	defer lock.Unlock()
	src, err := store.Open(filepath.Join(dir, StoreDir), store.Options{Logger: log})
	if err != nil {
		return stats, fmt.Errorf("opening the embedded store of %s: %w", dir, err)
	}
	defer src.Close()
	dst, err := postgres.Open(ctx, dsn, postgres.Options{Logger: log})
	if err != nil {
		return stats, fmt.Errorf("opening the PostgreSQL store: %w", err)
	}
	defer dst.Close()

	users, err := src.Users()
	if err != nil {
		return stats, err
	}
	var taken []string
	for _, u := range users {
		if _, err := dst.User(u.Address); err == nil {
			taken = append(taken, u.Address)
		} else if !errors.Is(err, store.ErrNotFound) {
			return stats, err
		}
	}
	if len(taken) > 0 {
		return stats, fmt.Errorf("the database already has %d of the store's users (%s): nothing was copied; a copied user must be new there",
			len(taken), strings.Join(taken, ", "))
	}
	err = src.Export(func(u store.UserDump) error {
		res, err := dst.Import(ctx, u, src)
		if err != nil {
			return err
		}
		stats.Users++
		stats.Messages += res.Messages
		stats.Bytes += res.Bytes
		log.Info("user copied", "address", u.Address, "mailboxes", len(u.Mailboxes), "messages", res.Messages, "bytes", res.Bytes)
		for _, name := range res.Renumbered {
			log.Warn("mailbox got a new UIDVALIDITY: the database had given its own to another mailbox; IMAP clients will fetch it again",
				"address", u.Address, "mailbox", name)
		}
		return nil
	})
	return stats, err
}
