package store

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// recover makes the index and the Maildirs agree after a crash (or after
// other tools changed the Maildirs while the runtime was stopped):
//
//   - tmp/ files are removed: a delivery that had not reached new/ was never
//     acknowledged;
//   - files in new/ and cur/ that the index does not know are indexed (an
//     acknowledged delivery whose index commit the crash lost, or mail put
//     there by hand), with flags from the ":2," suffix;
//   - an index entry whose file is gone but whose unique name is in cur/
//     under other flags (a flag change whose index commit the crash lost)
//     takes that file and its flags;
//   - index entries whose file is gone are dropped (an expunge or move that
//     had unlinked its files);
//   - Maildir++ folders the index does not know become mailboxes, and
//     mailboxes whose folder is gone are dropped (an interrupted rename);
//   - usage is recounted, and store/trash is emptied.
func (s *Store) recover() error {
	if err := os.RemoveAll(filepath.Join(s.dir, "trash")); err != nil {
		return fmt.Errorf("emptying trash: %w", err)
	}
	var addrs []string
	err := s.ix.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, _ []byte) error {
			addrs = append(addrs, string(k))
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, addr := range addrs {
		if err := s.recoverUser(addr); err != nil {
			return fmt.Errorf("user %s: %w", addr, err)
		}
	}
	return nil
}

// recoverUser repairs one user's mailboxes in one index transaction. No
// other operation on the user may run meanwhile.
func (s *Store) recoverUser(addr string) error {
	root := s.userDir(addr)
	if err := makeMaildir(root); err != nil {
		return err
	}
	folders, err := maildirFolders(root)
	if err != nil {
		return err
	}
	return s.ix.DB().Update(func(tx *bolt.Tx) error {
		ub, err := tx.Bucket(bucketBoxes).CreateBucketIfNotExists([]byte(addr))
		if err != nil {
			return err
		}
		for _, b := range [][]byte{bucketNames, bucketIDs} {
			if _, err := ub.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if ub.Bucket(bucketNames).Get([]byte(Inbox)) == nil {
			if _, err := createMbox(tx, ub, Inbox, ""); err != nil {
				return err
			}
		}
		all, err := allMboxes(ub)
		if err != nil {
			return err
		}
		known := make(map[string]bool)
		var total int64
		for _, m := range all {
			if m.meta.Dir != "" && !folders[m.meta.Dir] {
				s.log.Warn("store recovery: mailbox folder missing, dropping mailbox", "user", addr, "mailbox", m.meta.Name)
				if err := deleteMbox(tx, addr, m); err != nil {
					return err
				}
				continue
			}
			known[m.meta.Dir] = true
			size, err := s.recoverMailbox(addr, m, filepath.Join(root, m.meta.Dir))
			if err != nil {
				return fmt.Errorf("mailbox %q: %w", m.meta.Name, err)
			}
			total += size
		}
		for dir := range folders {
			if known[dir] {
				continue
			}
			name, ok := nameFromFolderDir(dir)
			if !ok || ub.Bucket(bucketNames).Get([]byte(name)) != nil {
				s.log.Warn("store recovery: ignoring folder with unusable name", "user", addr, "folder", dir)
				continue
			}
			s.log.Info("store recovery: adopting folder as mailbox", "user", addr, "mailbox", name)
			m, err := createMbox(tx, ub, name, dir)
			if err != nil {
				return err
			}
			size, err := s.recoverMailbox(addr, m, filepath.Join(root, dir))
			if err != nil {
				return fmt.Errorf("mailbox %q: %w", name, err)
			}
			total += size
		}
		return tx.Bucket(bucketUsage).Put([]byte(addr), binary.BigEndian.AppendUint64(nil, uint64(total)))
	})
}

// maildirFolders lists the Maildir++ folders under a user's root.
func maildirFolders(root string) (map[string]bool, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool)
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, e.Name(), dirCur)); err == nil {
			out[e.Name()] = true
		}
	}
	return out, nil
}

