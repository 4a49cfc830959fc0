package store

import (
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// watchKey names a mailbox for change notification.
type watchKey struct {
	addr string
	id   uint32
}

// Watch delivers change notifications for one mailbox: C receives a value
// after any committed change to its messages (delivery, append, copy or move
// into it, flag change, expunge). Notifications coalesce: one value may stand
// for many changes, so a receiver re-reads the mailbox (Messages, ModSeq)
// rather than counting. IMAP IDLE is built on it.
type Watch struct {
	// C is signalled (never closed) when the mailbox changed.
	C <-chan struct{}

	c   chan struct{}
	key watchKey
	ws  *watchers
}

type watchers struct {
	mu sync.Mutex
	m  map[watchKey]map[*Watch]struct{}
}

func (ws *watchers) init() { ws.m = make(map[watchKey]map[*Watch]struct{}) }

func (ws *watchers) notify(keys []watchKey) {
	if len(keys) == 0 {
		return
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, k := range keys {
		for w := range ws.m[k] {
			select {
			case w.c <- struct{}{}:
			default: // a notification is already pending
			}
		}
	}
}

// Watch starts watching mailbox of address. The caller must Close it.
func (s *Store) Watch(address, mailbox string) (*Watch, error) {
	addr, err := s.rlockAddress(address)
	if err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	var id uint32
	err = s.viewMbox(addr, mailbox, func(_ *bolt.Tx, m *mbox) error {
		id = m.id
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("watching %s: %w", address, err)
	}
	c := make(chan struct{}, 1)
	w := &Watch{C: c, c: c, key: watchKey{addr, id}, ws: &s.watch}
	s.watch.mu.Lock()
	set := s.watch.m[w.key]
	if set == nil {
		set = make(map[*Watch]struct{})
		s.watch.m[w.key] = set
	}
	set[w] = struct{}{}
	s.watch.mu.Unlock()
	return w, nil
}

// Close stops the notifications. It is safe to call more than once.
func (w *Watch) Close() {
	w.ws.mu.Lock()
	defer w.ws.mu.Unlock()
	if set := w.ws.m[w.key]; set != nil {
		delete(set, w)
		if len(set) == 0 {
			delete(w.ws.m, w.key)
		}
	}
}
