package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Index layout (bbolt buckets):
//
//	meta                       "uidvalidity" -> last UIDVALIDITY handed out (uint32)
//	users                      address -> userRecord (JSON)
//	usage                      address -> bytes stored (int64)
//	boxes/<address>/names      mailbox name -> mailbox id (uint32)
//	boxes/<address>/subscriptions  mailbox name -> nothing (IMAP SUBSCRIBE)
//	boxes/<address>/ids/<id>   "meta" -> mailboxMeta (JSON); msgs/<uid> -> message record;
//	                           vanished/<uid> -> internal ModSeq of its expunge (QRESYNC)
//
// A mailbox id is its UIDVALIDITY: drawn from one store-wide counter, so it is
// unique and a mailbox deleted and created again gets a new one (RFC 9051
// 2.3.1.1).
var (
	bucketMeta  = []byte("meta")
	bucketUsers = []byte("users")
	bucketUsage = []byte("usage")
	bucketBoxes = []byte("boxes")
	bucketNames = []byte("names")
	bucketIDs   = []byte("ids")
	bucketMsgs  = []byte("msgs")
	bucketGone  = []byte("vanished")
	bucketSubs  = []byte("subscriptions")
	keyUIDVal   = []byte("uidvalidity")
	keyMeta     = []byte("meta")
)

// Inbox is the one mailbox every user has; in the embedded store its
// directory is the user's Maildir root.
const Inbox = "INBOX"

func initIndex(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketMeta, bucketUsers, bucketUsage, bucketBoxes} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	if meta.Get(keyUIDVal) == nil {
		// Start from the clock, so that a store rebuilt from nothing never
		// reuses the UIDVALIDITY values of the store it replaces.
		return meta.Put(keyUIDVal, be32(uint32(time.Now().Unix())))
	}
	return nil
}

type userRecord struct {
	Hash  string `json:"hash"`
	Quota int64  `json:"quota"`
}

type mailboxMeta struct {
	Name       string `json:"name"`
	Dir        string `json:"dir"` // relative to the user's Maildir root; "" for INBOX
	UIDNext    uint32 `json:"uidnext"`
	Subscribed bool   `json:"subscribed,omitempty"`
	// ModSeq grows with every change to the mailbox's messages (new,
	// flags, expunged), so a session can tell in one read that nothing moved.
	// It is one less than the MODSEQ the store reports (see publicModSeq).
	ModSeq uint64 `json:"modseq"`
	// RecentFrom is the lowest UID no session has seen as \Recent yet
	// (RFC 3501 2.3.2); 0 in mailboxes made before it was kept.
	RecentFrom uint32 `json:"recent_from,omitempty"`
	// SpecialUse is the RFC 6154 attribute, such as \Sent, or "".
	SpecialUse string `json:"special_use,omitempty"`
	// Vanished counts the entries of the vanished bucket; VanishedFloor is
	// the highest internal ModSeq of an expunge whose entry was pruned.
	Vanished      int    `json:"vanished,omitempty"`
	VanishedFloor uint64 `json:"vanished_floor,omitempty"`
}

// record is one message in the index.
type record struct {
	flags  flagSet
	size   int64
	date   time.Time
	modseq uint64 // internal ModSeq of its last change; 0 before version 2
	file   string // "new/<name>" or "cur/<name>", relative to the mailbox directory
}

// recordVersion 2 added modseq after the date; version 1 records read with
// modseq 0.
const recordVersion = 2

func (r *record) marshal() []byte {
	b := make([]byte, 0, 32+len(r.file))
	b = append(b, recordVersion, byte(r.flags.sys))
	b = binary.AppendUvarint(b, uint64(r.size))
	b = binary.AppendVarint(b, r.date.UnixNano())
	b = binary.AppendUvarint(b, r.modseq)
	b = binary.AppendUvarint(b, uint64(len(r.file)))
	b = append(b, r.file...)
	b = binary.AppendUvarint(b, uint64(len(r.flags.keywords)))
	for _, k := range r.flags.keywords {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
	}
	return b
}

var errBadRecord = errors.New("corrupt message record")

func unmarshalRecord(b []byte) (record, error) {
	var r record
	if len(b) < 2 || b[0] != 1 && b[0] != recordVersion {
		return r, errBadRecord
	}
	version := b[0]
	r.flags.sys = sysFlags(b[1])
	b = b[2:]
	size, n := binary.Uvarint(b)
	if n <= 0 {
		return r, errBadRecord
	}
	b = b[n:]
	date, n := binary.Varint(b)
	if n <= 0 {
		return r, errBadRecord
	}
	b = b[n:]
	r.size, r.date = int64(size), time.Unix(0, date)
	if version >= 2 {
		if r.modseq, n = binary.Uvarint(b); n <= 0 {
			return r, errBadRecord
		}
		b = b[n:]
	}
	str := func() (string, bool) {
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return "", false
		}
		s := string(b[n : n+int(l)])
		b = b[n+int(l):]
		return s, true
	}
	var ok bool
	if r.file, ok = str(); !ok {
		return r, errBadRecord
	}
	nk, n := binary.Uvarint(b)
	if n <= 0 || nk > uint64(len(b)) {
		return r, errBadRecord
	}
	b = b[n:]
	for range nk {
		k, ok := str()
		if !ok {
			return r, errBadRecord
		}
		r.flags.keywords = append(r.flags.keywords, k)
	}
	return r, nil
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// userBoxes returns the bucket holding addr's mailboxes, or nil.
func userBoxes(tx *bolt.Tx, addr string) *bolt.Bucket {
	return tx.Bucket(bucketBoxes).Bucket([]byte(addr))
}

// mbox is an open handle on one mailbox inside a transaction.
type mbox struct {
	id   uint32
	b    *bolt.Bucket
	meta mailboxMeta
}

