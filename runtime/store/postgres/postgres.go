package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
)

// Options configures a Store. The zero value is ready to use.
type Options struct {
	// Logger receives connection and maintenance messages. Nil means
	// slog.Default(). Passwords (of users or in the DSN) are never logged.
	Logger *slog.Logger
	// Argon2 sets the cost of new password hashes; the zero value means
	// store.DefaultArgon2.
	Argon2 store.Argon2Params
}

// Defaults of the connection pool and of each operation.
const (
	// DefaultMaxConns is the pool's size unless the DSN sets
	// pool_max_conns. A connection is held for one statement or one
	// transaction, never for a session, so a few serve many sessions.
	DefaultMaxConns = 16
	// DefaultConnectTimeout applies unless the DSN sets connect_timeout,
	// so that a delivery fails with a temporary error soon when the
	// database is down rather than waiting for the kernel's TCP timeout.
	DefaultConnectTimeout = 5 * time.Second
	// opTimeout bounds every operation: the Backend's methods take no
	// context, and a session must not hang on a database that stopped
	// answering.
	opTimeout = 30 * time.Second
)

// Schema is the PostgreSQL schema that holds every table and function of
// the store; the runtime creates it and puts it on its connections'
// search_path.
const Schema = "mailstack"

// Store is the PostgreSQL mail store. It is safe for concurrent use, and
// any number of processes may open the same database.
type Store struct {
	pool      *pgxpool.Pool
	connCfg   *pgx.ConnConfig // for the connections outside the pool
	log       *slog.Logger
	passwords *store.Passwords
	hub       store.Hub
	// origin names this Store in its change notifications, so that it
	// skips its own (it has notified its watches at commit).
	origin    string
	announcer *announcer
	locks     *locker
	// deliveries feeds the committers (commit.go).
	deliveries chan *delivery
	// polls counts the polls of watched mailboxes' MODSEQs that reached
	// the database (notify.go), so that a test can wait for one that
	// began after its watch.
	polls atomic.Int64

	// base is cancelled by Close, ending operations in progress and the
	// background goroutines.
	base   context.Context
	cancel context.CancelFunc
	bg     sync.WaitGroup

	mu     sync.RWMutex // held for reading by every operation, for writing by Close
	closed bool
}

var _ store.Backend = (*Store)(nil)

// Open connects to the database named by dsn (libpq keyword/value or URL
// form, with sslmode=verify-full and its sslrootcert supported), brings the
// schema up to date (safe when several runtimes start at once), starts
// listening for other processes' changes and returns the store. It fails
// if the database cannot be reached; the caller (the runtime's supervisor)
// tries again later.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	s := &Store{log: opts.Logger, origin: randomID(), announcer: newAnnouncer(), connCfg: cfg.ConnConfig}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("store", "postgres", "database", cfg.ConnConfig.Database, "host", cfg.ConnConfig.Host)
	if s.passwords, err = store.NewPasswords(opts.Argon2); err != nil {
		return nil, err
	}
	cfg.AfterConnect = s.afterConnect
	if err := migrate(ctx, cfg.ConnConfig, s.log); err != nil {
		return nil, err
	}
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	s.locks = &locker{cfg: cfg.ConnConfig}
	s.base, s.cancel = context.WithCancel(context.Background())
	listening := make(chan error, 1)
	s.bg.Go(func() { s.listen(listening) })
	select {
	case err = <-listening:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		s.shutdown()
		return nil, fmt.Errorf("listening for changes: %w", err)
	}
	s.deliveries = make(chan *delivery, maxBatch)
	for range committers {
		s.bg.Go(s.commitDeliveries)
	}
	s.bg.Go(s.announce)
	s.bg.Go(s.poll)
	s.bg.Go(s.sweepBlobs)
	return s, nil
}

// ParseDSN parses a connection string and sets the store's defaults: the
// pool size, the connect timeout, the schema on the search_path and the
// application name. Its errors never contain the DSN (which may hold a
// password).
func ParseDSN(dsn string) (*pgxpool.Config, error) {
	if strings.TrimSpace(dsn) == "" {
		return nil, errors.New("the PostgreSQL connection string is empty")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("the PostgreSQL connection string is invalid: %s", parseError(err))
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	cc := cfg.ConnConfig
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = DefaultConnectTimeout
	}
	cc.RuntimeParams["search_path"] = Schema
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = "mailstack"
	}
	return cfg, nil
}

