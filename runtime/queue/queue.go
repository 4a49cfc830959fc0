package queue

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mailstack/terraform-provider-mailstack/internal/errkind"
	"github.com/mailstack/terraform-provider-mailstack/runtime/durable"
)

// Errors the queue returns; callers test them with errors.Is.
var (
	// ErrNotFound: no queued message has that id.
	ErrNotFound = errkind.New(errkind.NotFound, "no such queued message")
	// ErrClosed: the queue was closed.
	ErrClosed = errors.New("queue closed")
)

// State is where one recipient of a queued message stands.
type State string

const (
	// Queued: not delivered yet; another attempt will come.
	Queued State = "queued"
	// Delivered: the destination accepted it (2xx) or it is in a local
	// mailbox.
	Delivered State = "delivered"
	// Failed: permanently refused (5xx), or given up on; the sender is
	// told with a delivery status notification.
	Failed State = "failed"
)

// Recipient is one recipient of a queued message.
type Recipient struct {
	Address string `json:"address"`
	// Local recipients go to this server's mailboxes, the others to
	// their domain's MX hosts or the relay.
	Local    bool  `json:"local,omitempty"`
	State    State `json:"state"`
	Attempts int   `json:"attempts,omitempty"`
	// LastError is why the latest attempt did not deliver, naming the
	// host and its reply ("mx.example.org[192.0.2.1]: 451 4.3.0 ...").
	LastError string `json:"last_error,omitempty"`
	// RemoteMTA is the host that gave the final answer, for the DSN.
	RemoteMTA string `json:"remote_mta,omitempty"`
	// Reply is the final answer ("250 2.0.0 Ok: queued as ..."), for the
	// DSN and the operator.
	Reply string `json:"reply,omitempty"`
	// PossibleDuplicate is set when the runtime stopped after the end of
	// the data for this recipient and before the reply was recorded: the
	// next attempt may deliver a second copy (RFC 5321 section 6.1).
	PossibleDuplicate bool `json:"possible_duplicate,omitempty"`
}

// Entry is one queued message.
type Entry struct {
	ID string `json:"id"`
	// From is the envelope sender (MAIL FROM); empty for the null sender.
	From string `json:"from"`
	// User is the authenticated submitter, for the log and the operator.
	User    string    `json:"user,omitempty"`
	Created time.Time `json:"created"`
	Size    int64     `json:"size"`
	// SMTPUTF8 is set when the envelope needs the SMTPUTF8 extension;
	// EightBit when the message has bytes above 127 (BODY=8BITMIME).
	SMTPUTF8   bool        `json:"smtputf8,omitempty"`
	EightBit   bool        `json:"eight_bit,omitempty"`
	Recipients []Recipient `json:"recipients"`
	// NextAttempt is when the queued recipients are tried next.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	// DelayWarned is set once the sender was told the message is delayed.
	DelayWarned bool `json:"delay_warned,omitempty"`
}

// Pending returns the recipients still queued.
func (e *Entry) Pending() []Recipient {
	var out []Recipient
	for _, r := range e.Recipients {
		if r.State == Queued {
			out = append(out, r)
		}
	}
	return out
}

// Done reports whether no recipient is queued any more.
func (e *Entry) Done() bool { return len(e.Pending()) == 0 }

// Recipient returns a pointer to the recipient with address, or nil.
func (e *Entry) Recipient(address string) *Recipient {
	for i := range e.Recipients {
		if e.Recipients[i].Address == address {
			return &e.Recipients[i]
		}
	}
	return nil
}

// Envelope is what Enqueue takes besides the message.
type Envelope struct {
	From       string
	User       string
	SMTPUTF8   bool
	EightBit   bool
	Recipients []Recipient // Address and Local; the state starts as Queued
}

// Options configures Open. The zero value is ready to use.
type Options struct {
	// Logger receives recovery messages; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests move it.
	Now func() time.Time
}

// Queue is the outbound queue. It is safe for concurrent use.
type Queue struct {
	dir   string
	spool string
	ix    *durable.Index // every operation holds its read lock
	syncs durable.DirSyncer
	log   *slog.Logger
	now   func() time.Time
	seq   atomic.Uint32

	sending *sendLog

	statsMu sync.Mutex
	created map[string]time.Time // id -> creation time, for Stats
}

var (
	bucketEntries = []byte("entries")
	// bucketBodies holds the bodies Enqueue keeps inline, by message id.
	bucketBodies = []byte("bodies")
)

// InlineMax is the largest message Enqueue keeps in the index, in the
// same transaction as its entry; larger ones get a spool file each.
// Creating, fsyncing and unlinking a file per message is most of what a
// small message cost the queue (see docs/benchmarks.md), while an inline
// body rides on the group commit the entry needs anyway.
const InlineMax = 64 << 10

