package store

import (
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// UIDRange is the UIDs Start to Stop, both included.
type UIDRange struct{ Start, Stop uint32 }

// AppendUID adds uid, which must be above every UID in rs, to rs.
func AppendUID(rs []UIDRange, uid uint32) []UIDRange {
	if n := len(rs); n > 0 && rs[n-1].Stop+1 == uid {
		rs[n-1].Stop = uid
		return rs
	}
	return append(rs, UIDRange{uid, uid})
}

// ClaimRecent makes the messages no session has seen yet this session's
// \Recent ones (RFC 3501 2.3.2): every message with first <= UID < next
// is recent for the caller and for no one else. A second call returns
// only messages added since the first.
func (s *Store) ClaimRecent(address, mailbox string) (first, next uint32, err error) {
	addr, err := s.rlockAddress(address)
	if err != nil {
		return 0, 0, err
	}
	defer s.ix.RUnlock()
	// Most claims find nothing new: a read spares them a commit.
	err = s.viewMbox(addr, mailbox, func(_ *bolt.Tx, m *mbox) error {
		first, next = m.meta.RecentFrom, m.meta.UIDNext
		return nil
	})
	if err != nil || first == next {
		return next, next, wrapMbox("claiming recent messages in", mailbox, err)
	}
	err = s.updateMbox(addr, mailbox, func(_ *bolt.Tx, m *mbox, _ *[]watchKey) error {
		first, next = m.meta.RecentFrom, m.meta.UIDNext
		m.meta.RecentFrom = m.meta.UIDNext
		return m.saveMeta()
	})
	return first, next, wrapMbox("claiming recent messages in", mailbox, err)
}

// Vanished returns the UIDs expunged from the mailbox after MODSEQ since
// (RFC 7162 3.2.10, QRESYNC). When the store no longer knows that far
// back it returns every UID below UIDNEXT that does not exist, which
// includes all of them, as RFC 7162 3.2.5.1 allows.
func (s *Store) Vanished(address, mailbox string, since uint64) ([]UIDRange, error) {
	addr, err := s.rlockAddress(address)
	if err != nil {
		return nil, err
	}
	defer s.ix.RUnlock()
	var out []UIDRange
	err = s.viewMbox(addr, mailbox, func(_ *bolt.Tx, m *mbox) error {
		internal := since
		if internal > 0 {
			internal-- // public MODSEQ to the internal counter
		}
		if since == 0 || internal < m.meta.VanishedFloor {
			next := uint32(1)
			err := m.msgs().ForEach(func(k, _ []byte) error {
				uid := binary.BigEndian.Uint32(k)
				if uid > next {
					out = append(out, UIDRange{next, uid - 1})
				}
				next = uid + 1
				return nil
			})
			if next < m.meta.UIDNext {
				out = append(out, UIDRange{next, m.meta.UIDNext - 1})
			}
			return err
		}
		gone := m.b.Bucket(bucketGone)
		if gone == nil {
			return nil
		}
		return gone.ForEach(func(k, v []byte) error {
			if seq, n := binary.Uvarint(v); n > 0 && seq > internal {
				out = AppendUID(out, binary.BigEndian.Uint32(k))
			}
			return nil
		})
	})
	return out, wrapMbox("reading vanished messages of", mailbox, err)
}

func wrapMbox(what, mailbox string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s %q: %w", what, mailbox, err)
}

// SpecialUses are the RFC 6154 attributes a mailbox can carry here. \All
// and \Flagged name virtual mailboxes, which this store does not make.
var SpecialUses = []string{`\Archive`, `\Drafts`, `\Junk`, `\Sent`, `\Trash`}

// DefaultMailboxes are created with every new user, each with its special
// use, so that clients agree where sent mail, drafts and deletions go.
var DefaultMailboxes = []MailboxInfo{
	{Name: "Archive", SpecialUse: `\Archive`},
	{Name: "Drafts", SpecialUse: `\Drafts`},
	{Name: "Junk", SpecialUse: `\Junk`},
	{Name: "Sent", SpecialUse: `\Sent`},
	{Name: "Trash", SpecialUse: `\Trash`},
}

// ValidSpecialUse accepts "" and the attributes of SpecialUses, and fails
// with ErrSpecialUse for any other.
func ValidSpecialUse(use string) error {
	if use == "" || slices.Contains(SpecialUses, use) {
		return nil
	}
	return fmt.Errorf("%w %q", ErrSpecialUse, use)
}
