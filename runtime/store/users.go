package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/runtime/durable"
	bolt "go.etcd.io/bbolt"
)

// UserInfo describes a user. It never carries the password or its hash.
type UserInfo struct {
	// Address is the canonical address (see CanonicalAddress).
	Address string
	// QuotaBytes is the most the user's mailboxes may hold; 0 is unlimited.
	QuotaBytes int64
	// UsedBytes is what the user's mailboxes hold now.
	UsedBytes int64
}

// PutUser creates the user, or updates the password and quota of an
// existing one (their mail stays). The password is stored only as an
// argon2id hash. quotaBytes 0 means unlimited.
func (s *Store) PutUser(address, password string, quotaBytes int64) error {
	addr, hash, err := s.passwords.NewUser(address, password, quotaBytes)
	if err != nil {
		return err
	}
	rec, err := json.Marshal(userRecord{Hash: hash, Quota: quotaBytes})
	if err != nil {
		return err
	}
	if err := s.ix.Lock(); err != nil {
		return err
	}
	defer s.ix.Unlock()
	dir := s.userDir(addr)
	if err := makeMaildir(dir); err != nil {
		return fmt.Errorf("user %s: %w", addr, err)
	}
	// The user's directory chain must survive a crash before the user does.
	for d := dir; d != s.dir; d = filepath.Dir(d) {
		if err := durable.SyncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	isNew := false
	err = s.commit.update(func(tx *bolt.Tx, _ *[]watchKey) error {
		users := tx.Bucket(bucketUsers)
		isNew = users.Get([]byte(addr)) == nil
		return users.Put([]byte(addr), rec)
	})
	if err != nil {
		return fmt.Errorf("storing user %s: %w", addr, err)
	}
	if isNew {
		// Creates INBOX and adopts any mail already in the directory.
		if err := s.recoverUser(addr); err != nil {
			return fmt.Errorf("creating mailboxes of %s: %w", addr, err)
		}
		for _, mb := range DefaultMailboxes {
			if err := s.createLocked(addr, mb.Name, false, mb.SpecialUse); err != nil {
				return fmt.Errorf("creating mailboxes of %s: %w", addr, err)
			}
		}
	}
	return nil
}

// DeleteUser removes the user and all their mail.
func (s *Store) DeleteUser(address string) error {
	addr, err := CanonicalAddress(address)
	if err != nil {
		return err
	}
	if err := s.ix.Lock(); err != nil {
		return err
	}
	defer s.ix.Unlock()
	s.dropsMu.Lock()
	locked := s.drops[addr]
	s.dropsMu.Unlock()
	if locked {
		return fmt.Errorf("deleting user %s: %w", addr, ErrMaildropLocked)
	}
	if _, err := s.userRecord(addr); err != nil {
		return fmt.Errorf("deleting user: %w", err)
	}
	// Move the mail out of mail/ first (one rename), then forget the user:
	// a crash in between leaves a user with an empty INBOX, never mail
	// without a user, and Open empties the trash.
	trashed, err := s.moveToTrash(s.userDir(addr))
	if err != nil {
		return fmt.Errorf("removing mail of %s: %w", addr, err)
	}
	err = s.commit.update(func(tx *bolt.Tx, changed *[]watchKey) error {
		*changed = append(*changed, userKey(addr))
		if err := tx.Bucket(bucketUsers).Delete([]byte(addr)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketUsage).Delete([]byte(addr)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketBoxes).DeleteBucket([]byte(addr)); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("deleting user %s: %w", addr, err)
	}
	s.passwords.Forget(addr)
	if err := os.RemoveAll(trashed); err != nil {
		return fmt.Errorf("removing mail of %s: %w", addr, err)
	}
	return nil
}

// moveToTrash renames dir into <store>/trash in one atomic step, makes the
// rename durable and returns the new path ("" if dir did not exist).
func (s *Store) moveToTrash(dir string) (string, error) {
	trash := filepath.Join(s.dir, "trash")
	if err := os.MkdirAll(trash, 0o700); err != nil {
		return "", err
	}
	dst := filepath.Join(trash, strconv.FormatInt(time.Now().UnixNano(), 36)+"-"+strconv.FormatUint(s.seq.Add(1), 36))
	if err := os.Rename(dir, dst); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", nil
		}
		return "", err
	}
	if err := durable.SyncDir(filepath.Dir(dir)); err != nil {
		return "", err
	}
	return dst, nil
}

// userRecord reads the index entry of a canonical address.
func (s *Store) userRecord(addr string) (userRecord, error) {
	var rec userRecord
	err := s.ix.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketUsers).Get([]byte(addr))
		if v == nil {
			return fmt.Errorf("user %s: %w", addr, ErrNotFound)
		}
		return json.Unmarshal(v, &rec)
	})
	return rec, err
}

// User returns the user with that address, or ErrNotFound.
func (s *Store) User(address string) (UserInfo, error) {
	addr, err := s.rlockAddress(address)
	if err != nil {
		return UserInfo{}, err
	}
	defer s.ix.RUnlock()
	var info UserInfo
	err = s.ix.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketUsers).Get([]byte(addr))
		if v == nil {
			return fmt.Errorf("user %s: %w", addr, ErrNotFound)
		}
		var err error
		info, err = userInfo(tx, addr, v)
		return err
	})
	return info, err
}

// Users returns every user, ordered by address.
func (s *Store) Users() ([]UserInfo, error) {
	if err := s.ix.RLock(); err != nil {
		return nil, err
	}
	defer s.ix.RUnlock()
	var out []UserInfo
	err := s.ix.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			info, err := userInfo(tx, string(k), v)
			out = append(out, info)
			return err
		})
	})
	return out, err
}

func userInfo(tx *bolt.Tx, addr string, v []byte) (UserInfo, error) {
	var rec userRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return UserInfo{}, fmt.Errorf("decoding user %s: %w", addr, err)
	}
	return UserInfo{Address: addr, QuotaBytes: rec.Quota, UsedBytes: usage(tx, addr)}, nil
}

// Authenticate checks a user's password. Unknown users and wrong passwords
// both give ErrAuthFailed, in the same time: an unknown user is checked
// against a dummy hash of the same cost.
func (s *Store) Authenticate(address, password string) error {
	hash := ""
	addr, err := CanonicalAddress(address)
	if err == nil {
		if err := s.ix.RLock(); err != nil {
			return err
		}
		rec, err := s.userRecord(addr)
		s.ix.RUnlock()
		if err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("reading user: %w", err)
		}
		hash = rec.Hash
	}
	return s.passwords.Check(addr, hash, password)
}
