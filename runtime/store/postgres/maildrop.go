package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
)

// lockSpace is the first key of the store's advisory locks on users
// ("mdrp"); the second is the user's id.
const lockSpace = 0x6d647270

// locker holds the POP3 maildrop locks of this process as session-level
// advisory locks on one connection of its own: any runtime on the database
// sees them, and they go away with the connection when the process dies.
// If the connection breaks (the database restarted) the locks are gone
// too; a maildrop then takes its lock again before it commits.
type locker struct {
	cfg *pgx.ConnConfig

	mu    sync.Mutex
	conn  *pgx.Conn
	epoch int // grows whenever the connection, and so every lock, is lost
	held  map[int32]bool
}

// tryLock takes user id's lock unless this process or another holds it,
// and returns the epoch it was taken in.
func (l *locker) tryLock(ctx context.Context, id int32) (bool, int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ok, err := l.tryLocked(ctx, id)
	return ok, l.epoch, err
}

func (l *locker) tryLocked(ctx context.Context, id int32) (bool, error) {
	if l.held[id] {
		return false, nil
	}
	if l.conn == nil {
		conn, err := pgx.ConnectConfig(ctx, l.cfg)
		if err != nil {
			return false, err
		}
		l.conn, l.held = conn, map[int32]bool{}
	}
	var ok bool
	if err := l.conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, $2)", int32(lockSpace), id).Scan(&ok); err != nil {
		l.lost()
		return false, err
	}
	if ok {
		l.held[id] = true
	}
	return ok, nil
}

// verify checks, before a maildrop commits, that the lock it took in
// epoch is still held (the connection lived), taking it again if it was
// lost; it returns the epoch to check against next time.
func (l *locker) verify(ctx context.Context, id int32, epoch int) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil && l.epoch == epoch {
		if _, err := l.conn.Exec(ctx, "SELECT 1"); err == nil {
			return epoch, nil
		}
		l.lost()
	}
	ok, err := l.tryLocked(ctx, id)
	if err != nil {
		return epoch, err
	}
	if !ok {
		return epoch, store.ErrMaildropLocked
	}
	return l.epoch, nil
}

// lost forgets a broken connection and the locks it held.
func (l *locker) lost() {
	if l.conn != nil {
		l.conn.Close(context.Background())
	}
	l.conn, l.held = nil, nil
	l.epoch++
}

// unlock releases user id's lock.
func (l *locker) unlock(ctx context.Context, id int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.held[id] {
		return
	}
	delete(l.held, id)
	if _, err := l.conn.Exec(ctx, "SELECT pg_advisory_unlock($1, $2)", int32(lockSpace), id); err != nil {
		l.lost()
	}
}

func (l *locker) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lost()
}

// maildrop is a POP3 session's view of an INBOX.
type maildrop struct {
	store.MaildropListing
	s     *Store
	addr  string
	user  int32
	epoch int
	once  sync.Once
}

// OpenMaildrop locks the user's maildrop against POP3 sessions of every
// runtime on the database and lists the INBOX.
func (s *Store) OpenMaildrop(address string) (store.Maildrop, error) {
	addr, err := store.CanonicalAddress(address)
	if err != nil {
		return nil, err
	}
	d, err := s.lockMaildrop(addr)
	if err != nil {
		return nil, err
	}
	snap, err := s.Messages(addr, store.Inbox)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("opening maildrop: %w", err)
	}
	d.MaildropListing = store.NewMaildropListing(snap)
	return d, nil
}

// lockMaildrop takes the lock of addr's maildrop.
func (s *Store) lockMaildrop(addr string) (*maildrop, error) {
	ctx, done, err := s.op()
	if err != nil {
		return nil, err
	}
	defer done()
	d := &maildrop{s: s, addr: addr}
	if err := s.pool.QueryRow(ctx, "SELECT id FROM users WHERE address = $1", addr).Scan(&d.user); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			err = userNotFound(addr)
		}
		return nil, fmt.Errorf("opening maildrop: %w", err)
	}
	ok, epoch, err := s.locks.tryLock(ctx, d.user)
	if err != nil {
		return nil, fmt.Errorf("opening maildrop of %s: %w", addr, err)
	}
	if !ok {
		return nil, fmt.Errorf("opening maildrop of %s: %w", addr, store.ErrMaildropLocked)
	}
	d.epoch = epoch
	return d, nil
}

func (d *maildrop) Open(uid string) (io.ReadCloser, error) {
	m, err := d.Message(uid)
	if err != nil {
		return nil, err
	}
	return d.s.OpenBlob(m.Body)
}

// Commit removes the given messages, after making sure the session still
// holds the maildrop's lock.
func (d *maildrop) Commit(deleteUIDs []string) error {
	if len(deleteUIDs) == 0 {
		return nil
	}
	uids, err := d.UIDs(deleteUIDs)
	if err != nil {
		return fmt.Errorf("committing maildrop: %w", err)
	}
	ctx, done, err := d.s.op()
	if err != nil {
		return err
	}
	defer done()
	if d.epoch, err = d.s.locks.verify(ctx, d.user, d.epoch); err != nil {
		return fmt.Errorf("committing maildrop of %s: %w", d.addr, err)
	}
	if _, err := d.s.remove(ctx, d.addr, store.Inbox, uids, false); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("committing maildrop of %s: %w", d.addr, err)
	}
	return nil
}

// Close releases the lock. It is safe to call more than once.
func (d *maildrop) Close() error {
	d.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		d.s.locks.unlock(ctx, d.user)
	})
	return nil
}