const (
	spoolDir = "spool"
	dbFile   = "queue.db"
)

// Open opens (creating if needed) the queue in dir and recovers from a
// crash: spool files without an entry are removed, entries with neither an
// inline body nor a spool file are dropped with an error in the log (as
// are inline bodies without an entry), and recipients that were
// being sent to when the last process stopped are marked as possible
// duplicates. Only one process may open a queue at a time.
func Open(dir string, opts Options) (*Queue, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	spool := filepath.Join(dir, spoolDir)
	if err := os.MkdirAll(spool, 0o700); err != nil {
		return nil, fmt.Errorf("creating queue directory: %w", err)
	}
	ix, err := durable.OpenIndex(filepath.Join(dir, dbFile), durable.IndexOptions{
		Name: "queue index", ErrClosed: ErrClosed,
		// Every commit would also write the list of free pages, which
		// bodies coming and going keep long; Open rebuilds it by
		// scanning the file instead, which for a queue is quick.
		NoFreelistSync: true,
	})
	if err != nil {
		return nil, err
	}
	q := &Queue{dir: dir, spool: spool, ix: ix, log: opts.Logger, now: opts.Now, created: map[string]time.Time{}}
	if err := q.recover(); err != nil {
		ix.Close(nil)
		return nil, fmt.Errorf("recovering queue %s: %w", dir, err)
	}
	return q, nil
}

// Close waits for operations in progress and closes the queue.
func (q *Queue) Close() error {
	return q.ix.Close(q.sending.close)
}

// newID returns a new message id: creation time in nanoseconds and a
// per-process counter, in hex, so ids sort by age.
func (q *Queue) newID(now time.Time) string {
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixNano()))
	binary.BigEndian.PutUint32(b[8:], q.seq.Add(1))
	return hex.EncodeToString(b[:])
}

func validID(id string) bool {
	_, err := hex.DecodeString(id)
	return err == nil && len(id) == 24
}

// Path is the spool file of message id.
func (q *Queue) Path(id string) string { return filepath.Join(q.spool, id) }

// Enqueue stores body for env's recipients and returns the new entry once
// it is durable: a body of at most InlineMax bytes in the index with its
// entry (one group commit), a larger one in its own fsynced spool file
// first.
func (q *Queue) Enqueue(env Envelope, body []byte) (Entry, error) {
	if len(env.Recipients) == 0 {
		return Entry{}, errors.New("queueing: no recipients")
	}
	if err := q.ix.RLock(); err != nil {
		return Entry{}, err
	}
	defer q.ix.RUnlock()
	now := q.now()
	e := Entry{
		ID: q.newID(now), From: env.From, User: env.User, Created: now, Size: int64(len(body)),
		SMTPUTF8: env.SMTPUTF8, EightBit: env.EightBit, NextAttempt: now,
		Recipients: make([]Recipient, len(env.Recipients)),
	}
	for i, r := range env.Recipients {
		e.Recipients[i] = Recipient{Address: r.Address, Local: r.Local, State: Queued}
	}
	data, err := json.Marshal(&e)
	if err != nil {
		return Entry{}, err
	}
	inline := len(body) > 0 && len(body) <= InlineMax
	path := q.Path(e.ID)
	if !inline {
		if err := durable.WriteFile(path, body); err != nil {
			return Entry{}, fmt.Errorf("queueing: %w", err)
		}
		if err := q.syncs.Sync(q.spool); err != nil {
			os.Remove(path)
			return Entry{}, fmt.Errorf("queueing: %w", err)
		}
	}
	if err := q.ix.Update(func(tx *bolt.Tx) error {
		if inline {
			// bbolt keeps body until the commit, which Update waits for.
			if err := tx.Bucket(bucketBodies).Put([]byte(e.ID), body); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketEntries).Put([]byte(e.ID), data)
	}); err != nil {
		if !inline {
			os.Remove(path)
		}
		return Entry{}, fmt.Errorf("queueing: %w", err)
	}
	q.track(e.ID, e.Created)
	return e, nil
}

func (q *Queue) track(id string, created time.Time) {
	q.statsMu.Lock()
	defer q.statsMu.Unlock()
	if created.IsZero() {
		delete(q.created, id)
	} else {
		q.created[id] = created
	}
}

// Stats returns how many messages are queued and when the oldest was
// queued (zero when none is).
func (q *Queue) Stats() (length int, oldest time.Time) {
	q.statsMu.Lock()
	defer q.statsMu.Unlock()
	for _, c := range q.created {
		if oldest.IsZero() || c.Before(oldest) {
			oldest = c
		}
	}
	return len(q.created), oldest
}

