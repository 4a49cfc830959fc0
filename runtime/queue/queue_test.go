package queue

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func openQ(t testing.TB, dir string) *Queue {
	t.Helper()
	q, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func env(rcpts ...string) Envelope {
	e := Envelope{From: "alice@ours.test"}
	for _, r := range rcpts {
		e.Recipients = append(e.Recipients, Recipient{Address: r})
	}
	return e
}

// TestEnqueueSurvivesReopen: what Enqueue returned is there after a
// reopen, byte for byte, with its recipients' states; Update and Remove
// stick too.
func TestEnqueueSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	q := openQ(t, dir)
	var wg sync.WaitGroup
	ids := make([]string, 32)
	for i := range ids {
		wg.Go(func() {
			en, err := q.Enqueue(env("a@x.test", "b@y.test"), []byte("Subject: hi\r\n\r\nbody\r\n"))
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = en.ID
		})
	}
	wg.Wait()
	if _, err := q.Update(ids[0], func(e *Entry) error {
		e.Recipient("a@x.test").State = Delivered
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := q.Remove(ids[1]); err != nil {
		t.Fatal(err)
	}
	if n, oldest := q.Stats(); n != 31 || oldest.IsZero() {
		t.Errorf("stats: %d, %s", n, oldest)
	}
	q.Close()

	q = openQ(t, dir)
	defer q.Close()
	entries, err := q.Entries()
	if err != nil || len(entries) != 31 {
		t.Fatalf("%d entries after reopen, %v", len(entries), err)
	}
	en, err := q.Entry(ids[0])
	if err != nil || en.Recipient("a@x.test").State != Delivered || len(en.Pending()) != 1 {
		t.Errorf("entry after reopen: %+v %v", en, err)
	}
	if _, err := q.Entry(ids[1]); !errors.Is(err, ErrNotFound) {
		t.Errorf("removed entry: %v", err)
	}
	if got := readBody(t, q, ids[2]); got != "Subject: hi\r\n\r\nbody\r\n" {
		t.Errorf("the queued body is %q", got)
	}
	if _, err := q.Open(ids[1]); err == nil {
		t.Error("the removed message's body is still there")
	}
}

func readBody(t *testing.T, q *Queue, id string) string {
	t.Helper()
	f, err := q.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestInlineAndSpooledBodies: a body of up to InlineMax bytes lives in
// the index and makes no spool file; a larger one gets a spool file. Both
// read back byte for byte after a reopen, and a message that leaves the
// queue (all delivered, or removed) takes its body with it.
func TestInlineAndSpooledBodies(t *testing.T) {
	dir := t.TempDir()
	q := openQ(t, dir)
	bodies := map[string]string{
		"small":    "Subject: small\r\n\r\nhi\r\n",
		"at limit": strings.Repeat("x", InlineMax),
		"over":     strings.Repeat("y", InlineMax+1),
		"large":    strings.Repeat("0123456789abcdef", 64<<10),
	}
	spooled := map[string]bool{"over": true, "large": true}
	ids := map[string]string{}
	for name, body := range bodies {
		en, err := q.Enqueue(env("a@x.test"), []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = en.ID
		_, err = os.Stat(q.Path(en.ID))
		if got := err == nil; got != spooled[name] {
			t.Errorf("%s body (%d bytes): spool file %v, want %v", name, len(body), got, spooled[name])
		}
	}
	q.Close()

	q = openQ(t, dir)
	defer q.Close()
	for name, body := range bodies {
		if got := readBody(t, q, ids[name]); got != body {
			t.Errorf("%s body after reopen: %d bytes, want %d", name, len(got), len(body))
		}
	}
	for name, settle := range map[string]func(string, func(*Entry) error) (Entry, bool, error){"small": q.SettleLater, "over": q.Settle} {
		_, removed, err := settle(ids[name], func(e *Entry) error {
			e.Recipients[0].State = Delivered
			return nil
		})
		if err != nil || !removed {
			t.Fatalf("settling %s: removed %v, %v", name, removed, err)
		}
	}
	for _, name := range []string{"at limit", "large"} {
		if err := q.Remove(ids[name]); err != nil {
			t.Fatal(err)
		}
	}
	for name, id := range ids {
		if _, err := q.Open(id); err == nil {
			t.Errorf("%s: the body of a message that left the queue is still there", name)
		}
	}
	if files, _ := os.ReadDir(filepath.Join(dir, spoolDir)); len(files) != 0 {
		t.Errorf("%d spool files left", len(files))
	}
	q.ix.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bucketBodies).Stats().KeyN; n != 0 {
			t.Errorf("%d inline bodies left", n)
		}
		return nil
	})
}

// TestOpensPreviousLayout opens a queue written before inline bodies
// (testdata/README.md): both its messages are spool files, and a runtime
// was killed while sending the small one, with one recipient's 250 in the
// send log and another in the reply window. Today's queue recovers it as
// the old one would have and reads, settles and removes its spool files.
func TestOpensPreviousLayout(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/v1")); err != nil {
		t.Fatal(err)
	}
	logs := &strings.Builder{}
	q, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	const small, large = "18ee9e861014a00000000001", "18ee9e861014a00000000002"
	entries, err := q.Entries()
	if err != nil || len(entries) != 2 || entries[0].ID != small || entries[1].ID != large {
		t.Fatalf("entries: %+v, %v", entries, err)
	}
	if n, _ := q.Stats(); n != 2 {
		t.Errorf("stats count %d, want 2", n)
	}
	for _, r := range entries[0].Recipients {
		switch r.Address {
		case "dave@dest.test":
			if r.State != Delivered {
				t.Errorf("dave@dest.test, whose 250 was in the send log: %+v", r)
			}
		case "bob@dest.test":
			if r.State != Queued || !r.PossibleDuplicate {
				t.Errorf("bob@dest.test, in the reply window: %+v", r)
			}
		}
	}
	if !strings.Contains(logs.String(), "message_id=v1-small@ours.test") {
		t.Errorf("the possible duplicate's Message-ID is not in the log:\n%s", logs)
	}
	for id, want := range map[string]string{small: "Message-ID: <v1-small@ours.test>", large: "Message-ID: <v1-large@ours.test>"} {
		body := readBody(t, q, id)
		if !strings.Contains(body, want) || int64(len(body)) != entryOf(t, q, id).Size {
			t.Errorf("message %s: %d bytes read, want %d with %q", id, len(body), entryOf(t, q, id).Size, want)
		}
	}
	if _, removed, err := q.Settle(small, func(e *Entry) error {
		e.Recipient("bob@dest.test").State = Delivered
		return nil
	}); err != nil || !removed {
		t.Fatalf("settling the small message: removed %v, %v", removed, err)
	}
	if err := q.Remove(large); err != nil {
		t.Fatal(err)
	}
	if files, _ := os.ReadDir(filepath.Join(dir, spoolDir)); len(files) != 0 {
		t.Errorf("%d spool files left after both messages left the queue", len(files))
	}
}

