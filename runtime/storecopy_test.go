package runtime_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil/pgtest"
	"github.com/mailstack/terraform-provider-mailstack/runtime"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
	"github.com/mailstack/terraform-provider-mailstack/runtime/store/postgres"
)

var copyArgon2 = store.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}

// fillStore gives an embedded store three users, one of them with a few
// thousand messages in nested and special-use mailboxes: random system
// flags and keywords, expunged UIDs, a message of several chunks, APPEND
// dates, claimed \Recent, subscriptions (one to a mailbox that does not
// exist), a quota.
func fillStore(t *testing.T, s *store.Store) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.PutUser("alice@example.com", "alice-pw", 1<<30))
	must(s.PutUser("bob@example.com", "bob-pw", 0))
	must(s.PutUser("carol@example.com", "carol-pw", 0))
	// A mailbox made and deleted moves the UIDVALIDITY counter on.
	must(s.CreateMailbox("alice@example.com", "Gone", store.CreateOptions{}))
	must(s.DeleteMailbox("alice@example.com", "Gone"))
	must(s.CreateMailbox("alice@example.com", "Lists/Go/Announce", store.CreateOptions{}))
	must(s.Subscribe("alice@example.com", "Lists/Go", true))
	must(s.Subscribe("alice@example.com", "Not/There", true))

	const n = 3000
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				body := fmt.Sprintf("From: list@example.org\r\nTo: alice@example.com\r\nSubject: message %d\r\n\r\n%s\r\n", i, strings.Repeat("x", rand.IntN(4000)))
				if err := s.Deliver(ctx, []string{"alice@example.com"}, []byte(body)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if _, _, err := s.ClaimRecent("alice@example.com", "INBOX"); err != nil {
		t.Fatal(err)
	}
	flags := [][]string{{store.FlagSeen}, {store.FlagSeen, store.FlagAnswered}, {store.FlagFlagged, "$Label1"},
		{store.FlagDraft, "Work", "$Junk"}, {store.FlagDeleted}, {}}
	groups := make([][]uint32, len(flags))
	for uid := uint32(1); uid <= n; uid++ {
		i := rand.IntN(len(flags))
		groups[i] = append(groups[i], uid)
	}
	for i, uids := range groups {
		if _, err := s.SetFlags("alice@example.com", "INBOX", uids, store.FlagChange{Op: store.FlagsAdd, Flags: flags[i]}); err != nil {
			t.Fatal(err)
		}
	}
	// Expunge a few, keeping the rest of the \Deleted ones.
	if _, err := s.Expunge("alice@example.com", "INBOX", []uint32{7, 8, 9, 100, n}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Move("alice@example.com", "INBOX", []uint32{10, 11, 12}, "Archive"); err != nil {
		t.Fatal(err)
	}
	big := append([]byte("Subject: big\r\n\r\n"), bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n"), 12000)...)
	date := time.Date(2019, 4, 1, 9, 30, 15, 0, time.UTC)
	for _, mb := range []string{"Lists/Go/Announce", "Sent"} {
		if _, _, err := s.Append("alice@example.com", mb, bytes.NewReader(big), int64(len(big)),
			store.AppendOptions{Flags: []string{store.FlagSeen, "$Forwarded"}, Date: date}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if err := s.Deliver(ctx, []string{"bob@example.com"}, []byte(fmt.Sprintf("Subject: bob %d\r\n\r\nhi\r\n", i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SetFlags("bob@example.com", "INBOX", []uint32{2}, store.FlagChange{Op: store.FlagsAdd, Flags: []string{store.FlagSeen}}); err != nil {
		t.Fatal(err)
	}
}

// account is everything a client can see of a user, bodies as hashes.
type account struct {
	User          store.UserInfo
	Subscriptions []string
	Mailboxes     []store.MailboxInfo
	Status        map[string]store.MailboxStatus
	Snapshots     map[string]*store.Snapshot
	Bodies        map[string][][32]byte
}

func readAccount(t *testing.T, s store.Backend, addr string) account {
	t.Helper()
	a := account{Status: map[string]store.MailboxStatus{}, Snapshots: map[string]*store.Snapshot{}, Bodies: map[string][][32]byte{}}
	var err error
	if a.User, err = s.User(addr); err != nil {
		t.Fatal(err)
	}
	if a.Subscriptions, err = s.Subscriptions(addr); err != nil {
		t.Fatal(err)
	}
	if a.Mailboxes, err = s.Mailboxes(addr); err != nil {
		t.Fatal(err)
	}
	for _, mb := range a.Mailboxes {
		st, err := s.Status(addr, mb.Name)
		if err != nil {
			t.Fatal(err)
		}
		st.Subscribed = false // the embedded store's Status leaves it out; Mailboxes says it
		a.Status[mb.Name] = st
		snap, err := s.Messages(addr, mb.Name)
		if err != nil {
			t.Fatal(err)
		}
		for i := range snap.Messages {
			m := &snap.Messages[i]
			b, err := s.ReadBlob(m.Body, m.Size, nil)
			if err != nil {
				t.Fatal(err)
			}
			a.Bodies[mb.Name] = append(a.Bodies[mb.Name], sha256.Sum256(b))
			m.Body = ""                                      // where it is stored differs
			m.Date = m.Date.Truncate(time.Microsecond).UTC() // PostgreSQL keeps microseconds
		}
		a.Snapshots[mb.Name] = snap
	}
	return a
}

// TestCopyStore fills an embedded store with a few thousand messages,
// copies it into PostgreSQL as `runtime store copy` does, and finds every
// user, mailbox, UID, flag, MODSEQ, date and body there as it was, with
// the same UIDVALIDITYs, passwords that still work and the quota counted
// the same. A second copy is refused before it writes anything, and so is
// a copy while the runtime runs.
func TestCopyStore(t *testing.T) {
	dir := t.TempDir()
	src, err := store.Open(filepath.Join(dir, runtime.StoreDir), store.Options{Argon2: copyArgon2, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	fillStore(t, src)
	users := []string{"alice@example.com", "bob@example.com", "carol@example.com"}
	want := map[string]account{}
	for _, u := range users {
		want[u] = readAccount(t, src, u)
	}
	src.Close()
	if err := statedir.Local(dir).Create(context.Background(), &config.Document{Server: testServer}); err != nil {
		t.Fatal(err)
	}

	dsn := pgtest.Shared(t).NewDatabase(t)
	log := slog.New(slog.DiscardHandler)
	began := time.Now()
	stats, err := runtime.CopyStore(context.Background(), dir, dsn, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("copied %d users, %d messages, %d bytes in %v", stats.Users, stats.Messages, stats.Bytes, time.Since(began).Round(time.Millisecond))
	if stats.Users != 3 || stats.Messages < 2990 {
		t.Fatalf("CopyStore = %+v", stats)
	}

	dst, err := postgres.Open(context.Background(), dsn, postgres.Options{Argon2: copyArgon2, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	for _, u := range users {
		got := readAccount(t, dst, u)
		w := want[u]
		for _, part := range []struct {
			name      string
			got, want any
		}{
			{"user", got.User, w.User},
			{"subscriptions", got.Subscriptions, w.Subscriptions},
			{"mailboxes", got.Mailboxes, w.Mailboxes},
			{"status", got.Status, w.Status},
			{"bodies", got.Bodies, w.Bodies},
		} {
			if !reflect.DeepEqual(part.got, part.want) {
				t.Fatalf("%s: %s differ after the copy:\n got %+v\nwant %+v", u, part.name, part.got, part.want)
			}
		}
		for name, snap := range w.Snapshots {
			g := got.Snapshots[name]
			if g.UIDValidity != snap.UIDValidity || g.UIDNext != snap.UIDNext || g.ModSeq != snap.ModSeq || g.RecentFrom != snap.RecentFrom || len(g.Messages) != len(snap.Messages) {
				t.Fatalf("%s %s: %+v after the copy, %+v before", u, name, g.MailboxInfo, snap.MailboxInfo)
			}
			for i, m := range snap.Messages {
				if !reflect.DeepEqual(g.Messages[i], m) {
					t.Fatalf("%s %s message %d: %+v after the copy, %+v before", u, name, m.UID, g.Messages[i], m)
				}
			}
		}
		if err := dst.Authenticate(u, strings.TrimSuffix(u, "@example.com")+"-pw"); err != nil {
			t.Fatalf("%s cannot log in with their password after the copy: %v", u, err)
		}
	}
	// The copy goes on as the original would: the next UID, a higher MODSEQ.
	if err := dst.Deliver(context.Background(), []string{"alice@example.com"}, []byte("Subject: after\r\n\r\n.\r\n")); err != nil {
		t.Fatal(err)
	}
	inbox := want["alice@example.com"].Snapshots["INBOX"]
	if st, _ := dst.Status("alice@example.com", "INBOX"); st.UIDNext != inbox.UIDNext+1 || st.ModSeq <= inbox.ModSeq {
		t.Fatalf("after a delivery INBOX has UIDNEXT %d, MODSEQ %d; before the copy %d, %d", st.UIDNext, st.ModSeq, inbox.UIDNext, inbox.ModSeq)
	}
	if err := dst.CreateMailbox("alice@example.com", "New", store.CreateOptions{}); err != nil {
		t.Fatalf("creating a mailbox after the copy (its UIDVALIDITY must not clash with a copied one): %v", err)
	}

	if _, err := runtime.CopyStore(context.Background(), dir, dsn, log); err == nil || !strings.Contains(err.Error(), "already has 3 of the store's users") {
		t.Fatalf("a second copy: %v; want a refusal naming the users", err)
	}
	if st, _ := dst.Status("alice@example.com", "INBOX"); st.Messages != uint32(len(inbox.Messages))+1 {
		t.Fatalf("the refused copy changed INBOX: %d messages", st.Messages)
	}
	h := start(t, dir, time.Second)
	defer h.stop()
	if _, err := runtime.CopyStore(context.Background(), dir, pgtest.Shared(t).NewDatabase(t), log); err == nil || !strings.Contains(err.Error(), "stop its runtime") {
		t.Fatalf("a copy while the runtime runs: %v", err)
	}
}
