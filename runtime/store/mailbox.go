package store

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mailstack/terraform-provider-mailstack/runtime/durable"
	bolt "go.etcd.io/bbolt"
)

// MailboxInfo describes a mailbox. IMAP names use '/' as the hierarchy
// delimiter; INBOX is always spelled INBOX.
type MailboxInfo struct {
	Name        string
	UIDValidity uint32
	UIDNext     uint32
	Subscribed  bool
	// SpecialUse is the mailbox's RFC 6154 attribute (\Sent, \Trash, ...)
	// or "".
	SpecialUse string
}

// CreateOptions are the optional parts of CreateMailbox.
type CreateOptions struct {
	// SpecialUse is an RFC 6154 attribute from SpecialUses, or "".
	SpecialUse string
}

// MailboxStatus is a mailbox with its counters (IMAP STATUS).
type MailboxStatus struct {
	MailboxInfo
	Messages uint32
	Unseen   uint32
	Deleted  uint32
	// Recent counts the messages no session has claimed as \Recent yet.
	Recent uint32
	Size   int64
	// ModSeq changes whenever the mailbox's messages change: IMAP's
	// HIGHESTMODSEQ (RFC 7162), at least 1.
	ModSeq uint64
}

// Delimiter is the hierarchy delimiter of mailbox names.
const Delimiter = '/'

func (m *mbox) info() MailboxInfo {
	return MailboxInfo{Name: m.meta.Name, UIDValidity: m.id, UIDNext: m.meta.UIDNext, Subscribed: m.meta.Subscribed, SpecialUse: m.meta.SpecialUse}
}

