package store

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
)

// MaildropMessage is one message of a POP3 maildrop.
type MaildropMessage struct {
	// UID is the message's unique-id listing (RFC 1939 UIDL): the INBOX
	// UIDVALIDITY and the message UID, "<uidvalidity>.<uid>", stable across
	// sessions and shared with IMAP's view of the same message.
	UID string
	// Size is the exact size in octets, CRLF line endings as stored.
	Size int64
}

// maildrop is the embedded store's Maildrop: the lock is held in memory,
// which suffices for the one process that may open the store.
type maildrop struct {
	MaildropListing
	s    *Store
	addr string

	once sync.Once
}

// MaildropListing is what a store's maildrop found in the INBOX when it
// was opened, by POP3 unique id: what it lists, opens and deletes.
type MaildropListing struct {
	msgs []MaildropMessage
	byID map[string]MessageInfo
}

// NewMaildropListing lists snap's messages, oldest first, with their
// unique ids "<uidvalidity>.<uid>".
func NewMaildropListing(snap *Snapshot) MaildropListing {
	l := MaildropListing{msgs: make([]MaildropMessage, len(snap.Messages)), byID: make(map[string]MessageInfo, len(snap.Messages))}
	for i, m := range snap.Messages {
		id := strconv.FormatUint(uint64(snap.UIDValidity), 10) + "." + strconv.FormatUint(uint64(m.UID), 10)
		l.msgs[i] = MaildropMessage{UID: id, Size: m.Size}
		l.byID[id] = m
	}
	return l
}

// Messages returns the messages present at OpenMaildrop, oldest first.
func (l MaildropListing) Messages() ([]MaildropMessage, error) {
	return l.msgs, nil
}

// Message returns the message with unique id uid.
func (l MaildropListing) Message(uid string) (MessageInfo, error) {
	m, ok := l.byID[uid]
	if !ok {
		return MessageInfo{}, fmt.Errorf("message %q: %w", uid, ErrNotFound)
	}
	return m, nil
}

// UIDs returns the mailbox UIDs of the messages with the given unique ids.
func (l MaildropListing) UIDs(ids []string) ([]uint32, error) {
	uids := make([]uint32, 0, len(ids))
	for _, id := range ids {
		m, err := l.Message(id)
		if err != nil {
			return nil, err
		}
		uids = append(uids, m.UID)
	}
	return uids, nil
}

// OpenMaildrop locks the user's maildrop and reads the INBOX. It fails with
// ErrMaildropLocked if another session holds it and ErrNotFound for an
// unknown user. The caller must Close it.
func (s *Store) OpenMaildrop(address string) (Maildrop, error) {
	addr, err := CanonicalAddress(address)
	if err != nil {
		return nil, err
	}
	s.dropsMu.Lock()
	if s.drops[addr] {
		s.dropsMu.Unlock()
		return nil, fmt.Errorf("opening maildrop of %s: %w", addr, ErrMaildropLocked)
	}
	s.drops[addr] = true
	s.dropsMu.Unlock()
	snap, err := s.Messages(addr, Inbox)
	if err != nil {
		s.unlockDrop(addr)
		return nil, fmt.Errorf("opening maildrop: %w", err)
	}
	return &maildrop{MaildropListing: NewMaildropListing(snap), s: s, addr: addr}, nil
}

func (s *Store) unlockDrop(addr string) {
	s.dropsMu.Lock()
	delete(s.drops, addr)
	s.dropsMu.Unlock()
}

// Open returns the content of a message.
func (d *maildrop) Open(uid string) (io.ReadCloser, error) {
	m, err := d.Message(uid)
	if err != nil {
		return nil, err
	}
	return d.s.OpenBlob(m.Body)
}

// Commit removes the given messages durably (the RFC 1939 UPDATE state).
// Messages already gone are not an error.
func (d *maildrop) Commit(deleteUIDs []string) error {
	if len(deleteUIDs) == 0 {
		return nil
	}
	uids, err := d.UIDs(deleteUIDs)
	if err != nil {
		return fmt.Errorf("committing maildrop: %w", err)
	}
	if err := d.s.ix.RLock(); err != nil {
		return err
	}
	defer d.s.ix.RUnlock()
	if _, err := d.s.remove(d.addr, Inbox, uids, false); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("committing maildrop of %s: %w", d.addr, err)
	}
	return nil
}

// Close releases the maildrop lock. It is safe to call more than once.
func (d *maildrop) Close() error {
	d.once.Do(func() { d.s.unlockDrop(d.addr) })
	return nil
}
