package store

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/runtime/durable"
	bolt "go.etcd.io/bbolt"
)

// Deliver stores body in the INBOX of every recipient and returns only when
// it is durable for all of them: the file is written once and fsynced in
// tmp/, hard-linked into each recipient's new/, those directories are
// fsynced, and the index transaction that gives the message its UIDs has
// committed. Concurrent deliveries share directory fsyncs and index commits.
//
// Delivery is all or nothing: an unknown recipient (ErrNotFound) or one
// over quota (ErrQuotaExceeded) fails the call before anything is written.
// Duplicate recipients get one copy. body is stored byte for byte; callers
// pass the message as it came over SMTP, with CRLF line endings.
func (s *Store) Deliver(ctx context.Context, recipients []string, body []byte) error {
	if len(recipients) == 0 {
		return fmt.Errorf("delivering: no recipients")
	}
	addrs, err := CanonicalRecipients(recipients)
	if err != nil {
		return fmt.Errorf("delivering: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delivering: %w", err)
	}
	if err := s.ix.RLock(); err != nil {
		return err
	}
	defer s.ix.RUnlock()

	size := int64(len(body))
	if err := s.ix.View(func(tx *bolt.Tx) error {
		for _, addr := range addrs {
			if err := checkQuota(tx, addr, size); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("delivering: %w", err)
	}

	name := s.uniqueName(size)
	tmp := filepath.Join(s.userDir(addrs[0]), dirTmp, name)
	if err := durable.WriteFile(tmp, body); err != nil {
		return fmt.Errorf("delivering: %w", err)
	}
	file := dirNew + "/" + name
	linked := make([]string, 0, len(addrs))
	cleanup := func() {
		for _, p := range linked {
			os.Remove(p)
		}
	}
	for i, addr := range addrs {
		dst := filepath.Join(s.userDir(addr), file)
		var err error
		if i == len(addrs)-1 {
			err = os.Rename(tmp, dst)
		} else {
			err = os.Link(tmp, dst)
		}
		if err != nil {
			os.Remove(tmp)
			cleanup()
			return fmt.Errorf("delivering to %s: %w", addr, err)
		}
		linked = append(linked, dst)
	}
	for _, addr := range addrs {
		if err := s.syncs.Sync(filepath.Join(s.userDir(addr), dirNew)); err != nil {
			cleanup()
			return fmt.Errorf("delivering to %s: %w", addr, err)
		}
	}

	now := time.Now()
	err = s.commit.update(func(tx *bolt.Tx, changed *[]watchKey) error {
		for _, addr := range addrs {
			m, err := openMbox(tx, addr, Inbox)
			if err != nil {
				return err
			}
			if _, err := m.add(&record{size: size, date: now, file: file}); err != nil {
				return err
			}
			if err := m.saveMeta(); err != nil {
				return err
			}
			if err := addUsage(tx, addr, size); err != nil {
				return err
			}
			*changed = append(*changed, watchKey{addr, m.id})
		}
		return nil
	})
	if err != nil {
		// The files are in new/ already; removing them keeps a failed
		// delivery from reappearing at the next Open.
		cleanup()
		return fmt.Errorf("delivering: %w", err)
	}
	return nil
}

// checkQuota fails if size more bytes would take addr over quota. Deliveries
// running at the same moment are checked against the same usage, so a user
// can overshoot by at most those messages.
func checkQuota(tx *bolt.Tx, addr string, size int64) error {
	v := tx.Bucket(bucketUsers).Get([]byte(addr))
	if v == nil {
		return fmt.Errorf("user %s: %w", addr, ErrNotFound)
	}
	var rec userRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return fmt.Errorf("decoding user %s: %w", addr, err)
	}
	if rec.Quota > 0 && usage(tx, addr)+size > rec.Quota {
		return fmt.Errorf("%s: %w", addr, ErrQuotaExceeded)
	}
	return nil
}

// AppendOptions are the optional parts of an APPEND.
type AppendOptions struct {
	// Flags are set on the new message.
	Flags []string
	// Date is the internal date; zero means now.
	Date time.Time
}

// Append stores size bytes from r as a new message in mailbox of address
// (IMAP APPEND) with the same durability as Deliver, and returns the
// mailbox's UIDVALIDITY and the message's UID. The file goes to cur/ with its
// flags in the name.
func (s *Store) Append(address, mailbox string, r io.Reader, size int64, opts AppendOptions) (uidValidity, uid uint32, err error) {
	addr, err := s.rlockAddress(address)
	if err != nil {
		return 0, 0, err
	}
	defer s.ix.RUnlock()
	var dir string
	err = s.viewMbox(addr, mailbox, func(tx *bolt.Tx, m *mbox) error {
		dir = s.mboxDir(addr, m)
		return checkQuota(tx, addr, size)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("appending to %q: %w", mailbox, err)
	}
	flags := makeFlagSet(opts.Flags)
	name := s.uniqueName(size)
	tmp := filepath.Join(dir, dirTmp, name)
	n, err := durable.CopyFile(tmp, io.LimitReader(r, size))
	if err != nil {
		return 0, 0, fmt.Errorf("appending to %q: %w", mailbox, err)
	}
	file := dirCur + "/" + name + ":2," + flags.maildirInfo()
	dst := filepath.Join(dir, file)
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("appending to %q: %w", mailbox, err)
	}
	if err := s.syncs.Sync(filepath.Join(dir, dirCur)); err != nil {
		os.Remove(dst)
		return 0, 0, fmt.Errorf("appending to %q: %w", mailbox, err)
	}
	date := opts.Date
	if date.IsZero() {
		date = time.Now()
	}
	err = s.updateMbox(addr, mailbox, func(tx *bolt.Tx, m *mbox, changed *[]watchKey) error {
		var err error
		if uid, err = m.add(&record{flags: flags, size: n, date: date, file: file}); err != nil {
			return err
		}
		uidValidity = m.id
		*changed = append(*changed, watchKey{addr, m.id})
		if err := m.saveMeta(); err != nil {
			return err
		}
		return addUsage(tx, addr, n)
	})
	if err != nil {
		os.Remove(dst)
		return 0, 0, fmt.Errorf("appending to %q: %w", mailbox, err)
	}
	return uidValidity, uid, nil
}
