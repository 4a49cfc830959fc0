package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// MessageInfo is a message's index entry.
type MessageInfo struct {
	UID uint32
	// Flags are IMAP flag names, system flags first.
	Flags []string
	// Size is the size of the message in bytes (IMAP RFC822.SIZE).
	Size int64
	// Date is the internal date: when it was delivered, or the APPEND date.
	Date time.Time
	// ModSeq is the mailbox's MODSEQ when the message was added or its
	// flags last changed (RFC 7162), at least 1.
	ModSeq uint64
	// Body is where Blobs reads the message from.
	Body BlobRef
}

// OpenBlob opens the message file for reading. It fails with an error
// satisfying errors.Is(err, ErrNotFound) if the message was expunged since
// its MessageInfo was read.
func (s *Store) OpenBlob(ref BlobRef) (io.ReadCloser, error) {
	f, err := os.Open(string(ref))
	if errors.Is(err, os.ErrNotExist) {
		if moved, ok := renamed(string(ref)); ok {
			f, err = os.Open(moved)
		}
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("message file: %w", ErrNotFound)
	}
	return f, err
}

// renamed finds a message file that a flag change renamed since its path
// was read (SetFlags): the file in cur/ with the same unique name.
func renamed(p string) (string, bool) {
	mailbox := filepath.Dir(filepath.Dir(p))
	base := maildirBase(p)
	matches, _ := filepath.Glob(filepath.Join(mailbox, dirCur, globEscape(base)+":2,*"))
	if len(matches) == 0 {
		return "", false
	}
	return matches[0], true
}

// moveMessage renames a message file, relative to its mailbox folder dir,
// from its indexed name to file. The file may have been renamed since the
// index was read, by an earlier run of the same group-commit function that
// was rolled back and is being run again (durable.Committer): it is found
// by its unique name. A file that is gone altogether, removed by an expunge
// racing this flag change, is not an error: its index entry goes next.
func moveMessage(dir, from, file string) error {
	src, dst := filepath.Join(dir, from), filepath.Join(dir, file)
	err := os.Rename(src, dst)
	for range 3 {
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		moved, ok := renamed(src)
		if !ok || moved == dst {
			return nil
		}
		err = os.Rename(moved, dst)
	}
	return err
}

// removeMessage deletes a message file, following a flag change that
// renamed it since its path was read (a STORE racing an expunge), so that
// no file of an expunged message is left for a rebuilt index to bring back.
// It returns the path it removed (or last looked for).
func removeMessage(p string) (string, error) {
	for range 4 {
		err := os.Remove(p)
		if !errors.Is(err, os.ErrNotExist) {
			return p, err
		}
		moved, ok := renamed(p)
		if !ok {
			return p, nil
		}
		p = moved
	}
	return p, fmt.Errorf("message file %s: renamed under an expunge again and again", filepath.Base(p))
}

// globEscape quotes glob metacharacters.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ReadBlob reads the whole message into buf's storage (grown if needed)
// and returns it. It costs an open, one read of the indexed size and a
// close: no os.File, whose poller registration costs more than reading a
// small message. Like OpenBlob, it fails with ErrNotFound if the message
// was expunged.
func (s *Store) ReadBlob(ref BlobRef, size int64, buf []byte) ([]byte, error) {
	path := string(ref)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	for err == unix.EINTR {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if err == unix.ENOENT {
		if moved, ok := renamed(path); ok {
			path = moved
			fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		}
	}
	if err == unix.ENOENT {
		return nil, fmt.Errorf("message file: %w", ErrNotFound)
	} else if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	b := slices.Grow(buf[:0], int(size))[:size]
	for n := 0; n < len(b); {
		k, err := unix.Read(fd, b[n:])
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		case k == 0:
			return nil, fmt.Errorf("%s has %d bytes, the index says %d", path, n, size)
		}
		n += k
	}
	return b, nil
}

