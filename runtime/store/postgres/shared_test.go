package postgres_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil/pgtest"
	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
	"github.com/mailstack/terraform-provider-mailstack/runtime/store/postgres"
	"github.com/mailstack/terraform-provider-mailstack/runtime/store/storetest"
)

func deliver(t *testing.T, s store.Backend, body []byte, rcpts ...string) {
	t.Helper()
	if err := s.Deliver(context.Background(), rcpts, body); err != nil {
		t.Fatalf("Deliver to %v: %v", rcpts, err)
	}
}

func waitFor(t *testing.T, w *store.Watch, what string) {
	t.Helper()
	select {
	case <-w.C:
	case <-time.After(testutil.HangGuard):
		t.Fatalf("no notification within %v of %s", testutil.HangGuard, what)
	}
}

// TestTwoStores checks what two runtimes on one database rely on, with two
// stores on it: each sees the other's users, mail and flags; a watch on
// one (on a mailbox, or on all of a user's mail) wakes for a change made
// through the other; UIDs from concurrent APPENDs through
// both never collide; the quota is counted once; the POP3 maildrop lock
// holds across them; POP3 deletions and IMAP EXPUNGE agree.
func TestTwoStores(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	a, b := open(t, dsn), open(t, dsn)
	const u = "alice@example.com"
	if err := a.PutUser(u, "pw", 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Authenticate(u, "pw"); err != nil {
		t.Fatalf("the other store does not know the user: %v", err)
	}

	wb, err := b.Watch(u, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	defer wb.Close()
	wa, err := a.Watch(u, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	defer wa.Close()
	deliver(t, a, storetest.Msg("via a"), u)
	waitFor(t, wb, "a delivery through the other store")
	waitFor(t, wa, "a delivery through the same store")
	snap, err := b.Messages(u, "INBOX")
	if err != nil || len(snap.Messages) != 1 {
		t.Fatalf("Messages through b = %+v, %v", snap, err)
	}
	if body, err := b.ReadBlob(snap.Messages[0].Body, snap.Messages[0].Size, nil); err != nil || !bytes.Equal(body, storetest.Msg("via a")) {
		t.Fatalf("body through b = %q, %v", body, err)
	}
	if _, err := b.SetFlags(u, "INBOX", []uint32{1}, store.FlagChange{Op: store.FlagsAdd, Flags: []string{store.FlagFlagged}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, wa, "a flag change through the other store")
	if m, err := a.Lookup(u, "INBOX", []uint32{1}); err != nil || !m[0].HasFlag(store.FlagFlagged) {
		t.Fatalf("a does not see b's flag: %+v, %v", m, err)
	}

	// A user's watch (IMAP NOTIFY) on one store hears of the other's
	// changes to the mailbox list and to mail.
	wu, err := b.WatchUser(u)
	if err != nil {
		t.Fatal(err)
	}
	defer wu.Close()
	if err := a.CreateMailbox(u, "Projects", store.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, wu, "a mailbox created through the other store")
	if err := a.Subscribe(u, "Projects", true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, wu, "a subscription through the other store")
	body := storetest.Msg("to the user's watch")
	if _, _, err := a.Append(u, "Projects", bytes.NewReader(body), int64(len(body)), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, wu, "an APPEND through the other store")

	// Concurrent APPENDs through both stores.
	const each = 40
	var (
		mu   sync.Mutex
		got  []uint32
		errs []error
		wg   sync.WaitGroup
	)
	for _, s := range []*postgres.Store{a, b} {
		for w := range 4 {
			wg.Go(func() {
				for i := range each / 4 {
					body := storetest.Msg(fmt.Sprintf("%p-%d-%d", s, w, i))
					_, uid, err := s.Append(u, "INBOX", bytes.NewReader(body), int64(len(body)), store.AppendOptions{})
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					}
					got = append(got, uid)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
	slices.Sort(got)
	for i, uid := range got {
		if uid != uint32(i+2) {
			t.Fatalf("UIDs from concurrent APPENDs through two stores: %v; want 2..%d, each once", got, 2*each+1)
		}
	}

	// The quota is one number in the database.
	if err := b.PutUser(u, "pw", 0); err != nil {
		t.Fatal(err)
	}
	infoA, _ := a.User(u)
	if err := b.PutUser(u, "pw", infoA.UsedBytes+100); err != nil {
		t.Fatal(err)
	}
	x60 := bytes.Repeat([]byte("x"), 60)
	deliver(t, a, x60, u)
	if err := b.Deliver(context.Background(), []string{u}, x60); !errors.Is(err, store.ErrQuotaExceeded) {
		t.Fatalf("a delivery through b past the quota filled through a: %v", err)
	}
	if infoB, _ := b.User(u); infoB.UsedBytes != infoA.UsedBytes+60 {
		t.Fatalf("usage through b %d, want %d", infoB.UsedBytes, infoA.UsedBytes+60)
	}

	// POP3 against IMAP, across the stores.
	d, err := a.OpenMaildrop(u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.OpenMaildrop(u); !errors.Is(err, store.ErrMaildropLocked) {
		t.Fatalf("OpenMaildrop through b while a holds it: %v", err)
	}
	if err := b.DeleteUser(u); !errors.Is(err, store.ErrMaildropLocked) {
		t.Fatalf("DeleteUser through b while a holds the maildrop: %v", err)
	}
	msgs, _ := d.Messages()
	if err := d.Commit([]string{msgs[0].UID}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if m, _ := b.Lookup(u, "INBOX", []uint32{1}); len(m) != 0 {
		t.Fatal("IMAP through b still sees the message POP3 deleted through a")
	}
	if _, err := b.SetFlags(u, "INBOX", []uint32{2}, store.FlagChange{Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Expunge(u, "INBOX", nil); err != nil {
		t.Fatal(err)
	}
	d2, err := a.OpenMaildrop(u)
	if err != nil {
		t.Fatalf("OpenMaildrop after the other session closed: %v", err)
	}
	defer d2.Close()
	msgs2, _ := d2.Messages()
	if len(msgs2) != len(msgs)-2 || slices.ContainsFunc(msgs2, func(m store.MaildropMessage) bool { return strings.HasSuffix(m.UID, ".2") }) {
		t.Fatalf("POP3 through a after EXPUNGE through b: %d messages %v", len(msgs2), msgs2)
	}
}

// TestMigrateConcurrently opens four stores at once on a new database:
// the schema is migrated once, and all of them work.
func TestMigrateConcurrently(t *testing.T) {
	c := pgtest.Shared(t)
	dsn := c.NewDatabase(t)
	var wg sync.WaitGroup
	stores := make([]*postgres.Store, 4)
	errs := make([]error, 4)
	for i := range stores {
		wg.Go(func() {
			stores[i], errs[i] = postgres.Open(context.Background(), dsn, postgres.Options{Argon2: testArgon2, Logger: slog.New(slog.DiscardHandler)})
		})
	}
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Fatalf("Open %d: %v", i, errs[i])
		}
		defer s.Close()
	}
	if err := stores[3].PutUser("u@example.com", "pw", 0); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var rows, latest int
	if err := conn.QueryRow(context.Background(), "SELECT count(*), max(version) FROM mailstack.schema_migrations").Scan(&rows, &latest); err != nil {
		t.Fatal(err)
	}
	if rows != postgres.SchemaVersion() || latest != postgres.SchemaVersion() {
		t.Fatalf("schema_migrations has %d rows up to %d; want each of %d versions once", rows, latest, postgres.SchemaVersion())
	}
	// A database migrated by a newer build is refused, not misread.
	if _, err := conn.Exec(context.Background(), "INSERT INTO mailstack.schema_migrations (version, name) VALUES (999, 'future')"); err != nil {
		t.Fatal(err)
	}
	if s, err := postgres.Open(context.Background(), dsn, postgres.Options{Argon2: testArgon2, Logger: slog.New(slog.DiscardHandler)}); err == nil || !strings.Contains(err.Error(), "newer than this runtime") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open of a database with schema version 999: %v", err)
	}
}

// TestDatabaseRestart stops the database under a store (the way a crash
// would), checks that operations fail promptly meanwhile, and that
// deliveries, watches and a maildrop opened before work again once it is
// back, with no acknowledged message lost.
func TestDatabaseRestart(t *testing.T) {
	c := pgtest.Start(t, pgtest.Options{})
	s := open(t, c.NewDatabase(t))
	const u = "u@example.com"
	if err := s.PutUser(u, "pw", 0); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		deliver(t, s, storetest.Msg(fmt.Sprint(i)), u)
	}
	w, err := s.Watch(u, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	d, err := s.OpenMaildrop(u)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := s.Deliver(context.Background(), []string{u}, storetest.Msg("down")); err == nil {
		t.Fatal("a delivery succeeded while the database was down")
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("a delivery took %v to fail while the database was down", d)
	}
	for len(w.C) > 0 {
		<-w.C
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "deliveries to work again", func() bool {
		return s.Deliver(context.Background(), []string{u}, storetest.Msg("back")) == nil
	})
	select {
	case <-w.C:
	case <-time.After(testutil.HangGuard):
		t.Fatal("the watch was not woken after the change feed came back")
	}
	msgs, _ := d.Messages()
	if err := d.Commit([]string{msgs[0].UID}); err != nil {
		t.Fatalf("committing a maildrop opened before the restart: %v", err)
	}
	snap, err := s.Messages(u, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, m := range snap.Messages {
		b, err := s.ReadBlob(m.Body, m.Size, nil)
		if err != nil {
			t.Fatal(err)
		}
		subjects = append(subjects, string(b[bytes.Index(b, []byte("Subject: "))+9:bytes.Index(b, []byte("\r\n\r\n"))]))
	}
	if !slices.Equal(subjects, []string{"1", "2", "back"}) {
		t.Fatalf("after the restart INBOX holds %q; want 1 2 back (0 deleted by POP3)", subjects)
	}
}

// TestVerifyFull connects to a cluster that requires TLS with
// sslmode=verify-full: the store works against the right certificate and
// name and refuses a server it cannot verify.
func TestVerifyFull(t *testing.T) {
	c := pgtest.Start(t, pgtest.Options{TLS: testutil.SelfSigned(t, pgtest.Host), RequireTLS: true})
	dsn := c.NewDatabase(t) // verify-full against the cluster's certificate
	s := open(t, dsn)
	if err := s.PutUser("u@example.com", "pw", 0); err != nil {
		t.Fatal(err)
	}
	deliver(t, s, storetest.Msg("over TLS"), "u@example.com")

	other := testutil.SelfSigned(t, pgtest.Host, "other")
	wrongCA := t.TempDir() + "/other.pem"
	if err := os.WriteFile(wrongCA, other.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, dsn, want string }{
		{"untrusted certificate", strings.Replace(dsn, "sslrootcert="+c.CAFile, "sslrootcert="+wrongCA, 1), "certificate"},
		{"name not in the certificate", strings.Replace(dsn, "host="+pgtest.Host, "host=localhost", 1), "certificate"},
		{"no TLS", strings.Replace(dsn, "sslmode=verify-full", "sslmode=disable", 1), "pg_hba.conf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := postgres.Open(context.Background(), tc.dsn, postgres.Options{Argon2: testArgon2, Logger: slog.New(slog.DiscardHandler)})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), c.Password) {
				t.Fatalf("Open: %v; want an error about %q that does not show the password", err, tc.want)
			}
		})
	}
}

// TestDSNErrors checks that a connection string that cannot be parsed is
// refused with a reason and without the password it holds.
func TestDSNErrors(t *testing.T) {
	for _, dsn := range []string{
		"",
		"host=db port=notaport password=s3cret-pw",
		"postgres://mailstack:s3cret-pw@db:notaport/mail",
		"host=db password=s3cret-pw sslmode=verify-full sslrootcert=/nonexistent/ca.pem",
	} {
		_, err := postgres.ParseDSN(dsn)
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("ParseDSN(%q) = %v; want an error without the password", dsn, err)
		}
	}
	if _, err := postgres.ParseDSN("host=db user=u password=p dbname=mail sslmode=verify-full"); err != nil {
		t.Errorf("ParseDSN of a good string: %v", err)
	}
}

// TestLargeBodies stores bodies over one chunk through Deliver and Append
// and reads them back whole and streamed, before and after a copy of one
// is expunged.
func TestLargeBodies(t *testing.T) {
	s := open(t, pgtest.Shared(t).NewDatabase(t))
	const u = "u@example.com"
	if err := s.PutUser(u, "pw", 0); err != nil {
		t.Fatal(err)
	}
	line := []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n")
	bodies := [][]byte{
		append(storetest.Msg("exactly two chunks"), bytes.Repeat(line, (512<<10)/len(line))...)[:512<<10],
		append(storetest.Msg("one byte over"), bytes.Repeat(line, (256<<10)/len(line)+1)...)[:256<<10+1],
		append(storetest.Msg("large"), bytes.Repeat(line, (5<<20)/len(line))...),
	}
	deliver(t, s, bodies[0], u)
	deliver(t, s, bodies[1], u)
	if _, _, err := s.Append(u, "INBOX", bytes.NewReader(bodies[2]), int64(len(bodies[2])), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Copy(u, "INBOX", []uint32{3}, "Archive"); err != nil {
		t.Fatal(err)
	}
	check := func(mailbox string, uid uint32, want []byte) {
		t.Helper()
		m, err := s.Lookup(u, mailbox, []uint32{uid})
		if err != nil || len(m) != 1 || m[0].Size != int64(len(want)) {
			t.Fatalf("Lookup(%s, %d) = %+v, %v", mailbox, uid, m, err)
		}
		got, err := s.ReadBlob(m[0].Body, m[0].Size, nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("ReadBlob of %s %d: %d bytes, %v; want %d", mailbox, uid, len(got), err, len(want))
		}
		rc, err := s.OpenBlob(m[0].Body)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		streamed, err := io.ReadAll(rc)
		if err != nil || !bytes.Equal(streamed, want) {
			t.Fatalf("OpenBlob of %s %d: %d bytes, %v; want %d", mailbox, uid, len(streamed), err, len(want))
		}
	}
	for i, b := range bodies {
		check("INBOX", uint32(i+1), b)
	}
	check("Archive", 1, bodies[2])

	// ReadBlobs (FETCH's prefetch) reads bodies of one row and of several
	// in one call, and leaves out what is not a body.
	ms, err := s.Lookup(u, "INBOX", []uint32{1, 2, 3})
	if err != nil || len(ms) != 3 {
		t.Fatalf("Lookup = %+v, %v", ms, err)
	}
	refs := []store.BlobRef{ms[0].Body, ms[1].Body, ms[2].Body, "999999", "not a ref"}
	got := map[store.BlobRef][]byte{}
	err = s.ReadBlobs(refs, func(ref store.BlobRef, body []byte) error {
		got[ref] = bytes.Clone(body)
		return nil
	})
	if err != nil || len(got) != 3 {
		t.Fatalf("ReadBlobs gave %d bodies, %v; want 3", len(got), err)
	}
	for i, m := range ms {
		if !bytes.Equal(got[m.Body], bodies[i]) {
			t.Fatalf("ReadBlobs: body of UID %d has %d bytes, want %d", m.UID, len(got[m.Body]), len(bodies[i]))
		}
	}
	if _, err := s.SetFlags(u, "INBOX", []uint32{3}, store.FlagChange{Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expunge(u, "INBOX", nil); err != nil {
		t.Fatal(err)
	}
	check("Archive", 1, bodies[2])
}

// TestLargeBodyBoundedMemory appends a 48 MiB message from a reader that
// makes it as it goes and streams it back with OpenBlob, sampling the
// heap all along: neither direction ever holds the message whole, so the
// heap never grows by more than a few chunks.
func TestLargeBodyBoundedMemory(t *testing.T) {
	s := open(t, pgtest.Shared(t).NewDatabase(t))
	const u = "u@example.com"
	if err := s.PutUser(u, "pw", 0); err != nil {
		t.Fatal(err)
	}
	const size = 48 << 20
	const bound = 16 << 20 // a third of the message
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	stop := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var peakAlloc uint64
		var ms runtime.MemStats
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				peak <- peakAlloc
				return
			case <-tick.C:
				runtime.ReadMemStats(&ms)
				peakAlloc = max(peakAlloc, ms.HeapAlloc)
			}
		}
	}()

	want := sha256.New()
	src := io.TeeReader(io.LimitReader(&lines{}, size), want)
	_, uid, err := s.Append(u, "INBOX", src, size, store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Lookup(u, "INBOX", []uint32{uid})
	if err != nil || len(m) != 1 || m[0].Size != size {
		t.Fatalf("Lookup = %+v, %v", m, err)
	}
	rc, err := s.OpenBlob(m[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err := io.Copy(got, rc)
	rc.Close()
	close(stop)
	grew := int64(<-peak) - int64(base.HeapAlloc)
	if err != nil || n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("streamed back %d bytes (%v), digest equal %v; want %d", n, err, bytes.Equal(got.Sum(nil), want.Sum(nil)), size)
	}
	t.Logf("a %d MiB message written and read back with the heap %.1f MiB above where it started at most", size>>20, float64(grew)/(1<<20))
	if grew > bound {
		t.Fatalf("the heap grew by %.1f MiB for a %d MiB message: it was held whole", float64(grew)/(1<<20), size>>20)
	}
}

// lines is an endless message: a header, then numbered lines.
type lines struct {
	n   int
	buf []byte
}

func (l *lines) Read(p []byte) (int, error) {
	if len(l.buf) == 0 {
		if l.n == 0 {
			l.buf = []byte("From: a@example.org\r\nTo: u@example.com\r\nSubject: large\r\n\r\n")
		} else {
			l.buf = fmt.Appendf(l.buf[:0], "%08d 0123456789abcdef0123456789abcdef0123456789abcdef\r\n", l.n)
		}
		l.n++
	}
	n := copy(p, l.buf)
	l.buf = l.buf[n:]
	return n, nil
}
