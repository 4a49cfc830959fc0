package queue

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func openQ(t *testing.T, dir string) *Queue {
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
	f, err := q.Open(ids[2])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 64)
	n, _ := f.Read(b)
	if string(b[:n]) != "Subject: hi\r\n\r\nbody\r\n" {
		t.Errorf("spool file holds %q", b[:n])
	}
	if _, err := os.Stat(q.Path(ids[1])); !errors.Is(err, os.ErrNotExist) {
		t.Error("the removed message's spool file is still there")
	}
}

// TestRecovery: a spool file without an entry (Enqueue never returned) is
// removed; recipients whose 250 was in the send log are delivered, those
// still in the send window are marked as possible duplicates.
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
	// "kill -9": the files stay as they are; only the lock goes.
	q.sending.close()
	q.commit.Close()
	q.db.Close()
	orphan := filepath.Join(dir, spoolDir, "0000000000000000000000ff")
	if err := os.WriteFile(orphan, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}

	q = openQ(t, dir)
	defer q.Close()
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Error("the orphaned spool file was not removed")
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