// NormalizeMailbox returns the stored form of an IMAP mailbox name: INBOX in
// any case is INBOX (RFC 9051 5.1), trailing delimiters are dropped.
func NormalizeMailbox(name string) string {
	name = strings.TrimRight(name, "/")
	if strings.EqualFold(name, Inbox) {
		return Inbox
	}
	if len(name) > len(Inbox) && strings.EqualFold(name[:len(Inbox)+1], Inbox+"/") {
		return Inbox + name[len(Inbox):]
	}
	return name
}

// openMbox finds mailbox name of addr. It returns ErrNotFound (wrapped) for
// an unknown user or mailbox.
func openMbox(tx *bolt.Tx, addr, name string) (*mbox, error) {
	ub := userBoxes(tx, addr)
	if ub == nil {
		return nil, fmt.Errorf("user %s: %w", addr, ErrNotFound)
	}
	name = NormalizeMailbox(name)
	idb := ub.Bucket(bucketNames).Get([]byte(name))
	if idb == nil {
		return nil, fmt.Errorf("mailbox %q: %w", name, ErrNotFound)
	}
	return openMboxID(ub, binary.BigEndian.Uint32(idb))
}

func openMboxID(ub *bolt.Bucket, id uint32) (*mbox, error) {
	b := ub.Bucket(bucketIDs).Bucket(be32(id))
	if b == nil {
		return nil, fmt.Errorf("mailbox id %d: %w", id, ErrNotFound)
	}
	m := &mbox{id: id, b: b}
	if err := json.Unmarshal(b.Get(keyMeta), &m.meta); err != nil {
		return nil, fmt.Errorf("decoding mailbox %d: %w", id, err)
	}
	return m, nil
}

func (m *mbox) saveMeta() error {
	buf, err := json.Marshal(&m.meta)
	if err != nil {
		return err
	}
	return m.b.Put(keyMeta, buf)
}

// msgs is the bucket of the mailbox's message records, keyed by UID.
func (m *mbox) msgs() *bolt.Bucket { return m.b.Bucket(bucketMsgs) }

// add indexes a new message and returns its UID. The caller saves meta.
func (m *mbox) add(r *record) (uint32, error) {
	uid := m.meta.UIDNext
	m.meta.UIDNext++
	m.meta.ModSeq++
	r.modseq = m.meta.ModSeq
	return uid, m.msgs().Put(be32(uid), r.marshal())
}

// publicModSeq is the MODSEQ the store reports for an internal counter:
// one more, so that it is never 0 (RFC 7162 3: mod-sequences are positive)
// even in a new mailbox or for records written before version 2.
func publicModSeq(internal uint64) uint64 { return internal + 1 }

// maxVanished bounds the vanished entries a mailbox keeps; beyond it the
// oldest half is pruned and VanishedFloor rises.
const maxVanished = 20000

// noteVanished records that uids were expunged at the mailbox's current
// ModSeq, for QRESYNC's VANISHED (RFC 7162 3.2.10). The caller saves meta.
func (m *mbox) noteVanished(uids []uint32) error {
	gone, err := m.b.CreateBucketIfNotExists(bucketGone)
	if err != nil {
		return err
	}
	seq := binary.AppendUvarint(nil, m.meta.ModSeq)
	for _, uid := range uids {
		if err := gone.Put(be32(uid), seq); err != nil {
			return err
		}
	}
	m.meta.Vanished += len(uids)
	if m.meta.Vanished <= maxVanished {
		return nil
	}
	// UIDs ascend with time, so the lowest are the oldest expunges.
	c := gone.Cursor()
	for k, v := c.First(); k != nil && m.meta.Vanished > maxVanished/2; k, v = c.First() {
		if s, n := binary.Uvarint(v); n > 0 && s > m.meta.VanishedFloor {
			m.meta.VanishedFloor = s
		}
		if err := c.Delete(); err != nil {
			return err
		}
		m.meta.Vanished--
	}
	return nil
}

// createMbox adds mailbox name (with directory dir) to addr's mailboxes.
func createMbox(tx *bolt.Tx, ub *bolt.Bucket, name, dir string) (*mbox, error) {
	meta := tx.Bucket(bucketMeta)
	id := binary.BigEndian.Uint32(meta.Get(keyUIDVal)) + 1
	if err := meta.Put(keyUIDVal, be32(id)); err != nil {
		return nil, err
	}
	b, err := ub.Bucket(bucketIDs).CreateBucket(be32(id))
	if err != nil {
		return nil, err
	}
	if _, err := b.CreateBucket(bucketMsgs); err != nil {
		return nil, err
	}
	if err := ub.Bucket(bucketNames).Put([]byte(name), be32(id)); err != nil {
		return nil, err
	}
	m := &mbox{id: id, b: b, meta: mailboxMeta{Name: name, Dir: dir, UIDNext: 1, RecentFrom: 1, Subscribed: name == Inbox}}
	return m, m.saveMeta()
}

// allMboxes returns addr's mailboxes sorted by name.
func allMboxes(ub *bolt.Bucket) ([]*mbox, error) {
	var out []*mbox
	err := ub.Bucket(bucketNames).ForEach(func(k, v []byte) error {
		m, err := openMboxID(ub, binary.BigEndian.Uint32(v))
		if err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].meta.Name < out[j].meta.Name })
	return out, err
}

func addUsage(tx *bolt.Tx, addr string, delta int64) error {
	b := tx.Bucket(bucketUsage)
	return b.Put([]byte(addr), binary.BigEndian.AppendUint64(nil, uint64(usage(tx, addr)+delta)))
}

func usage(tx *bolt.Tx, addr string) int64 {
	v := tx.Bucket(bucketUsage).Get([]byte(addr))
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}
