package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"

	"github.com/mailstack/terraform-provider-mailstack/internal/errkind"
	"github.com/mailstack/terraform-provider-mailstack/runtime/durable"
)

// Errors returned by the store. Callers test them with errors.Is; the store
// wraps them with the address or mailbox they concern. Each that a request
// can cause is of an errkind kind, which the control API answers with its
// status.
var (
	// ErrNotFound: the user, mailbox or message does not exist.
	ErrNotFound = errkind.New(errkind.NotFound, "not found")
	// ErrExists: a mailbox with that name already exists.
	ErrExists = errkind.New(errkind.Conflict, "already exists")
	// ErrAuthFailed: unknown user or wrong password (deliberately the same).
	ErrAuthFailed = errors.New("authentication failed")
	// ErrQuotaExceeded: the message would take a user over their quota
	// (SMTP maps it to 552, IMAP APPEND to NO [OVERQUOTA]).
	ErrQuotaExceeded = errkind.New(errkind.Conflict, "mailbox quota exceeded")
	// ErrMaildropLocked: another POP3 session holds the user's maildrop.
	ErrMaildropLocked = errkind.New(errkind.Conflict, "maildrop is locked by another session")
	// ErrInvalidAddress: the address is not local@domain or cannot name a
	// directory safely.
	ErrInvalidAddress = errkind.New(errkind.Invalid, "invalid address")
	// ErrInvalidMailbox: the mailbox name is not acceptable, or the operation
	// is not allowed on that mailbox (deleting INBOX).
	ErrInvalidMailbox = errkind.New(errkind.Invalid, "invalid mailbox name")
	// ErrHasChildren: a mailbox with inferior mailboxes cannot be deleted.
	ErrHasChildren = errkind.New(errkind.Conflict, "mailbox has child mailboxes")
	// ErrSpecialUse: a special-use attribute the store does not offer
	// (IMAP's [USEATTR], RFC 6154 6).
	ErrSpecialUse = errkind.New(errkind.Invalid, "unsupported special use")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
)

// Options configures a Store. The zero value is ready to use.
type Options struct {
	// Logger receives recovery and maintenance messages. Nil means
	// slog.Default(). Passwords are never logged.
	Logger *slog.Logger
	// Argon2 sets the cost of new password hashes. The zero value means
	// DefaultArgon2 (OWASP's argon2id recommendation). Existing hashes keep
	// the parameters they were made with.
	Argon2 Argon2Params
	// Hostname is used in Maildir file names. Empty means os.Hostname.
	Hostname string
}

// Store is the mail store: an index plus one Maildir tree per user. It is
// safe for concurrent use.
type Store struct {
	dir  string
	host string
	pid  int
	seq  atomic.Uint64
	// ix is the index. Every operation holds its read lock; operations
	// that change mailbox or user structure on disk hold it for writing.
	ix     *durable.Index
	commit *committer
	syncs  durable.DirSyncer
	watch  Hub
	log    *slog.Logger

	passwords *Passwords

	dropsMu sync.Mutex
	drops   map[string]bool
}

// Open opens (creating if needed) the store in dir, recovers from any crash
// and returns it. Only one process may open a store at a time; a second
// Open fails after a few seconds waiting for the index lock.
func Open(dir string, opts Options) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "mail"), 0o700); err != nil {
		return nil, fmt.Errorf("creating store directory: %w", err)
	}
	ix, err := durable.OpenIndex(filepath.Join(dir, "index.db"), durable.IndexOptions{Name: "index", ErrClosed: ErrClosed})
	if err != nil {
		return nil, err
	}
	s := &Store{
		dir:   dir,
		ix:    ix,
		log:   opts.Logger,
		host:  opts.Hostname,
		pid:   os.Getpid(),
		drops: make(map[string]bool),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.host == "" {
		s.host, _ = os.Hostname()
	}
	// Maildir file names must not contain '/' or ':' (maildir(5)).
	s.host = strings.NewReplacer("/", `\057`, ":", `\072`).Replace(s.host)
	if err := ix.DB().Update(initIndex); err != nil {
		ix.Close(nil)
		return nil, fmt.Errorf("initialising index: %w", err)
	}
	if s.passwords, err = NewPasswords(opts.Argon2); err != nil {
		ix.Close(nil)
		return nil, err
	}
	if err := s.recover(); err != nil {
		ix.Close(nil)
		return nil, fmt.Errorf("recovering store %s: %w", dir, err)
	}
	s.commit = &committer{ix: ix, notify: s.watch.notify}
	return s, nil
}

// Close waits for operations in progress, then closes the index. Open
// maildrops fail from then on; watches never fire again.
func (s *Store) Close() error { return s.ix.Close(nil) }

// rlockAddress canonicalises address, then takes the index's read lock.
// On success the caller must call s.ix.RUnlock.
func (s *Store) rlockAddress(address string) (string, error) {
	addr, err := CanonicalAddress(address)
	if err != nil {
		return "", err
	}
	if err := s.ix.RLock(); err != nil {
		return "", err
	}
	return addr, nil
}

// userDir is the INBOX Maildir of a canonical address.
func (s *Store) userDir(addr string) string {
	local, domain, _ := strings.Cut(addr, "@")
	return filepath.Join(s.dir, "mail", domain, local)
}

// viewMbox opens mailbox name of addr in a read transaction and runs fn on
// it; the transaction ends when fn returns.
func (s *Store) viewMbox(addr, name string, fn func(tx *bolt.Tx, m *mbox) error) error {
	return s.ix.View(func(tx *bolt.Tx) error {
		m, err := openMbox(tx, addr, name)
		if err != nil {
			return err
		}
		return fn(tx, m)
	})
}

// updateMbox opens mailbox name of addr in a write transaction of the
// committer and runs fn on it. As with committer.update, fn may run more than
// once and must reset its own results, and updateMbox returns when the
// transaction is durable or failed.
func (s *Store) updateMbox(addr, name string, fn func(tx *bolt.Tx, m *mbox, changed *[]watchKey) error) error {
	return s.commit.update(func(tx *bolt.Tx, changed *[]watchKey) error {
		m, err := openMbox(tx, addr, name)
		if err != nil {
			return err
		}
		return fn(tx, m, changed)
	})
}

// mboxDir is the Maildir directory of mailbox m of addr.
func (s *Store) mboxDir(addr string, m *mbox) string {
	return filepath.Join(s.userDir(addr), m.meta.Dir)
}
