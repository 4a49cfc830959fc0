package store

import (
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// watchKey names a mailbox for change notification: its owner's canonical
// address and its UIDVALIDITY, which no other mailbox of the store shares.
// UIDVALIDITY 0, which no mailbox has, stands for the whole user (userKey).
type watchKey struct {
	addr string
	id   uint32
}

// Watch delivers change notifications for one mailbox: C receives a value
// after any committed change to its messages (delivery, append, copy or move
// into it, flag change, expunge). A user's watch (WatchUser) hears of every
// change to any of their mailboxes and to their mailbox list and
// subscriptions. Notifications coalesce: one value may stand for many
// changes, so a receiver re-reads the mailbox (Messages, ModSeq) rather
// than counting. IMAP IDLE is built on it, and NOTIFY on a user's watch.
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

// WatchUser starts watching everything of the canonical address addr: its
// Watch is signalled by every Notify for any of the user's mailboxes and by
// NotifyUser. The caller must Close it.
func (h *Hub) WatchUser(addr string) *Watch { return h.Watch(addr, 0) }

// Notify signals every Watch on the mailbox with that UIDVALIDITY of addr,
// and the user's WatchUser watches. UIDVALIDITY 0 signals only the latter,
// as NotifyUser does.
func (h *Hub) Notify(addr string, uidValidity uint32) {
	h.notify([]watchKey{{addr, uidValidity}})
}

// NotifyUser signals the WatchUser watches of addr: a Backend calls it
// after a change to the user's mailbox list or subscriptions.
func (h *Hub) NotifyUser(addr string) { h.Notify(addr, 0) }

// userKey is the key of addr's WatchUser watches.
func userKey(addr string) watchKey { return watchKey{addr: addr} }

// NotifyAll signals every Watch of the process: a Backend that may have
// missed changes (its change feed was down) calls it, and sessions re-read
// their mailboxes.
func (h *Hub) NotifyAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, set := range h.m {
		for w := range set {
			w.signal()
		}
	}
}

// Watched calls fn for each mailbox at least one Watch is on, with its
// owner's canonical address and its UIDVALIDITY: a Backend whose change
// feed may lose a notification checks those mailboxes itself.
func (h *Hub) Watched(fn func(addr string, uidValidity uint32)) {
	h.mu.Lock()
	keys := make([]watchKey, 0, len(h.m))
	for k := range h.m {
		keys = append(keys, k)
	}
	h.mu.Unlock()
	for _, k := range keys {
		fn(k.addr, k.id)
	}
}

func (h *Hub) notify(keys []watchKey) {
	if len(keys) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range keys {
		for w := range h.m[k] {
			w.signal()
		}
		if k.id != 0 {
			for w := range h.m[userKey(k.addr)] {
				w.signal()
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
	defer s.ix.RUnlock()
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

// signal makes C ready, unless a notification is already pending.
func (w *Watch) signal() {
	select {
	case w.c <- struct{}{}:
	default:
	}
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

// WatchUser starts watching everything of address: any of its mailboxes
// and their messages, its mailbox list and subscriptions. The caller must
// Close it.
func (s *Store) WatchUser(address string) (*Watch, error) {
	addr, err := s.rlockAddress(address)
	if err != nil {
		return nil, err
	}
	defer s.ix.RUnlock()
	if _, err := s.userRecord(addr); err != nil {
		return nil, fmt.Errorf("watching %s: %w", address, err)
	}
	return s.watch.WatchUser(addr), nil
}