func entryOf(t *testing.T, q *Queue, id string) Entry {
	t.Helper()
	e, err := q.Entry(id)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestRecovery: a spool file without an entry (Enqueue never returned) is
// removed, as is an inline body without one; an entry whose spool file is
// gone is dropped; an inline message killed in the middle of sending
// keeps its body; recipients whose 250 was in the send log are delivered,
// those still in the send window are marked as possible duplicates.
func TestRecovery(t *testing.T) {
	dir := t.TempDir()
	q := openQ(t, dir)
	en, err := q.Enqueue(env("a@x.test", "b@x.test", "c@y.test"), []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	if err := q.BeginSend(en.ID, []string{"a@x.test", "b@x.test"}); err != nil {
		t.Fatal(err)
	}
	if err := q.BeginSend(en.ID, []string{"c@y.test"}); err != nil {
		t.Fatal(err)
	}
	// c@y.test's peer said 250; the process dies before committing it.
	if err := q.Replied(en.ID, []string{"c@y.test"}, []string{"c@y.test"}); err != nil {
		t.Fatal(err)
	}
	big, err := q.Enqueue(env("d@z.test"), make([]byte, InlineMax+1))
	if err != nil {
		t.Fatal(err)
	}
	// "kill -9": the files stay as they are; only the lock goes.
	q.sending.close()
	q.ix.Close(nil)
	orphan := filepath.Join(dir, spoolDir, "0000000000000000000000ff")
	if err := os.WriteFile(orphan, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(q.Path(big.ID)); err != nil {
		t.Fatal(err)
	}
	const stray = "0000000000000000000000fe"
	db, err := bolt.Open(filepath.Join(dir, dbFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketBodies).Put([]byte(stray), []byte("stray")) })
	db.Close()

	q = openQ(t, dir)
	defer q.Close()
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Error("the orphaned spool file was not removed")
	}
	if _, err := q.Open(stray); err == nil {
		t.Error("the inline body without an entry was not removed")
	}
	if _, err := q.Entry(big.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("the entry whose spool file is gone: %v; want it dropped", err)
	}
	if got := readBody(t, q, en.ID); got != "m" {
		t.Errorf("the inline body after the kill: %q", got)
	}
	got, err := q.Entry(en.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got.Recipients {
		if r.Address == "c@y.test" {
			if r.State != Delivered || r.PossibleDuplicate {
				t.Errorf("c@y.test, whose 250 was logged: %+v; want delivered", r)
			}
		} else if !r.PossibleDuplicate || r.State != Queued {
			t.Errorf("%s, in the window: %+v; want queued and marked a possible duplicate", r.Address, r)
		}
	}
	q.Close()
	q = openQ(t, dir)
	got, _ = q.Entry(en.ID)
	if !got.Recipients[0].PossibleDuplicate {
		t.Error("the mark did not survive a reopen")
	}
}