// Mailboxes returns the user's mailboxes ordered by name.
func (s *Store) Mailboxes(address string) ([]MailboxInfo, error) {
	addr, err := s.rlockAddress(address)
	if err != nil {
		return nil, err
	}
	defer s.ix.RUnlock()
	var out []MailboxInfo
	err = s.ix.View(func(tx *bolt.Tx) error {
		ub := userBoxes(tx, addr)
		if ub == nil {
			return fmt.Errorf("user %s: %w", addr, ErrNotFound)
		}
		all, err := allMboxes(ub)
		subs := subscriptions(ub)
		for _, m := range all {
			info := m.info()
			_, info.Subscribed = slices.BinarySearch(subs, info.Name)
			out = append(out, info)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing mailboxes: %w", err)
	}
	return out, nil
}

// Status returns a mailbox with its counters.
func (s *Store) Status(address, mailbox string) (MailboxStatus, error) {
	addr, err := s.rlockAddress(address)
	if err != nil {
		return MailboxStatus{}, err
	}
	defer s.ix.RUnlock()
	var st MailboxStatus
	err = s.viewMbox(addr, mailbox, func(_ *bolt.Tx, m *mbox) error {
		st.MailboxInfo, st.ModSeq = m.info(), publicModSeq(m.meta.ModSeq)
		return m.msgs().ForEach(func(k, v []byte) error {
			r, err := unmarshalRecord(v)
			if err != nil {
				return err
			}
			st.Messages++
			if binary.BigEndian.Uint32(k) >= m.meta.RecentFrom {
				st.Recent++
			}
			st.Size += r.size
			if !r.flags.has(FlagSeen) {
				st.Unseen++
			}
			if r.flags.has(FlagDeleted) {
				st.Deleted++
			}
			return nil
		})
	})
	if err != nil {
		return MailboxStatus{}, fmt.Errorf("status of %q: %w", mailbox, err)
	}
	return st, nil
}

// CreateMailbox creates mailbox name, and any missing parents of it
// (RFC 9051 6.3.4). It fails with ErrExists if name exists.
func (s *Store) CreateMailbox(address, name string, opts CreateOptions) error {
	addr, name, err := MailboxArgs(address, name)
	if err != nil {
		return err
	}
	if err := ValidSpecialUse(opts.SpecialUse); err != nil {
		return err
	}
	if err := s.ix.Lock(); err != nil {
		return err
	}
	defer s.ix.Unlock()
	if err := s.createLocked(addr, name, true, opts.SpecialUse); err != nil {
		return fmt.Errorf("creating mailbox: %w", err)
	}
	return nil
}

// createLocked creates name, with special use use, and its missing
// parents; with mustBeNew it fails if name itself exists. The caller holds
// the index lock for writing (s.ix.Lock).
func (s *Store) createLocked(addr, name string, mustBeNew bool, use string) error {
	var missing []string
	err := s.ix.View(func(tx *bolt.Tx) error {
		ub := userBoxes(tx, addr)
		if ub == nil {
			return fmt.Errorf("user %s: %w", addr, ErrNotFound)
		}
		names := ub.Bucket(bucketNames)
		if names.Get([]byte(name)) != nil {
			if mustBeNew {
				return fmt.Errorf("mailbox %q: %w", name, ErrExists)
			}
			return nil
		}
		for p := name; p != ""; p = ParentMailbox(p) {
			if names.Get([]byte(p)) == nil {
				missing = append(missing, p)
			}
		}
		return nil
	})
	if err != nil || len(missing) == 0 {
		return err
	}
	root := s.userDir(addr)
	for _, n := range missing {
		if err := makeMaildir(filepath.Join(root, folderDir(n))); err != nil {
			return err
		}
	}
	if err := durable.SyncDir(root); err != nil {
		return err
	}
	return s.commit.update(func(tx *bolt.Tx, changed *[]watchKey) error {
		*changed = append(*changed, userKey(addr))
		ub := userBoxes(tx, addr)
		for _, n := range missing {
			m, err := createMbox(tx, ub, n, folderDir(n))
			if err != nil {
				return err
			}
			if n == name && use != "" {
				m.meta.SpecialUse = use
				if err := m.saveMeta(); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// ParentMailbox returns the parent of a mailbox name, or "".
func ParentMailbox(name string) string {
	i := strings.LastIndexByte(name, Delimiter)
	if i < 0 {
		return ""
	}
	return name[:i]
}

// DeleteMailbox deletes a mailbox and its messages. INBOX cannot be
// deleted (ErrInvalidMailbox), nor can a mailbox with children
// (ErrHasChildren, IMAP's [HASCHILDREN]).
func (s *Store) DeleteMailbox(address, name string) error {
	addr, err := CanonicalAddress(address)
	if err != nil {
		return err
	}
	name = NormalizeMailbox(name)
	if name == Inbox {
		return fmt.Errorf("%w: INBOX cannot be deleted", ErrInvalidMailbox)
	}
	if err := s.ix.Lock(); err != nil {
		return err
	}
	defer s.ix.Unlock()
	var dir string
	err = s.viewMbox(addr, name, func(tx *bolt.Tx, m *mbox) error {
		dir = m.meta.Dir
		c := userBoxes(tx, addr).Bucket(bucketNames).Cursor()
		prefix := []byte(name + "/")
		if k, _ := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)) {
			return fmt.Errorf("mailbox %q: %w", name, ErrHasChildren)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("deleting mailbox: %w", err)
	}
	full := filepath.Join(s.userDir(addr), dir)
	trashed, err := s.moveToTrash(full)
	if err != nil {
		return fmt.Errorf("deleting mailbox %q: %w", name, err)
	}
	s.syncs.Forget(filepath.Join(full, dirNew), filepath.Join(full, dirCur))
	err = s.updateMbox(addr, name, func(tx *bolt.Tx, m *mbox, changed *[]watchKey) error {
		*changed = append(*changed, watchKey{addr, m.id})
		return deleteMbox(tx, addr, m)
	})
	if err != nil {
		return fmt.Errorf("deleting mailbox %q: %w", name, err)
	}
	if err := os.RemoveAll(trashed); err != nil {
		return fmt.Errorf("deleting mailbox %q: %w", name, err)
	}
	return nil
}

// deleteMbox removes m from the index and its bytes from the user's usage.
func deleteMbox(tx *bolt.Tx, addr string, m *mbox) error {
	var size int64
	err := m.msgs().ForEach(func(_, v []byte) error {
		r, err := unmarshalRecord(v)
		size += r.size
		return err
	})
	if err != nil {
		return err
	}
	ub := userBoxes(tx, addr)
	if err := ub.Bucket(bucketNames).Delete([]byte(m.meta.Name)); err != nil {
		return err
	}
	if err := ub.Bucket(bucketIDs).DeleteBucket(be32(m.id)); err != nil {
		return err
	}
	return addUsage(tx, addr, -size)
}

// RenameMailbox renames a mailbox and its children (RFC 9051 6.3.6),
// creating missing parents of the new name. Renaming INBOX moves all its
// messages into a new mailbox and leaves INBOX empty, as the RFC specifies.
func (s *Store) RenameMailbox(address, oldName, newName string) error {
	addr, newName, err := MailboxArgs(address, newName)
	if err != nil {
		return err
	}
	oldName = NormalizeMailbox(oldName)
	if newName == Inbox || strings.HasPrefix(newName, oldName+"/") {
		return fmt.Errorf("%w: cannot rename %q to %q", ErrInvalidMailbox, oldName, newName)
	}
	if err := s.ix.Lock(); err != nil {
		return err
	}
	defer s.ix.Unlock()
	if oldName == Inbox {
		return s.renameInboxLocked(addr, newName)
	}
	type move struct{ from, to *mailboxMeta }
	var moves []move
	err = s.ix.View(func(tx *bolt.Tx) error {
		ub := userBoxes(tx, addr)
		if ub == nil {
			return fmt.Errorf("user %s: %w", addr, ErrNotFound)
		}
		all, err := allMboxes(ub)
		if err != nil {
			return err
		}
		names := ub.Bucket(bucketNames)
		for _, m := range all {
			n := m.meta.Name
			if n != oldName && !strings.HasPrefix(n, oldName+"/") {
				continue
			}
			to := newName + n[len(oldName):]
			if names.Get([]byte(to)) != nil {
				return fmt.Errorf("mailbox %q: %w", to, ErrExists)
			}
			from := m.meta
			moves = append(moves, move{&from, &mailboxMeta{Name: to, Dir: folderDir(to)}})
		}
		if len(moves) == 0 {
			return fmt.Errorf("mailbox %q: %w", oldName, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("renaming mailbox: %w", err)
	}
	if p := ParentMailbox(newName); p != "" {
		if err := s.createLocked(addr, p, false, ""); err != nil {
			return fmt.Errorf("renaming mailbox: %w", err)
		}
	}
	root := s.userDir(addr)
	for _, mv := range moves {
		from := filepath.Join(root, mv.from.Dir)
		if err := os.Rename(from, filepath.Join(root, mv.to.Dir)); err != nil {
			return fmt.Errorf("renaming mailbox %q: %w", mv.from.Name, err)
		}
		s.syncs.Forget(filepath.Join(from, dirNew), filepath.Join(from, dirCur))
	}
	if err := durable.SyncDir(root); err != nil {
		return fmt.Errorf("renaming mailbox: %w", err)
	}
	err = s.commit.update(func(tx *bolt.Tx, changed *[]watchKey) error {
		*changed = append(*changed, userKey(addr))
		ub := userBoxes(tx, addr)
		names := ub.Bucket(bucketNames)
		for _, mv := range moves {
			idb := names.Get([]byte(mv.from.Name))
			if idb == nil {
				return fmt.Errorf("mailbox %q: %w", mv.from.Name, ErrNotFound)
			}
			m, err := openMboxID(ub, binary.BigEndian.Uint32(idb))
			if err != nil {
				return err
			}
			if err := names.Delete([]byte(mv.from.Name)); err != nil {
				return err
			}
			if err := names.Put([]byte(mv.to.Name), be32(m.id)); err != nil {
				return err
			}
			m.meta.Name, m.meta.Dir = mv.to.Name, mv.to.Dir
			if err := m.saveMeta(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("renaming mailbox: %w", err)
	}
	return nil
}

// renameInboxLocked implements RENAME INBOX: a new mailbox receives every
// INBOX message.
func (s *Store) renameInboxLocked(addr, newName string) error {
	if err := s.createLocked(addr, newName, true, ""); err != nil {
		return fmt.Errorf("renaming INBOX: %w", err)
	}
	if _, err := s.transfer(addr, Inbox, nil, newName, true); err != nil {
		return fmt.Errorf("renaming INBOX: %w", err)
	}
	return nil
}

// Subscribe adds a name to the user's subscriptions or removes it (IMAP
// SUBSCRIBE and UNSUBSCRIBE). Subscriptions are names: one may name a
// mailbox that does not exist (yet, or any more), and deleting a mailbox
// keeps its subscription (RFC 9051 6.3.7, 6.3.9).
func (s *Store) Subscribe(address, name string, subscribed bool) error {
	addr, err := s.rlockAddress(address)
	if err != nil {
		return err
	}
	defer s.ix.RUnlock()
	name = NormalizeMailbox(name)
	if err := ValidMailboxName(name); err != nil {
		return err
	}
	err = s.commit.update(func(tx *bolt.Tx, changed *[]watchKey) error {
		*changed = append(*changed, userKey(addr))
		ub := userBoxes(tx, addr)
		if ub == nil {
			return fmt.Errorf("user %s: %w", addr, ErrNotFound)
		}
		subs, err := ub.CreateBucketIfNotExists(bucketSubs)
		if err != nil {
			return err
		}
		// Before subscriptions had their own bucket, the flag lived in
		// the mailbox's meta; clear it so that it cannot resubscribe.
		if idb := ub.Bucket(bucketNames).Get([]byte(name)); idb != nil {
			m, err := openMboxID(ub, binary.BigEndian.Uint32(idb))
			if err != nil {
				return err
			}
			if m.meta.Subscribed {
				m.meta.Subscribed = false
				if err := m.saveMeta(); err != nil {
					return err
				}
				if err := subs.Put([]byte(name), nil); err != nil {
					return err
				}
			}
		}
		if subscribed {
			return subs.Put([]byte(name), nil)
		}
		return subs.Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("subscribing to %q: %w", name, err)
	}
	return nil
}

// Subscriptions returns the names the user subscribed to, sorted, whether
// or not such mailboxes exist.
func (s *Store) Subscriptions(address string) ([]string, error) {
	addr, err := s.rlockAddress(address)
	if err != nil {
		return nil, err
	}
	defer s.ix.RUnlock()
	var out []string
	err = s.ix.View(func(tx *bolt.Tx) error {
		ub := userBoxes(tx, addr)
		if ub == nil {
			return fmt.Errorf("user %s: %w", addr, ErrNotFound)
		}
		out = subscriptions(ub)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading subscriptions: %w", err)
	}
	return out, nil
}

// subscriptions lists a user's subscribed names: the subs bucket and the
// mailboxes still flagged in their meta from before it existed.
func subscriptions(ub *bolt.Bucket) []string {
	var out []string
	if subs := ub.Bucket(bucketSubs); subs != nil {
		subs.ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	}
	ub.Bucket(bucketNames).ForEach(func(k, v []byte) error {
		if m, err := openMboxID(ub, binary.BigEndian.Uint32(v)); err == nil && m.meta.Subscribed {
			out = append(out, string(k))
		}
		return nil
	})
	slices.Sort(out)
	return slices.Compact(out)
}
