package postgres

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil/pgtest"
	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
)

func openInternal(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, Options{Argon2: store.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func count(t *testing.T, s *Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestBlobsFollowMessages checks the reference counts of bodies: a copy
// shares its body, and a body goes (with its chunks) when the last message
// using it goes, by expunge, mailbox deletion or user deletion.
func TestBlobsFollowMessages(t *testing.T) {
	s := openInternal(t, pgtest.Shared(t).NewDatabase(t))
	const u = "u@example.com"
	if err := s.PutUser(u, "pw", 0); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 3*chunkSize)
	for _, body := range [][]byte{[]byte("small\r\n"), big} {
		if err := s.Deliver(context.Background(), []string{u}, body); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, s, "SELECT count(*) FROM blob_chunks"); n != 2 {
		t.Fatalf("%d chunk rows for a body of three chunks, want 2 (the first is in blobs)", n)
	}
	if _, err := s.Copy(u, "INBOX", []uint32{1, 2}, "Archive"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "SELECT count(*) FROM blobs WHERE refs = 2"); n != 2 {
		t.Fatalf("%d bodies used twice after a copy, want 2", n)
	}
	if _, err := s.SetFlags(u, "INBOX", []uint32{1, 2}, store.FlagChange{Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expunge(u, "INBOX", nil); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "SELECT count(*) FROM blobs WHERE refs = 1"); n != 2 {
		t.Fatalf("%d bodies used once after expunging the originals, want 2", n)
	}
	if err := s.DeleteMailbox(u, "Archive"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "SELECT (SELECT count(*) FROM blobs) + (SELECT count(*) FROM blob_chunks)"); n != 0 {
		t.Fatalf("%d body rows left after the last copies went with their mailbox", n)
	}
	if err := s.Deliver(context.Background(), []string{u}, big); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(u); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "SELECT (SELECT count(*) FROM blobs) + (SELECT count(*) FROM blob_chunks) + (SELECT count(*) FROM mailboxes)"); n != 0 {
		t.Fatalf("%d rows left after deleting the user", n)
	}
}

// TestSweep checks that a body left without a message for an hour (its
// writer died) is removed, and a recent one (an APPEND in progress) is not.
func TestSweep(t *testing.T) {
	s := openInternal(t, pgtest.Shared(t).NewDatabase(t))
	ctx := context.Background()
	if _, err := s.pool.Exec(ctx, `INSERT INTO blobs (size, data, created) VALUES (1, 'a', now() - interval '2 hours'), (1, 'b', now())`); err != nil {
		t.Fatal(err)
	}
	if n, err := s.sweepOnce(); err != nil || n != 1 {
		t.Fatalf("sweep removed %d, %v; want the old one", n, err)
	}
	var left string
	if err := s.pool.QueryRow(ctx, "SELECT convert_from(data, 'UTF8') FROM blobs").Scan(&left); err != nil || left != "b" {
		t.Fatalf("left %q, %v", left, err)
	}
}

// TestSynchronousCommitForced opens a store on a database configured with
// synchronous_commit = off: its connections commit synchronously anyway.
func TestSynchronousCommitForced(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	var db string
	conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&db)
	_, err = conn.Exec(context.Background(), "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" SET synchronous_commit = off")
	conn.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := openInternal(t, dsn)
	var sc string
	if err := s.pool.QueryRow(context.Background(), "SHOW synchronous_commit").Scan(&sc); err != nil || sc != "on" {
		t.Fatalf("synchronous_commit on the store's connections = %q, %v; want on", sc, err)
	}
}

// TestLostNotification changes a watched mailbox behind every store's back
// (no NOTIFY, as when a runtime dies between its commit and its
// announcement): the watch wakes anyway, from the poll of MODSEQs; and
// when the mailbox goes, too.
func TestLostNotification(t *testing.T) {
	s := openInternal(t, pgtest.Shared(t).NewDatabase(t))
	const u = "u@example.com"
	if err := s.PutUser(u, "pw", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateMailbox(u, "Lists", store.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := s.Watch(u, "Lists")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// The poll learns a mailbox's MODSEQ in its first round after the
	// watch and wakes the watch only when a later round sees it move: the
	// change must come after that first round, however late it runs. The
	// round in progress now may have begun before the watch; the one after
	// it began after.
	after := s.polls.Load() + 2
	testutil.Eventually(t, "a poll of MODSEQs begun after the watch", func() bool { return s.polls.Load() >= after })
	for _, change := range []string{
		"UPDATE mailboxes SET modseq = modseq + 1 WHERE name = 'Lists'",
		"DELETE FROM mailboxes WHERE name = 'Lists'",
	} {
		if _, err := s.pool.Exec(context.Background(), change); err != nil {
			t.Fatal(err)
		}
		select {
		case <-w.C:
		case <-time.After(testutil.HangGuard):
			t.Fatalf("no notification within %v of %q made without NOTIFY", testutil.HangGuard, change)
		}
	}
}