// parseError is what pgconn says about a DSN it cannot parse, without the
// DSN it quotes (redacted only on a best-effort basis).
func parseError(err error) string {
	msg := err.Error()
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		if i := strings.LastIndex(msg, "`: "); i >= 0 {
			return msg[i+3:]
		}
		return "cannot parse it"
	}
	return msg
}

// afterConnect makes sure a delivery is acknowledged only once it is on
// disk: a server (or role) configured with synchronous_commit = off would
// acknowledge commits it may still lose. "local" and the remote levels are
// left alone: they wait at least for the local flush.
func (s *Store) afterConnect(ctx context.Context, conn *pgx.Conn) error {
	var sc string
	if err := conn.QueryRow(ctx, "SHOW synchronous_commit").Scan(&sc); err != nil {
		return err
	}
	if sc == "off" {
		_, err := conn.Exec(ctx, "SET synchronous_commit = on")
		return err
	}
	return nil
}

// Close ends operations in progress, stops listening and closes the
// connections. Every method fails with store.ErrClosed after.
func (s *Store) Close() error {
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	s.closed = true
	s.shutdown()
	return nil
}

func (s *Store) shutdown() {
	if s.cancel != nil {
		s.cancel()
	}
	if s.deliveries != nil {
		close(s.deliveries) // no Deliver is left: Close holds mu
	}
	s.bg.Wait()
	if s.locks != nil {
		s.locks.close()
	}
	if s.pool != nil {
		s.pool.Close()
	}
}

// op starts an operation: it fails once the store is closed, and returns
// the context the operation's statements run under. The caller must call
// the returned done.
func (s *Store) op() (context.Context, func(), error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, nil, store.ErrClosed
	}
	ctx, cancel := context.WithTimeout(s.base, opTimeout)
	return ctx, func() {
		cancel()
		s.mu.RUnlock()
	}, nil
}

// opAddress canonicalises address, then starts an operation as op does.
func (s *Store) opAddress(address string) (string, context.Context, func(), error) {
	addr, err := store.CanonicalAddress(address)
	if err != nil {
		return "", nil, nil, err
	}
	ctx, done, err := s.op()
	return addr, ctx, done, err
}

// changes collects the mailboxes a transaction changed, for the
// notification sent in it and the local one after it commits.
type changes []string

// add records mailbox id (its UIDVALIDITY) of addr.
func (c *changes) add(addr string, id int64) {
	*c = append(*c, fmt.Sprintf("%d %s", id, addr))
}

// addUser records a change to addr's mailbox list or subscriptions, which
// wakes the user's WatchUser watches (UIDVALIDITY 0, as in store.Hub).
func (c *changes) addUser(addr string) { c.add(addr, 0) }

// write runs fn in a transaction and commits it, retrying the whole of it
// when PostgreSQL aborts it for a serialization failure or a deadlock (fn
// must not keep results of an earlier run). The mailboxes fn records in
// its changes are announced once the commit returned (see changed).
func (s *Store) write(ctx context.Context, fn func(tx pgx.Tx, c *changes) error) error {
	for attempt := 1; ; attempt++ {
		var c changes
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(tx, &c) })
		if err == nil {
			s.changed(c)
			return nil
		}
		if !retryable(err) || attempt == maxAttempts {
			return err
		}
		select {
		case <-time.After(time.Duration(attempt) * 5 * time.Millisecond):
		case <-ctx.Done():
			return err
		}
	}
}

// maxAttempts bounds how often write runs a transaction that PostgreSQL
// aborted for a conflict.
const maxAttempts = 8

// retryable reports whether err is a conflict that the same transaction
// may not meet again: serialization failure or deadlock.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// notFound tells which of user addr and its mailbox name is missing, for a
// query that found neither (or a mailbox of a user that vanished).
func (s *Store) notFound(ctx context.Context, q querier, addr, name string) error {
	var exists bool
	if err := q.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM users WHERE address = $1)", addr).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("user %s: %w", addr, store.ErrNotFound)
	}
	return fmt.Errorf("mailbox %q: %w", store.NormalizeMailbox(name), store.ErrNotFound)
}

// userNotFound is the error for an unknown user.
func userNotFound(addr string) error { return fmt.Errorf("user %s: %w", addr, store.ErrNotFound) }

// querier is what a pool, a connection and a transaction share.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

func randomID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
