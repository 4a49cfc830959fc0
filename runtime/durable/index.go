package durable

import (
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Index is a bbolt file that one store owns for its life (the mail store's
// index, the outbound queue's): the open file, the Committer its writes go
// through, and the lock that lets Close wait for the operations in
// progress and fail those that come after it.
type Index struct {
	db        *bolt.DB
	commit    *Committer
	name      string
	errClosed error

	// mu is held for reading by every operation (RLock) and for writing
	// by Close and by the owner's operations that must run alone (Lock).
	mu     sync.RWMutex
	closed bool
}

// IndexOptions configures OpenIndex.
type IndexOptions struct {
	// Name is what errors call the index ("queue index").
	Name string
	// ErrClosed is what RLock, Lock and Close return once the index is
	// closed: the owner's own sentinel.
	ErrClosed error
	// NoFreelistSync leaves bbolt's list of free pages out of every
	// commit; opening rebuilds it by scanning the file instead. It suits
	// an index whose pages are freed and reused all the time, and that
	// is small enough to scan quickly.
	NoFreelistSync bool
}

// OpenIndex opens (creating if needed, mode 0600) the bbolt file at path
// and starts its Committer. Only one process may hold it: a second
// OpenIndex fails after waiting five seconds for the file lock. The owner
// runs its recovery on DB before it serves anything, and calls Close (which
// it may also do when its recovery fails).
func OpenIndex(path string, opts IndexOptions) (*Index, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        5 * time.Second,
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: opts.NoFreelistSync,
	})
	if err != nil {
		return nil, fmt.Errorf("opening %s %s: %w", opts.Name, path, err)
	}
	return &Index{db: db, commit: NewCommitter(db), name: opts.Name, errClosed: opts.ErrClosed}, nil
}

// DB is the bbolt file, for the owner's recovery, which runs its own
// transactions before any operation does. Operations use View, Update
// and UpdateLater.
func (ix *Index) DB() *bolt.DB { return ix.db }

// View runs fn in a read transaction (bolt.DB.View).
func (ix *Index) View(fn func(tx *bolt.Tx) error) error { return ix.db.View(fn) }

// Update runs fn in a group-committed write transaction and returns once
// that is durable or failed; see Committer.Update.
func (ix *Index) Update(fn func(tx *bolt.Tx) error) error { return ix.commit.Update(fn) }

// UpdateLater is Update for an operation nobody waits on; see
// Committer.UpdateLater.
func (ix *Index) UpdateLater(fn func(tx *bolt.Tx) error) error { return ix.commit.UpdateLater(fn) }

// RLock takes the read lock for one operation; it fails with ErrClosed
// once the index is closed. On success the caller must call RUnlock.
func (ix *Index) RLock() error {
	ix.mu.RLock()
	if ix.closed {
		ix.mu.RUnlock()
		return ix.errClosed
	}
	return nil
}

// RUnlock ends what RLock began.
func (ix *Index) RUnlock() { ix.mu.RUnlock() }

// Lock is RLock for an operation that must run alone (one that changes
// the owner's structure on disk). On success the caller must call Unlock.
func (ix *Index) Lock() error {
	ix.mu.Lock()
	if ix.closed {
		ix.mu.Unlock()
		return ix.errClosed
	}
	return nil
}

// Unlock ends what Lock began.
func (ix *Index) Unlock() { ix.mu.Unlock() }

// Close waits for the operations in progress, commits the updates already
// handed over, runs release (if not nil: the owner's other resources)
// while it still holds the lock, and closes the file. A second Close
// returns ErrClosed.
func (ix *Index) Close(release func()) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return ix.errClosed
	}
	ix.closed = true
	ix.commit.Close()
	if release != nil {
		release()
	}
	if err := ix.db.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", ix.name, err)
	}
	return nil
}