// HasFlag reports whether the message has flag (system flags compare
// case-insensitively).
func (m MessageInfo) HasFlag(flag string) bool {
	for _, f := range m.Flags {
		if f == flag || strings.HasPrefix(f, `\`) && strings.EqualFold(f, flag) {
			return true
		}
	}
	return false
}

func (r *record) info(uid uint32, dir string) MessageInfo {
	return MessageInfo{UID: uid, Flags: r.flags.list(), Size: r.size, Date: r.date, ModSeq: publicModSeq(r.modseq), Body: BlobRef(filepath.Join(dir, r.file))}
}

// Snapshot is the state of a mailbox at one moment.
type Snapshot struct {
	MailboxInfo
	ModSeq uint64
	// RecentFrom is the lowest UID no session has claimed as \Recent:
	// the recent messages of a session that claims none (EXAMINE).
	RecentFrom uint32
	// Messages are ordered by UID; a message's IMAP sequence number is its
	// index plus one.
	Messages []MessageInfo
}

// Messages returns every message of the mailbox, in UID order.
func (s *Store) Messages(address, mailbox string) (*Snapshot, error) {
	addr, err := s.rlockAddress(address)
	if err != nil {
		return nil, err
	}
	defer s.ix.RUnlock()
	snap := &Snapshot{}
	err = s.viewMbox(addr, mailbox, func(_ *bolt.Tx, m *mbox) error {
		snap.MailboxInfo, snap.ModSeq, snap.RecentFrom = m.info(), publicModSeq(m.meta.ModSeq), m.meta.RecentFrom
		dir := s.mboxDir(addr, m)
		snap.Messages = make([]MessageInfo, 0, m.msgs().Stats().KeyN)
		return m.msgs().ForEach(func(k, v []byte) error {
			r, err := unmarshalRecord(v)
			if err != nil {
				return fmt.Errorf("message %d: %w", binary.BigEndian.Uint32(k), err)
			}
			snap.Messages = append(snap.Messages, r.info(binary.BigEndian.Uint32(k), dir))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("reading %q: %w", mailbox, err)
	}
	return snap, nil
}

// ModSeq returns the mailbox's change counter: if it is unchanged, so are
// the mailbox's messages and their flags.
func (s *Store) ModSeq(address, mailbox string) (uint64, error) {
	addr, err := s.rlockAddress(address)
	if err != nil {
		return 0, err
	}
	defer s.ix.RUnlock()
	var seq uint64
	err = s.viewMbox(addr, mailbox, func(_ *bolt.Tx, m *mbox) error {
		seq = publicModSeq(m.meta.ModSeq)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reading %q: %w", mailbox, err)
	}
	return seq, nil
}

// Lookup returns the messages with the given UIDs, in the order given;
// UIDs that do not exist (any more) are skipped.
func (s *Store) Lookup(address, mailbox string, uids []uint32) ([]MessageInfo, error) {
	addr, err := s.rlockAddress(address)
	if err != nil {
		return nil, err
	}
	defer s.ix.RUnlock()
	out := make([]MessageInfo, 0, len(uids))
	err = s.viewMbox(addr, mailbox, func(_ *bolt.Tx, m *mbox) error {
		dir := s.mboxDir(addr, m)
		msgs := m.msgs()
		for _, uid := range uids {
			r, ok, err := getRecord(msgs, uid)
			if err != nil {
				return fmt.Errorf("message %d: %w", uid, err)
			}
			if ok {
				out = append(out, r.info(uid, dir))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading %q: %w", mailbox, err)
	}
	return out, nil
}

// SetFlags changes the flags of the messages with the given UIDs.
func (s *Store) SetFlags(address, mailbox string, uids []uint32, ch FlagChange) (FlagResult, error) {
	addr, err := s.rlockAddress(address)
	if err != nil {
		return FlagResult{}, err
	}
	defer s.ix.RUnlock()
	var res FlagResult
	err = s.updateMbox(addr, mailbox, func(_ *bolt.Tx, m *mbox, changed *[]watchKey) error {
		res = FlagResult{}
		dir := s.mboxDir(addr, m)
		msgs := m.msgs()
		next := m.meta.ModSeq + 1
		dirty := false
		for _, uid := range uids {
			r, ok, err := getRecord(msgs, uid)
			if err != nil {
				return fmt.Errorf("message %d: %w", uid, err)
			}
			if !ok {
				continue
			}
			if ch.UnchangedSince != 0 && publicModSeq(r.modseq) > ch.UnchangedSince {
				res.Modified = append(res.Modified, uid)
				continue
			}
			if nf := r.flags.apply(ch.Op, ch.Flags); !nf.equal(r.flags) {
				// System flags live in the file's name too, so that a
				// rebuilt index finds them. Renamed before the index
				// commit: a crash in between leaves a name that
				// recovery matches by its unique part.
				if file := maildirFile(r.file, nf); file != r.file {
					if err := moveMessage(dir, r.file, file); err != nil {
						return fmt.Errorf("message %d: %w", uid, err)
					}
					r.file = file
				}
				r.flags, r.modseq, dirty = nf, next, true
				if err := msgs.Put(be32(uid), r.marshal()); err != nil {
					return err
				}
			}
			res.Messages = append(res.Messages, r.info(uid, dir))
		}
		if !dirty {
			return nil
		}
		m.meta.ModSeq = next
		*changed = append(*changed, watchKey{addr, m.id})
		return m.saveMeta()
	})
	if err != nil {
		return FlagResult{}, fmt.Errorf("setting flags in %q: %w", mailbox, err)
	}
	return res, nil
}

// Expunge permanently removes the messages flagged \Deleted, only among
// uids if uids is not nil, and returns the UIDs removed in ascending order.
func (s *Store) Expunge(address, mailbox string, uids []uint32) ([]uint32, error) {
	addr, err := s.rlockAddress(address)
	if err != nil {
		return nil, err
	}
	defer s.ix.RUnlock()
	removed, err := s.remove(addr, mailbox, uids, true)
	if err != nil {
		return nil, fmt.Errorf("expunging %q: %w", mailbox, err)
	}
	return removed, nil
}

// remove deletes messages: the files first (with the directory fsynced),
// then the index entries, so a crash in between leaves index entries
// without files, which Open drops, and never resurrects a message. With
// onlyDeleted, messages without \Deleted are kept. uids nil means all.
func (s *Store) remove(addr, mailbox string, uids []uint32, onlyDeleted bool) ([]uint32, error) {
	var (
		victims []uint32
		paths   []string
		dir     string
	)
	err := s.viewMbox(addr, mailbox, func(_ *bolt.Tx, m *mbox) error {
		dir = s.mboxDir(addr, m)
		return forRecords(m.msgs(), uids, func(uid uint32, r record) {
			if !onlyDeleted || r.flags.has(FlagDeleted) {
				victims = append(victims, uid)
				paths = append(paths, filepath.Join(dir, r.file))
			}
		})
	})
	if err != nil || len(victims) == 0 {
		return nil, err
	}
	syncNew, syncCur := false, false
	for _, p := range paths {
		p, err := removeMessage(p)
		if err != nil {
			return nil, err
		}
		if filepath.Base(filepath.Dir(p)) == dirNew {
			syncNew = true
		} else {
			syncCur = true
		}
	}
	for sub, need := range map[string]bool{dirNew: syncNew, dirCur: syncCur} {
		if need {
			if err := s.syncs.Sync(filepath.Join(dir, sub)); err != nil {
				return nil, err
			}
		}
	}
	var removed []uint32
	err = s.updateMbox(addr, mailbox, func(tx *bolt.Tx, m *mbox, changed *[]watchKey) error {
		removed = removed[:0]
		var freed int64
		msgs := m.msgs()
		for _, uid := range victims {
			r, ok, err := getRecord(msgs, uid)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if err := msgs.Delete(be32(uid)); err != nil {
				return err
			}
			freed += r.size
			removed = append(removed, uid)
		}
		if len(removed) == 0 {
			return nil
		}
		m.meta.ModSeq++
		*changed = append(*changed, watchKey{addr, m.id})
		if err := m.noteVanished(removed); err != nil {
			return err
		}
		if err := m.saveMeta(); err != nil {
			return err
		}
		return addUsage(tx, addr, -freed)
	})
	return removed, err
}

// forRecords calls fn for each record with a UID in uids (all if nil), in
// UID order for nil and in the given order otherwise.
func forRecords(msgs *bolt.Bucket, uids []uint32, fn func(uid uint32, r record)) error {
	if uids == nil {
		return msgs.ForEach(func(k, v []byte) error {
			r, err := unmarshalRecord(v)
			if err != nil {
				return err
			}
			fn(binary.BigEndian.Uint32(k), r)
			return nil
		})
	}
	for _, uid := range uids {
		r, ok, err := getRecord(msgs, uid)
		if err != nil {
			return err
		}
		if ok {
			fn(uid, r)
		}
	}
	return nil
}

// getRecord reads the record of uid from msgs; ok is false if there is none.
func getRecord(msgs *bolt.Bucket, uid uint32) (r record, ok bool, err error) {
	v := msgs.Get(be32(uid))
	if v == nil {
		return record{}, false, nil
	}
	r, err = unmarshalRecord(v)
	return r, true, err
}

// CopyResult tells where copied or moved messages went (IMAP COPYUID).
type CopyResult struct {
	// UIDValidity is the destination mailbox's.
	UIDValidity uint32
	// SourceUIDs[i] became DestUIDs[i].
	SourceUIDs, DestUIDs []uint32
}

// Copy copies the messages with the given UIDs from src to dst, keeping
// flags and internal dates. Files are hard-linked, not copied.
func (s *Store) Copy(address, src string, uids []uint32, dst string) (CopyResult, error) {
	return s.transferPublic(address, src, uids, dst, false)
}

// Move moves the messages with the given UIDs from src to dst (IMAP MOVE,
// RFC 6851): they get new UIDs in dst and are expunged from src.
func (s *Store) Move(address, src string, uids []uint32, dst string) (CopyResult, error) {
	return s.transferPublic(address, src, uids, dst, true)
}

func (s *Store) transferPublic(address, src string, uids []uint32, dst string, move bool) (CopyResult, error) {
	addr, err := s.rlockAddress(address)
	if err != nil {
		return CopyResult{}, err
	}
	defer s.ix.RUnlock()
	if uids == nil {
		uids = []uint32{}
	}
	return s.transfer(addr, src, uids, dst, move)
}

// transfer links messages (all if uids is nil) from src into dst's cur/,
// fsyncs, optionally unlinks the sources, and then commits the index.
func (s *Store) transfer(addr, src string, uids []uint32, dst string, move bool) (CopyResult, error) {
	type item struct {
		uid      uint32
		r        record
		from, to string
	}
	var (
		items          []item
		srcDir, dstDir string
		res            CopyResult
	)
	err := s.ix.View(func(tx *bolt.Tx) error {
		sm, err := openMbox(tx, addr, src)
		if err != nil {
			return err
		}
		dm, err := openMbox(tx, addr, dst)
		if err != nil {
			return err
		}
		srcDir, dstDir = s.mboxDir(addr, sm), s.mboxDir(addr, dm)
		return forRecords(sm.msgs(), uids, func(uid uint32, r record) {
			items = append(items, item{uid: uid, r: r})
		})
	})
	if err != nil {
		return res, fmt.Errorf("copying from %q to %q: %w", src, dst, err)
	}
	linked := items[:0]
	for _, it := range items {
		it.from = filepath.Join(srcDir, it.r.file)
		name := s.uniqueName(it.r.size)
		it.r.file = dirCur + "/" + name + ":2," + it.r.flags.maildirInfo()
		it.to = filepath.Join(dstDir, it.r.file)
		if err := os.Link(it.from, it.to); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // expunged meanwhile
			}
			return res, fmt.Errorf("copying message %d: %w", it.uid, err)
		}
		linked = append(linked, it)
	}
	items = linked
	if len(items) == 0 {
		return res, nil
	}
	if err := s.syncs.Sync(filepath.Join(dstDir, dirCur)); err != nil {
		return res, err
	}
	if move {
		for _, it := range items {
			if err := os.Remove(it.from); err != nil && !errors.Is(err, os.ErrNotExist) {
				return res, fmt.Errorf("moving message %d: %w", it.uid, err)
			}
		}
		for _, sub := range []string{dirNew, dirCur} {
			if err := s.syncs.Sync(filepath.Join(srcDir, sub)); err != nil {
				return res, err
			}
		}
	}
	err = s.commit.update(func(tx *bolt.Tx, changed *[]watchKey) error {
		res = CopyResult{}
		dm, err := openMbox(tx, addr, dst)
		if err != nil {
			return err
		}
		sm, err := openMbox(tx, addr, src)
		if err != nil {
			return err
		}
		var (
			added, freed int64
			moved        []uint32
		)
		for _, it := range items {
			if move {
				v := sm.msgs().Get(be32(it.uid))
				if v == nil {
					continue // expunged meanwhile; its file is linked in dst anyway
				}
				if err := sm.msgs().Delete(be32(it.uid)); err != nil {
					return err
				}
				freed += it.r.size
				moved = append(moved, it.uid)
			}
			uid, err := dm.add(&it.r)
			if err != nil {
				return err
			}
			added += it.r.size
			res.SourceUIDs = append(res.SourceUIDs, it.uid)
			res.DestUIDs = append(res.DestUIDs, uid)
		}
		res.UIDValidity = dm.id
		if err := dm.saveMeta(); err != nil {
			return err
		}
		*changed = append(*changed, watchKey{addr, dm.id})
		if move && sm.id != dm.id {
			sm.meta.ModSeq++
			if err := sm.noteVanished(moved); err != nil {
				return err
			}
			if err := sm.saveMeta(); err != nil {
				return err
			}
			*changed = append(*changed, watchKey{addr, sm.id})
		}
		return addUsage(tx, addr, added-freed)
	})
	if err != nil {
		return CopyResult{}, fmt.Errorf("copying from %q to %q: %w", src, dst, err)
	}
	if len(res.SourceUIDs) < len(items) {
		done := make(map[uint32]bool, len(res.SourceUIDs))
		for _, uid := range res.SourceUIDs {
			done[uid] = true
		}
		for _, it := range items {
			if !done[it.uid] {
				os.Remove(it.to) // its source was expunged while we moved it
			}
		}
	}
	return res, nil
}
