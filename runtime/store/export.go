package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// UserDump is all of one account as a store holds it, for moving it to
// another store (`runtime store copy`): nothing an IMAP client relies on
// is left out, so that clients need not notice the move.
type UserDump struct {
	// Address is the canonical address.
	Address string
	// PasswordHash is the stored PHC string, moved as it is: the password
	// is never known.
	PasswordHash string
	QuotaBytes   int64
	// Subscriptions are the subscribed names (RFC 9051 6.3.7).
	Subscriptions []string
	Mailboxes     []MailboxDump
}

// MailboxDump is one mailbox with its counters and messages.
type MailboxDump struct {
	// MailboxInfo gives the name, UIDVALIDITY, UIDNEXT and special use.
	MailboxInfo
	// ModSeq is the mailbox's HIGHESTMODSEQ.
	ModSeq uint64
	// RecentFrom is the lowest UID no session has claimed as \Recent.
	RecentFrom uint32
	// Messages are in UID order; their bodies are read through the
	// exporting store's Blobs.
	Messages []MessageInfo
}

// Export calls fn with each user's account in turn, ordered by address,
// each read in one index transaction. Bodies are read through the store's
// Blobs while it is open.
func (s *Store) Export(fn func(UserDump) error) error {
	users, err := s.Users()
	if err != nil {
		return err
	}
	for _, u := range users {
		d, err := s.dumpUser(u.Address)
		if err != nil {
			return fmt.Errorf("exporting %s: %w", u.Address, err)
		}
		if err := fn(d); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) dumpUser(addr string) (UserDump, error) {
	if err := s.ix.RLock(); err != nil {
		return UserDump{}, err
	}
	defer s.ix.RUnlock()
	d := UserDump{Address: addr}
	err := s.ix.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketUsers).Get([]byte(addr))
		ub := userBoxes(tx, addr)
		if v == nil || ub == nil {
			return fmt.Errorf("user %s: %w", addr, ErrNotFound)
		}
		var rec userRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decoding user %s: %w", addr, err)
		}
		d.PasswordHash, d.QuotaBytes, d.Subscriptions = rec.Hash, rec.Quota, subscriptions(ub)
		all, err := allMboxes(ub)
		if err != nil {
			return err
		}
		for _, m := range all {
			md := MailboxDump{MailboxInfo: m.info(), ModSeq: publicModSeq(m.meta.ModSeq), RecentFrom: m.meta.RecentFrom}
			md.Subscribed = false // Subscriptions say it
			dir := s.mboxDir(addr, m)
			err := m.msgs().ForEach(func(k, v []byte) error {
				r, err := unmarshalRecord(v)
				if err != nil {
					return fmt.Errorf("mailbox %q, message %d: %w", m.meta.Name, binary.BigEndian.Uint32(k), err)
				}
				md.Messages = append(md.Messages, r.info(binary.BigEndian.Uint32(k), dir))
				return nil
			})
			if err != nil {
				return err
			}
			d.Mailboxes = append(d.Mailboxes, md)
		}
		return nil
	})
	return d, err
}
