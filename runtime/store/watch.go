package store

import (
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// watchKey names a mailbox for change notification: its owner's canonical
// address and its UIDVALIDITY, which no other mailbox of the store shares.
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
	hub *Hub
}

// Hub fans change notifications out to the Watches of a process. A Backend
// calls Notify after each commit that changed a mailbox; one that learns of
// changes made by other processes (a database's change feed) calls Notify
// for those too. The zero value is ready to use.
type Hub struct {
	mu sync.Mutex
	m  map[watchKey]map[*Watch]struct{}
}

// Watch starts watching the mailbox with that UIDVALIDITY of the canonical
// address addr. The caller must Close it.
func (h *Hub) Watch(addr string, uidValidity uint32) *Watch {
	c := make(chan struct{}, 1)
	w := &Watch{C: c, c: c, key: watchKey{addr, uidValidity}, hub: h}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = make(map[watchKey]map[*Watch]struct{})
	}
	set := h.m[w.key]
	if set == nil {
		set = make(map[*Watch]struct{})
		h.m[w.key] = set
	}
	set[w] = struct{}{}
	return w
}

// Notify signals every Watch on the mailbox with that UIDVALIDITY of addr.
func (h *Hub) Notify(addr string, uidValidity uint32) {
	h.notify([]watchKey{{addr, uidValidity}})
}

func (h *Hub) notify(keys []watchKey) {
	if len(keys) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range keys {
		for w := range h.m[k] {
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
	return s.watch.Watch(addr, id), nil
}

// Close stops the notifications. It is safe to call more than once.
func (w *Watch) Close() {
	w.hub.mu.Lock()
	defer w.hub.mu.Unlock()
	if set := w.hub.m[w.key]; set != nil {
		delete(set, w)
		if len(set) == 0 {
			delete(w.hub.m, w.key)
		}
	}
}