// Entry returns the entry of message id.
func (q *Queue) Entry(id string) (Entry, error) {
	if err := q.ix.RLock(); err != nil {
		return Entry{}, err
	}
	defer q.ix.RUnlock()
	var e Entry
	err := q.ix.View(func(tx *bolt.Tx) error {
		var err error
		e, err = getEntry(tx, id)
		return err
	})
	return e, err
}

// Entries returns every entry, oldest first.
func (q *Queue) Entries() ([]Entry, error) {
	if err := q.ix.RLock(); err != nil {
		return nil, err
	}
	defer q.ix.RUnlock()
	var out []Entry
	err := q.ix.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEntries).ForEach(func(k, v []byte) error {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decoding queue entry %s: %w", k, err)
			}
			out = append(out, e)
			return nil
		})
	})
	return out, err
}

func getEntry(tx *bolt.Tx, id string) (Entry, error) {
	var e Entry
	v := tx.Bucket(bucketEntries).Get([]byte(id))
	if v == nil {
		return e, fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	if err := json.Unmarshal(v, &e); err != nil {
		return e, fmt.Errorf("decoding queue entry %s: %w", id, err)
	}
	return e, nil
}

// Update changes entry id with fn and returns the result once it is
// durable. fn may run more than once, each time on a fresh copy of the
// stored entry; an error from it changes nothing and is returned.
func (q *Queue) Update(id string, fn func(e *Entry) error) (Entry, error) {
	if err := q.ix.RLock(); err != nil {
		return Entry{}, err
	}
	defer q.ix.RUnlock()
	var e Entry
	err := q.ix.Update(func(tx *bolt.Tx) error {
		var err error
		if e, err = getEntry(tx, id); err != nil {
			return err
		}
		if err := fn(&e); err != nil {
			return err
		}
		data, err := json.Marshal(&e)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketEntries).Put([]byte(id), data)
	})
	return e, err
}

// Settle is Update for a delivery result: when fn leaves every recipient
// delivered, the entry is removed in the same transaction (and its spool
// file after it), so the common case of a message delivered at the first
// attempt costs one commit. removed reports that it happened.
func (q *Queue) Settle(id string, fn func(e *Entry) error) (e Entry, removed bool, err error) {
	return q.settle(q.ix.Update, id, fn)
}

// SettleLater is Settle for a caller that went on with other work and
// recorded the replies in the send log (Replied) first: its commit may
// wait up to durable.LaterDelay to share an fsync with others.
func (q *Queue) SettleLater(id string, fn func(e *Entry) error) (e Entry, removed bool, err error) {
	return q.settle(q.ix.UpdateLater, id, fn)
}

func (q *Queue) settle(update func(func(*bolt.Tx) error) error, id string, fn func(e *Entry) error) (e Entry, removed bool, err error) {
	if err := q.ix.RLock(); err != nil {
		return Entry{}, false, err
	}
	defer q.ix.RUnlock()
	spooled := false
	err = update(func(tx *bolt.Tx) error {
		var err error
		if e, err = getEntry(tx, id); err != nil {
			return err
		}
		if err := fn(&e); err != nil {
			return err
		}
		removed, spooled = true, false
		for _, r := range e.Recipients {
			removed = removed && r.State == Delivered
		}
		if removed {
			spooled, err = deleteEntry(tx, id)
			return err
		}
		data, err := json.Marshal(&e)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketEntries).Put([]byte(id), data)
	})
	if err == nil && removed {
		q.forget(id, spooled)
	}
	return e, removed, err
}

// Remove deletes message id from the queue once it is done with (every
// recipient delivered or failed, or dropped by the operator).
func (q *Queue) Remove(id string) error {
	if err := q.ix.RLock(); err != nil {
		return err
	}
	defer q.ix.RUnlock()
	spooled := false
	err := q.ix.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketEntries).Get([]byte(id)) == nil {
			return fmt.Errorf("%s: %w", id, ErrNotFound)
		}
		var err error
		spooled, err = deleteEntry(tx, id)
		return err
	})
	if err != nil {
		return err
	}
	q.forget(id, spooled)
	return nil
}

// deleteEntry deletes message id's entry and its inline body, if it has
// one; spooled reports that it has none, so its body is a spool file.
func deleteEntry(tx *bolt.Tx, id string) (spooled bool, err error) {
	bodies := tx.Bucket(bucketBodies)
	spooled = bodies.Get([]byte(id)) == nil
	if !spooled {
		if err := bodies.Delete([]byte(id)); err != nil {
			return false, err
		}
	}
	return spooled, tx.Bucket(bucketEntries).Delete([]byte(id))
}

// forget drops a removed entry's statistics and spool file, if it has
// one. An unlink lost in a crash leaves a spool file without an entry,
// which Open removes.
func (q *Queue) forget(id string, spooled bool) {
	q.track(id, time.Time{})
	if !spooled {
		return
	}
	if err := os.Remove(q.Path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		q.log.Warn("removing spool file", "id", id, "err", err)
	}
}