// recoverMailbox reconciles one mailbox with its Maildir and returns the
// bytes it holds.
func (s *Store) recoverMailbox(addr string, m *mbox, dir string) (int64, error) {
	if err := makeMaildir(dir); err != nil {
		return 0, err
	}
	tmps, err := os.ReadDir(filepath.Join(dir, dirTmp))
	if err != nil {
		return 0, err
	}
	for _, e := range tmps {
		s.log.Info("store recovery: removing unfinished delivery", "user", addr, "file", filepath.Join(dir, dirTmp, e.Name()))
		if err := os.RemoveAll(filepath.Join(dir, dirTmp, e.Name())); err != nil {
			return 0, err
		}
	}
	onDisk := make(map[string]fs.DirEntry)
	for _, sub := range []string{dirNew, dirCur} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			return 0, err
		}
		for _, e := range entries {
			if e.Type().IsRegular() {
				onDisk[sub+"/"+e.Name()] = e
			}
		}
	}
	byBase := make(map[string]string, len(onDisk))
	for f := range onDisk {
		if strings.HasPrefix(f, dirCur+"/") {
			byBase[maildirBase(f)] = f
		}
	}
	changed := false
	var size int64
	msgs := m.msgs()
	c := msgs.Cursor()
	for k, v := c.First(); k != nil; {
		r, err := unmarshalRecord(v)
		if err != nil {
			return 0, fmt.Errorf("message %d: %w", binary.BigEndian.Uint32(k), err)
		}
		if _, ok := onDisk[r.file]; !ok {
			if f, ok := byBase[maildirBase(r.file)]; ok {
				if _, indexed := onDisk[f]; indexed {
					s.log.Info("store recovery: message renamed by a flag change", "user", addr, "mailbox", m.meta.Name, "uid", binary.BigEndian.Uint32(k), "file", f)
					keywords := r.flags.keywords
					r.file, r.flags = f, flagsFromFilename(f)
					r.flags.keywords = keywords
					key := slices.Clone(k)
					if err := msgs.Put(key, r.marshal()); err != nil {
						return 0, err
					}
					changed = true
					delete(onDisk, f)
					size += r.size
					// Put may move the cursor's page: find the key again.
					c.Seek(key)
					k, v = c.Next()
					continue
				}
			}
		}
		if _, ok := onDisk[r.file]; !ok {
			s.log.Warn("store recovery: message file gone, dropping it from the index", "user", addr, "mailbox", m.meta.Name, "uid", binary.BigEndian.Uint32(k))
			if err := c.Delete(); err != nil {
				return 0, err
			}
			changed = true
			k, v = c.Seek(slices.Clone(k))
			continue
		}
		delete(onDisk, r.file)
		size += r.size
		k, v = c.Next()
	}
	// Index what is left, oldest first: Maildir names start with the time.
	files := make([]string, 0, len(onDisk))
	for f := range onDisk {
		files = append(files, f)
	}
	slices.SortFunc(files, func(a, b string) int { return compareMaildirNames(filepath.Base(a), filepath.Base(b)) })
	for _, f := range files {
		info, err := onDisk[f].Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return 0, err
		}
		r := record{size: info.Size(), date: info.ModTime(), file: f}
		if strings.HasPrefix(f, dirCur+"/") {
			r.flags = flagsFromFilename(f)
		}
		if _, err := m.add(&r); err != nil {
			return 0, err
		}
		s.log.Info("store recovery: indexed message", "user", addr, "mailbox", m.meta.Name, "file", f)
		size += r.size
		changed = true
	}
	if changed {
		m.meta.ModSeq++
		return size, m.saveMeta()
	}
	return size, nil
}

// compareMaildirNames orders Maildir names by the delivery time they
// start with, "<seconds>.M<microseconds>P...": the microseconds are not
// zero-padded, so names within one second do not sort as strings. Names
// of another form compare as strings, after those.
func compareMaildirNames(a, b string) int {
	ta, oka := maildirTime(a)
	tb, okb := maildirTime(b)
	switch {
	case oka && okb && ta != tb:
		return cmp.Compare(ta, tb)
	case oka != okb:
		if oka {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// maildirTime is the time a Maildir name starts with, in microseconds.
func maildirTime(name string) (int64, bool) {
	secs, rest, ok := strings.Cut(name, ".M")
	if !ok {
		return 0, false
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end <= 0 {
		return 0, false
	}
	sec, err1 := strconv.ParseInt(secs, 10, 64)
	usec, err2 := strconv.ParseInt(rest[:end], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return sec*1_000_000 + usec, true
}