// Open opens message id's body for reading: a copy of its inline body,
// or its spool file.
func (q *Queue) Open(id string) (io.ReadCloser, error) {
	if !validID(id) {
		return nil, fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	if err := q.ix.RLock(); err != nil {
		return nil, err
	}
	defer q.ix.RUnlock()
	var body []byte
	if err := q.ix.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketBodies).Get([]byte(id)); v != nil {
			// v lives in bbolt's map only as long as the transaction.
			body = bytes.Clone(v)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("opening queued message: %w", err)
	}
	if body != nil {
		return io.NopCloser(bytes.NewReader(body)), nil
	}
	f, err := os.Open(q.Path(id))
	if err != nil {
		return nil, fmt.Errorf("opening queued message: %w", err)
	}
	return f, nil
}

// recover runs in Open before anything else uses the queue.
func (q *Queue) recover() error {
	if err := q.ix.DB().Update(func(tx *bolt.Tx) error {
		// A queue of a version before inline bodies has no bodies
		// bucket; its messages are all spool files, read as before.
		for _, name := range [][]byte{bucketEntries, bucketBodies} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	sending, sent, err := openSendLog(filepath.Join(q.dir, sendLogFile))
	if err != nil {
		return err
	}
	q.sending = sending
	files, err := os.ReadDir(q.spool)
	if err != nil {
		return err
	}
	onDisk := map[string]bool{}
	for _, f := range files {
		onDisk[f.Name()] = true
	}
	var lost, strays []string
	marked := map[string][]string{} // id -> recipients marked as possible duplicates
	err = q.ix.DB().Update(func(tx *bolt.Tx) error {
		b, bodies := tx.Bucket(bucketEntries), tx.Bucket(bucketBodies)
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			id := string(k)
			if bodies.Get(k) == nil && !onDisk[id] {
				lost = append(lost, id)
				continue
			}
			delete(onDisk, id)
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decoding queue entry %s: %w", id, err)
			}
			q.created[id] = e.Created
			window, delivered := sent.inWindow[id], sent.delivered[id]
			if len(window) == 0 && len(delivered) == 0 {
				continue
			}
			for i, r := range e.Recipients {
				switch {
				case r.State != Queued:
				case slices.Contains(delivered, r.Address):
					// The peer said 250 and the process died before
					// committing it: it is delivered, not to be sent again.
					e.Recipients[i].State = Delivered
					e.Recipients[i].Reply = "2xx reply recorded in the send log before the runtime stopped"
					e.Recipients[i].LastError = ""
				case slices.Contains(window, r.Address):
					marked[id] = append(marked[id], r.Address)
					e.Recipients[i].PossibleDuplicate = true
					e.Recipients[i].LastError = "the runtime stopped after the end of the data and before the reply " +
						"was read; the next attempt may deliver a second copy (RFC 5321 section 6.1)"
				}
			}
			data, err := json.Marshal(&e)
			if err != nil {
				return err
			}
			if err := b.Put(k, data); err != nil {
				return err
			}
		}
		for _, id := range lost {
			if err := b.Delete([]byte(id)); err != nil {
				return err
			}
		}
		// An inline body is written in its entry's transaction and
		// deleted in the one that deletes the entry, so none should be
		// alone; should one be, nothing acknowledged refers to it.
		bc := bodies.Cursor()
		for k, _ := bc.First(); k != nil; k, _ = bc.Next() {
			if b.Get(k) == nil {
				strays = append(strays, string(k))
			}
		}
		for _, id := range strays {
			if err := bodies.Delete([]byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range lost {
		q.log.Error("queued message lost: its spool file is gone; the entry is dropped", "id", id)
	}
	for _, id := range strays {
		q.log.Warn("removed an inline body without a queue entry", "id", id)
	}
	for id, rcpts := range marked {
		q.log.Warn("the runtime stopped while this message was being sent; it will be sent again and may arrive twice",
			"id", id, "message_id", q.messageID(id), "recipients", rcpts)
	}
	for name := range onDisk {
		// Enqueue never returned for these: nothing acknowledged them.
		if err := os.Remove(filepath.Join(q.spool, name)); err != nil {
			return err
		}
	}
	return sending.reset()
}

// messageID returns the Message-ID of queued message id, for the log;
// empty when it has none.
func (q *Queue) messageID(id string) string {
	f, err := q.Open(id)
	if err != nil {
		return ""
	}
	defer f.Close()
	hdr, err := textproto.NewReader(bufio.NewReader(io.LimitReader(f, 64<<10))).ReadMIMEHeader()
	if err != nil && len(hdr) == 0 {
		return ""
	}
	return strings.Trim(hdr.Get("Message-Id"), "<> ")
}
