// Package storetest is the conformance table of store.Backend: every
// implementation of the store (the embedded Maildir + bbolt one,
// PostgreSQL) runs Run from its own tests and must pass all of it. The
// cases check the contracts the protocols rely on, through the interface
// alone: users and authentication, all-or-nothing delivery and quotas,
// mailbox structure, UID and MODSEQ allocation, flags, copy, move and
// expunge, change notification, message bodies and POP3 maildrops.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
)

// Factory opens a new, empty store for one test and closes it in
// t.Cleanup. Implementations should hash passwords cheaply in tests.
type Factory func(t *testing.T) store.Backend

// Run runs every conformance case, each on a store of its own.
func Run(t *testing.T, open Factory) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s store.Backend)
	}{
		{"Users", testUsers},
		{"Deliver", testDeliver},
		{"Quota", testQuota},
		{"Mailboxes", testMailboxes},
		{"MailboxArgs", testMailboxArgs},
		{"RenameInbox", testRenameInbox},
		{"UIDs", testUIDs},
		{"ConcurrentDeliver", testConcurrentDeliver},
		{"Flags", testFlags},
		{"CopyMoveExpunge", testCopyMoveExpunge},
		{"Append", testAppend},
		{"Watch", testWatch},
		{"WatchUser", testWatchUser},
		{"ModSeq", testModSeq},
		{"Vanished", testVanished},
		{"Recent", testRecent},
		{"Subscriptions", testSubscriptions},
		{"Blobs", testBlobs},
		{"Maildrop", testMaildrop},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// Msg returns a small RFC 5322 message with CRLF line endings.
func Msg(subject string) []byte {
	return []byte("From: a@example.org\r\nTo: b@example.com\r\nSubject: " + subject + "\r\n\r\nHello " + subject + "\r\n")
}

func putUser(t *testing.T, s store.Backend, addr string, quota int64) {
	t.Helper()
	if err := s.PutUser(addr, "secret-"+addr, quota); err != nil {
		t.Fatalf("PutUser(%s): %v", addr, err)
	}
}

func deliver(t *testing.T, s store.Backend, body []byte, rcpts ...string) {
	t.Helper()
	if err := s.Deliver(context.Background(), rcpts, body); err != nil {
		t.Fatalf("Deliver to %v: %v", rcpts, err)
	}
}

func snapshot(t *testing.T, s store.Backend, addr, mailbox string) *store.Snapshot {
	t.Helper()
	snap, err := s.Messages(addr, mailbox)
	if err != nil {
		t.Fatalf("Messages(%s, %s): %v", addr, mailbox, err)
	}
	return snap
}

func uids(t *testing.T, s store.Backend, addr, mailbox string) []uint32 {
	t.Helper()
	var out []uint32
	for _, m := range snapshot(t, s, addr, mailbox).Messages {
		out = append(out, m.UID)
	}
	return out
}

func content(t *testing.T, s store.Backend, m store.MessageInfo) []byte {
	t.Helper()
	b, err := s.ReadBlob(m.Body, m.Size, nil)
	if err != nil {
		t.Fatalf("ReadBlob of message %d: %v", m.UID, err)
	}
	return b
}

func status(t *testing.T, s store.Backend, addr, mailbox string) store.MailboxStatus {
	t.Helper()
	st, err := s.Status(addr, mailbox)
	if err != nil {
		t.Fatalf("Status(%s, %s): %v", addr, mailbox, err)
	}
	return st
}

func names(t *testing.T, s store.Backend, addr string) []string {
	t.Helper()
	boxes, err := s.Mailboxes(addr)
	if err != nil {
		t.Fatalf("Mailboxes(%s): %v", addr, err)
	}
	var out []string
	for _, b := range boxes {
		out = append(out, b.Name)
	}
	return out
}

func testUsers(t *testing.T, s store.Backend) {
	if err := s.PutUser("Alice@Example.com", "pw1", 1000); err != nil {
		t.Fatal(err)
	}
	if err := s.Authenticate("Alice@EXAMPLE.com", "pw1"); err != nil {
		t.Fatalf("Authenticate with the domain in another case: %v", err)
	}
	for _, tc := range []struct{ name, addr, pw string }{
		{"wrong password", "Alice@example.com", "nope"},
		{"empty password", "Alice@example.com", ""},
		{"unknown user", "mallory@example.com", "pw1"},
		{"local part is case-sensitive", "alice@example.com", "pw1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Authenticate(tc.addr, tc.pw); !errors.Is(err, store.ErrAuthFailed) {
				t.Fatalf("Authenticate = %v, want ErrAuthFailed", err)
			}
		})
	}
	if err := s.Authenticate("nobody", "pw1"); !errors.Is(err, store.ErrAuthFailed) && !errors.Is(err, store.ErrInvalidAddress) {
		t.Fatalf("Authenticate(invalid address) = %v", err)
	}
	if err := s.PutUser("bad address", "pw", 0); !errors.Is(err, store.ErrInvalidAddress) {
		t.Fatalf("PutUser(invalid address) = %v, want ErrInvalidAddress", err)
	}
	if _, err := s.Mailboxes("alice@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Mailboxes of a user that differs in the local part's case: %v, want ErrNotFound", err)
	}
	// Updating keeps the mail and changes the password and quota.
	deliver(t, s, Msg("kept"), "Alice@example.com")
	if err := s.PutUser("Alice@example.com", "pw2", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Authenticate("Alice@example.com", "pw1"); !errors.Is(err, store.ErrAuthFailed) {
		t.Fatalf("old password still works: %v", err)
	}
	if err := s.Authenticate("Alice@example.com", "pw2"); err != nil {
		t.Fatalf("new password: %v", err)
	}
	info, err := s.User("alice@EXAMPLE.COM")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("User(other local part case) = %+v, %v", info, err)
	}
	info, err = s.User("Alice@example.com")
	if err != nil || info.Address != "Alice@example.com" || info.QuotaBytes != 0 || info.UsedBytes != int64(len(Msg("kept"))) {
		t.Fatalf("User = %+v, %v", info, err)
	}
	putUser(t, s, "bob@example.com", 0)
	users, err := s.Users()
	if err != nil || len(users) != 2 || users[0].Address != "Alice@example.com" || users[1].Address != "bob@example.com" {
		t.Fatalf("Users = %+v, %v", users, err)
	}
	if err := s.DeleteUser("Alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.User("Alice@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("User after delete: %v", err)
	}
	if _, err := s.Mailboxes("Alice@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Mailboxes after delete: %v", err)
	}
	if err := s.DeleteUser("Alice@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second DeleteUser: %v", err)
	}
	// A user created again starts empty.
	putUser(t, s, "Alice@example.com", 0)
	if got := uids(t, s, "Alice@example.com", "INBOX"); len(got) != 0 {
		t.Fatalf("recreated user inherited mail: %v", got)
	}
}

func testDeliver(t *testing.T, s store.Backend) {
	putUser(t, s, "a@example.com", 0)
	putUser(t, s, "b@example.com", 0)
	body := Msg("one")
	deliver(t, s, body, "a@example.com", "b@EXAMPLE.com", "a@example.com")
	for _, u := range []string{"a@example.com", "b@example.com"} {
		snap := snapshot(t, s, u, "inbox")
		if len(snap.Messages) != 1 {
			t.Fatalf("%s has %d messages, want 1 (duplicate recipients collapse)", u, len(snap.Messages))
		}
		m := snap.Messages[0]
		if m.UID != 1 || m.Size != int64(len(body)) || len(m.Flags) != 0 || !bytes.Equal(content(t, s, m), body) {
			t.Fatalf("%s: got %+v", u, m)
		}
		if time.Since(m.Date) > time.Minute || time.Until(m.Date) > time.Minute {
			t.Fatalf("%s: internal date %v is not now", u, m.Date)
		}
	}
	if err := s.Deliver(context.Background(), []string{"a@example.com", "nobody@example.com"}, Msg("two")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delivery to an unknown user: %v", err)
	}
	if got := uids(t, s, "a@example.com", "INBOX"); len(got) != 1 {
		t.Fatalf("partial delivery happened: %v", got)
	}
	if err := s.Deliver(context.Background(), nil, body); err == nil {
		t.Fatal("delivery to no recipients succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Deliver(ctx, []string{"a@example.com"}, body); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled delivery: %v", err)
	}
}

func testQuota(t *testing.T, s store.Backend) {
	const u = "small@example.com"
	putUser(t, s, u, 100)
	putUser(t, s, "big@example.com", 0)
	x60 := bytes.Repeat([]byte("x"), 60)
	deliver(t, s, x60, u)
	if err := s.Deliver(context.Background(), []string{"big@example.com", u}, x60); !errors.Is(err, store.ErrQuotaExceeded) {
		t.Fatalf("over quota: %v", err)
	}
	if got := uids(t, s, "big@example.com", "INBOX"); len(got) != 0 {
		t.Fatal("delivery over one recipient's quota reached another")
	}
	if _, _, err := s.Append(u, "INBOX", bytes.NewReader(x60), 60, store.AppendOptions{}); !errors.Is(err, store.ErrQuotaExceeded) {
		t.Fatalf("APPEND over quota: %v", err)
	}
	if info, _ := s.User(u); info.UsedBytes != 60 || info.QuotaBytes != 100 {
		t.Fatalf("User = %+v, want 60 of 100 bytes used", info)
	}
	// Expunging frees quota.
	if _, err := s.SetFlags(u, "INBOX", []uint32{1}, store.FlagChange{Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expunge(u, "INBOX", nil); err != nil {
		t.Fatal(err)
	}
	if info, _ := s.User(u); info.UsedBytes != 0 {
		t.Fatalf("usage after expunge = %d", info.UsedBytes)
	}
	deliver(t, s, x60, u)
	// Raising the quota lets mail in again.
	putUser(t, s, u, 1000)
	deliver(t, s, x60, u)
}

func testMailboxes(t *testing.T, s store.Backend) {
	const u = "u@example.com"
	putUser(t, s, u, 0)
	boxes, err := s.Mailboxes(u)
	if err != nil {
		t.Fatal(err)
	}
	var uses []string
	for _, b := range boxes {
		if b.SpecialUse != "" {
			uses = append(uses, b.Name+" "+b.SpecialUse)
		}
	}
	if want := []string{"Archive \\Archive", "Drafts \\Drafts", "Junk \\Junk", "Sent \\Sent", "Trash \\Trash"}; len(boxes) != 6 || !slices.Equal(uses, want) {
		t.Fatalf("a new user's mailboxes: %+v; want INBOX and %v (RFC 6154)", boxes, want)
	}
	for _, mb := range store.DefaultMailboxes {
		if err := s.DeleteMailbox(u, mb.Name); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateMailbox(u, "Outbox", store.CreateOptions{SpecialUse: `\All`}); !errors.Is(err, store.ErrSpecialUse) {
		t.Fatalf("CREATE with an unsupported special use: %v, want ErrSpecialUse", err)
	}
	if err := s.CreateMailbox(u, "Papierkorb", store.CreateOptions{SpecialUse: `\Trash`}); err != nil {
		t.Fatal(err)
	}
	if err := s.RenameMailbox(u, "Papierkorb", "Bin"); err != nil {
		t.Fatal(err)
	}
	if boxes, _ := s.Mailboxes(u); len(boxes) != 2 || boxes[0].Name != "Bin" || boxes[0].SpecialUse != `\Trash` {
		t.Fatalf("after CREATE (USE (\\Trash)) and RENAME: %+v", boxes)
	}
	if err := s.DeleteMailbox(u, "Bin"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateMailbox(u, "Archive/2024", store.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateMailbox(u, "Archive", store.CreateOptions{}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("the parent was not created with its child: %v", err)
	}
	if err := s.CreateMailbox(u, "inbox", store.CreateOptions{}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("CREATE inbox: %v", err)
	}
	if err := s.CreateMailbox(u, "bad//name", store.CreateOptions{}); !errors.Is(err, store.ErrInvalidMailbox) {
		t.Fatalf("CREATE with an empty level: %v", err)
	}
	if err := s.CreateMailbox("nobody@example.com", "X", store.CreateOptions{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CREATE for an unknown user: %v", err)
	}
	if got := names(t, s, u); !slices.Equal(got, []string{"Archive", "Archive/2024", "INBOX"}) {
		t.Fatalf("Mailboxes = %v", got)
	}
	if err := s.DeleteMailbox(u, "Archive"); !errors.Is(err, store.ErrHasChildren) {
		t.Fatalf("DELETE with children: %v", err)
	}
	if err := s.DeleteMailbox(u, "inbox"); !errors.Is(err, store.ErrInvalidMailbox) {
		t.Fatalf("DELETE INBOX: %v", err)
	}
	if err := s.DeleteMailbox(u, "Nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DELETE of a missing mailbox: %v", err)
	}
	old := Msg("old")
	if _, _, err := s.Append(u, "Archive/2024", bytes.NewReader(old), int64(len(old)), store.AppendOptions{Flags: []string{store.FlagSeen}}); err != nil {
		t.Fatal(err)
	}
	before := status(t, s, u, "Archive/2024")
	if err := s.RenameMailbox(u, "Archive", "Old/Stuff"); err != nil {
		t.Fatal(err)
	}
	if got := names(t, s, u); !slices.Equal(got, []string{"INBOX", "Old", "Old/Stuff", "Old/Stuff/2024"}) {
		t.Fatalf("after RENAME: %v", got)
	}
	after := status(t, s, u, "Old/Stuff/2024")
	if after.UIDValidity != before.UIDValidity || after.UIDNext != before.UIDNext || after.Messages != 1 || after.Unseen != 0 || after.Size != int64(len(old)) {
		t.Fatalf("renamed mailbox status %+v, before %+v", after, before)
	}
	if err := s.RenameMailbox(u, "Old", "Old/Inner"); !errors.Is(err, store.ErrInvalidMailbox) {
		t.Fatalf("RENAME into its own child: %v", err)
	}
	if err := s.RenameMailbox(u, "Old/Stuff", "Old"); !errors.Is(err, store.ErrExists) {
		t.Fatalf("RENAME onto an existing mailbox: %v", err)
	}
	if err := s.RenameMailbox(u, "Nope", "Other"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RENAME of a missing mailbox: %v", err)
	}

	if err := s.Subscribe(u, "Old/Stuff", true); err != nil {
		t.Fatal(err)
	}
	boxes, _ = s.Mailboxes(u)
	for _, b := range boxes {
		if want := b.Name == "INBOX" || b.Name == "Old/Stuff"; b.Subscribed != want {
			t.Fatalf("%s subscribed = %v, want %v", b.Name, b.Subscribed, want)
		}
	}
	if err := s.Subscribe(u, "Old/Stuff", false); err != nil {
		t.Fatal(err)
	}

	// A mailbox deleted and created again gets a new UIDVALIDITY.
	if err := s.DeleteMailbox(u, "Old/Stuff/2024"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateMailbox(u, "Old/Stuff/2024", store.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if again := status(t, s, u, "Old/Stuff/2024"); again.UIDValidity == before.UIDValidity || again.Messages != 0 || again.UIDNext != 1 {
		t.Fatalf("recreated mailbox %+v; old UIDVALIDITY %d (RFC 9051 2.3.1.1)", again, before.UIDValidity)
	}
	if info, _ := s.User(u); info.UsedBytes != 0 {
		t.Fatalf("usage after deleting the only message's mailbox = %d", info.UsedBytes)
	}
}

// testMailboxArgs: the operations that give a mailbox a name refuse a bad
// address with ErrInvalidAddress before they look at the name, refuse a bad
// name with ErrInvalidMailbox, and change nothing.
func testMailboxArgs(t *testing.T, s store.Backend) {
	const u = "user@example.com"
	putUser(t, s, u, 0)
	before := names(t, s, u)
	subsBefore, err := s.Subscriptions(u)
	if err != nil {
		t.Fatal(err)
	}
	ops := []struct {
		name string
		fn   func(address, mailbox string) error
	}{
		{"CreateMailbox", func(a, m string) error { return s.CreateMailbox(a, m, store.CreateOptions{}) }},
		{"RenameMailbox", func(a, m string) error { return s.RenameMailbox(a, "INBOX", m) }},
		{"Subscribe", func(a, m string) error { return s.Subscribe(a, m, true) }},
	}
	for _, op := range ops {
		if err := op.fn("no address", "bad//name"); !errors.Is(err, store.ErrInvalidAddress) {
			t.Errorf("%s with a bad address and a bad name: %v, want ErrInvalidAddress", op.name, err)
		}
		for _, bad := range []string{"", "/", "bad//name", "a/*", "a/%"} {
			if err := op.fn(u, bad); !errors.Is(err, store.ErrInvalidMailbox) {
				t.Errorf("%s(%q): %v, want ErrInvalidMailbox", op.name, bad, err)
			}
		}
	}
	if got := names(t, s, u); !slices.Equal(got, before) {
		t.Errorf("bad arguments changed the mailboxes: %v, before %v", got, before)
	}
	if subs, err := s.Subscriptions(u); err != nil || !slices.Equal(subs, subsBefore) {
		t.Errorf("bad arguments changed the subscriptions: %v (%v), before %v", subs, err, subsBefore)
	}
}

func testRenameInbox(t *testing.T, s store.Backend) {
	const u = "u@example.com"
	putUser(t, s, u, 0)
	deliver(t, s, Msg("in inbox"), u)
	if _, err := s.SetFlags(u, "INBOX", []uint32{1}, store.FlagChange{Op: store.FlagsAdd, Flags: []string{store.FlagFlagged}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RenameMailbox(u, "INBOX", "Saved"); err != nil {
		t.Fatal(err)
	}
	if got := uids(t, s, u, "INBOX"); len(got) != 0 {
		t.Fatalf("INBOX not empty after RENAME INBOX: %v", got)
	}
	saved := snapshot(t, s, u, "Saved")
	if len(saved.Messages) != 1 || !saved.Messages[0].HasFlag(store.FlagFlagged) || !bytes.Equal(content(t, s, saved.Messages[0]), Msg("in inbox")) {
		t.Fatalf("Saved holds %+v", saved.Messages)
	}
	// INBOX keeps taking mail, with UIDs after the ones it had.
	deliver(t, s, Msg("next"), u)
	if got := uids(t, s, u, "INBOX"); !slices.Equal(got, []uint32{2}) {
		t.Fatalf("INBOX after RENAME INBOX and a delivery: %v", got)
	}
}

func testUIDs(t *testing.T, s store.Backend) {
	const u = "u@example.com"
	putUser(t, s, u, 0)
	st0 := status(t, s, u, "INBOX")
	if st0.UIDNext != 1 || st0.UIDValidity == 0 {
		t.Fatalf("new INBOX: %+v", st0)
	}
	for i := range 3 {
		deliver(t, s, Msg(fmt.Sprint(i)), u)
	}
	uv, uid, err := s.Append(u, "INBOX", bytes.NewReader(Msg("a")), int64(len(Msg("a"))), store.AppendOptions{})
	if err != nil || uv != st0.UIDValidity || uid != 4 {
		t.Fatalf("Append = %d, %d, %v; want UIDVALIDITY %d, UID 4", uv, uid, err, st0.UIDValidity)
	}
	// Expunging the highest UID does not free it.
	if _, err := s.SetFlags(u, "INBOX", []uint32{4}, store.FlagChange{Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
		t.Fatal(err)
	}
	if removed, err := s.Expunge(u, "INBOX", nil); err != nil || !slices.Equal(removed, []uint32{4}) {
		t.Fatalf("Expunge = %v, %v", removed, err)
	}
	deliver(t, s, Msg("after"), u)
	if got := uids(t, s, u, "INBOX"); !slices.Equal(got, []uint32{1, 2, 3, 5}) {
		t.Fatalf("UIDs = %v, want 1 2 3 5 (an expunged UID is never reused)", got)
	}
	st := status(t, s, u, "INBOX")
	snap := snapshot(t, s, u, "INBOX")
	if st.UIDNext != 6 || snap.UIDNext != 6 || snap.UIDValidity != st0.UIDValidity {
		t.Fatalf("UIDNEXT: Status %d, Messages %d; want 6", st.UIDNext, snap.UIDNext)
	}
	if st.Messages != 4 || st.Unseen != 4 || st.ModSeq == st0.ModSeq || snap.ModSeq != st.ModSeq {
		t.Fatalf("Status %+v after four messages; first %+v", st, st0)
	}
	// UIDVALIDITY is unique among a user's mailboxes.
	if err := s.CreateMailbox(u, "Other", store.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if other := status(t, s, u, "Other"); other.UIDValidity == st0.UIDValidity {
		t.Fatalf("two mailboxes share UIDVALIDITY %d", other.UIDValidity)
	}
}

func testConcurrentDeliver(t *testing.T, s store.Backend) {
	users := []string{"a@example.com", "b@example.com", "c@example.com"}
	for _, u := range users {
		putUser(t, s, u, 0)
	}
	const workers, each = 16, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each*3)
	for i := range workers {
		wg.Go(func() {
			for j := range each {
				rcpts := []string{users[(i+j)%3], users[(i+j+1)%3]}
				if err := s.Deliver(context.Background(), rcpts, Msg(fmt.Sprintf("%d-%d", i, j))); err != nil {
					errs <- err
				}
				if _, err := s.SetFlags(users[i%3], "INBOX", []uint32{uint32(j + 1)}, store.FlagChange{Op: store.FlagsAdd, Flags: []string{store.FlagSeen}}); err != nil {
					errs <- err
				}
				if _, err := s.Messages(users[j%3], "INBOX"); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total := 0
	for _, u := range users {
		got := uids(t, s, u, "INBOX")
		for i, uid := range got {
			if uid != uint32(i+1) {
				t.Fatalf("%s: UIDs not dense and ascending: %v", u, got)
			}
		}
		total += len(got)
	}
	if total != workers*each*2 {
		t.Fatalf("%d messages stored, want %d", total, workers*each*2)
	}
}

func testFlags(t *testing.T, s store.Backend) {
	const u = "u@example.com"
	putUser(t, s, u, 0)
	for i := range 3 {
		deliver(t, s, Msg(fmt.Sprint(i)), u)
	}
	res, err := s.SetFlags(u, "INBOX", []uint32{1, 2, 99}, store.FlagChange{Op: store.FlagsAdd, Flags: []string{`\seen`, "$Work", `\Recent`, `\Unknown`}})
	got := res.Messages
	if err != nil || len(got) != 2 || !slices.Equal(got[0].Flags, []string{store.FlagSeen, "$Work"}) {
		t.Fatalf("SetFlags(+) = %+v, %v; want \\Seen $Work on 1 and 2 (99 skipped, \\Recent not stored)", got, err)
	}
	seq0, _ := s.ModSeq(u, "INBOX")
	if _, err := s.SetFlags(u, "INBOX", []uint32{1}, store.FlagChange{Op: store.FlagsAdd, Flags: []string{store.FlagSeen}}); err != nil {
		t.Fatal(err)
	}
	if seq1, _ := s.ModSeq(u, "INBOX"); seq1 != seq0 {
		t.Fatalf("a flag change that changed nothing moved ModSeq %d -> %d", seq0, seq1)
	}
	if _, err := s.SetFlags(u, "INBOX", []uint32{2}, store.FlagChange{Op: store.FlagsRemove, Flags: []string{"$Work", `\SEEN`}}); err != nil {
		t.Fatal(err)
	}
	if seq2, _ := s.ModSeq(u, "INBOX"); seq2 <= seq0 {
		t.Fatalf("ModSeq %d did not grow past %d on a flag change", seq2, seq0)
	}
	res, err = s.SetFlags(u, "INBOX", []uint32{3}, store.FlagChange{Op: store.FlagsReplace, Flags: []string{store.FlagDraft, store.FlagAnswered, "b", "a"}})
	got = res.Messages
	if err != nil || len(got) != 1 || !got[0].HasFlag(`\draft`) || !got[0].HasFlag(store.FlagAnswered) || !got[0].HasFlag("a") || got[0].HasFlag("A") {
		t.Fatalf("SetFlags(replace) = %+v, %v", got, err)
	}
	snap := snapshot(t, s, u, "INBOX")
	want := [][]string{{store.FlagSeen, "$Work"}, {}, got[0].Flags}
	for i, m := range snap.Messages {
		if !slices.Equal(m.Flags, want[i]) && !(len(m.Flags) == 0 && len(want[i]) == 0) {
			t.Fatalf("message %d flags %v, want %v", m.UID, m.Flags, want[i])
		}
	}
	if st := status(t, s, u, "INBOX"); st.Unseen != 2 || st.Deleted != 0 {
		t.Fatalf("Status = %+v, want 2 unseen", st)
	}
	lk, err := s.Lookup(u, "INBOX", []uint32{3, 42, 1})
	if err != nil || len(lk) != 2 || lk[0].UID != 3 || lk[1].UID != 1 {
		t.Fatalf("Lookup(3, 42, 1) = %+v, %v", lk, err)
	}
	if _, err := s.Lookup(u, "Nope", []uint32{1}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Lookup in a missing mailbox: %v", err)
	}
	if _, err := s.SetFlags(u, "Nope", []uint32{1}, store.FlagChange{Op: store.FlagsAdd, Flags: []string{store.FlagSeen}}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetFlags in a missing mailbox: %v", err)
	}
}

func testCopyMoveExpunge(t *testing.T, s store.Backend) {
	const u = "u@example.com"
	putUser(t, s, u, 0)
	for i := range 4 {
		deliver(t, s, Msg(fmt.Sprint(i)), u)
	}
	if err := s.CreateMailbox(u, "Dst", store.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetFlags(u, "INBOX", []uint32{1}, store.FlagChange{Op: store.FlagsAdd, Flags: []string{store.FlagSeen, "$Work"}}); err != nil {
		t.Fatal(err)
	}
	dstStatus := status(t, s, u, "Dst")
	cr, err := s.Copy(u, "INBOX", []uint32{1, 2, 77}, "Dst")
	if err != nil || cr.UIDValidity != dstStatus.UIDValidity || !slices.Equal(cr.SourceUIDs, []uint32{1, 2}) || !slices.Equal(cr.DestUIDs, []uint32{1, 2}) {
		t.Fatalf("Copy = %+v, %v", cr, err)
	}
	src := snapshot(t, s, u, "INBOX")
	dst := snapshot(t, s, u, "Dst")
	if !slices.Equal(dst.Messages[0].Flags, []string{store.FlagSeen, "$Work"}) || !dst.Messages[0].Date.Equal(src.Messages[0].Date) || !bytes.Equal(content(t, s, dst.Messages[1]), Msg("1")) {
		t.Fatalf("copied message: %+v (source %+v)", dst.Messages[0], src.Messages[0])
	}
	if _, err := s.Copy(u, "INBOX", []uint32{1}, "Nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Copy to a missing mailbox: %v", err)
	}

	mr, err := s.Move(u, "INBOX", []uint32{3}, "Dst")
	if err != nil || !slices.Equal(mr.SourceUIDs, []uint32{3}) || !slices.Equal(mr.DestUIDs, []uint32{3}) {
		t.Fatalf("Move = %+v, %v", mr, err)
	}
	if got := uids(t, s, u, "INBOX"); !slices.Equal(got, []uint32{1, 2, 4}) {
		t.Fatalf("INBOX after MOVE: %v", got)
	}
	if _, err := s.SetFlags(u, "INBOX", []uint32{1, 4}, store.FlagChange{Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
		t.Fatal(err)
	}
	if st := status(t, s, u, "INBOX"); st.Deleted != 2 {
		t.Fatalf("Status.Deleted = %d, want 2", st.Deleted)
	}
	removed, err := s.Expunge(u, "INBOX", []uint32{4, 2})
	if err != nil || !slices.Equal(removed, []uint32{4}) {
		t.Fatalf("UID EXPUNGE 2,4 = %v, %v; want only the \\Deleted 4", removed, err)
	}
	removed, err = s.Expunge(u, "INBOX", nil)
	if err != nil || !slices.Equal(removed, []uint32{1}) {
		t.Fatalf("EXPUNGE = %v, %v", removed, err)
	}
	if got := uids(t, s, u, "INBOX"); !slices.Equal(got, []uint32{2}) {
		t.Fatalf("INBOX after EXPUNGE: %v", got)
	}
	if removed, err := s.Expunge(u, "INBOX", nil); err != nil || len(removed) != 0 {
		t.Fatalf("EXPUNGE with nothing \\Deleted = %v, %v", removed, err)
	}
	// The copy in Dst outlives the original.
	if !bytes.Equal(content(t, s, dst.Messages[0]), Msg("0")) {
		t.Fatal("the copy lost its content when the original was expunged")
	}
	info, _ := s.User(u)
	if want := status(t, s, u, "INBOX").Size + status(t, s, u, "Dst").Size; info.UsedBytes != want {
		t.Fatalf("usage %d, want %d (copies count in full)", info.UsedBytes, want)
	}
}

func testAppend(t *testing.T, s store.Backend) {
	const u = "u@example.com"
	putUser(t, s, u, 0)
	body := Msg("appended")
	date := time.Date(2020, 2, 29, 12, 30, 0, 0, time.FixedZone("", -5*3600))
	_, uid, err := s.Append(u, "inbox", bytes.NewReader(body), int64(len(body)), store.AppendOptions{Flags: []string{store.FlagSeen, store.FlagDraft, "$Label1"}, Date: date})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Lookup(u, "INBOX", []uint32{uid})
	if err != nil || len(m) != 1 {
		t.Fatalf("Lookup = %+v, %v", m, err)
	}
	if !m[0].Date.Equal(date) || m[0].Size != int64(len(body)) || !slices.Equal(m[0].Flags, []string{store.FlagSeen, store.FlagDraft, "$Label1"}) {
		t.Fatalf("appended message %+v", m[0])
	}
	if !bytes.Equal(content(t, s, m[0]), body) {
		t.Fatal("appended content differs")
	}
	if _, _, err := s.Append(u, "Nope", bytes.NewReader(body), int64(len(body)), store.AppendOptions{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Append to a missing mailbox: %v", err)
	}
}

func testWatch(t *testing.T, s store.Backend) {
	const u = "u@example.com"
	putUser(t, s, u, 0)
	if err := s.CreateMailbox(u, "Other", store.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := s.Watch(u, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	other, err := s.Watch(u, "Other")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := s.Watch(u, "Nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Watch of a missing mailbox: %v", err)
	}
	expect := func(what string) {
		t.Helper()
		select {
		case <-w.C:
		case <-time.After(time.Second):
			t.Fatalf("no notification within a second of %s", what)
		}
	}
	deliver(t, s, Msg("x"), u)
	expect("a delivery")
	if _, err := s.SetFlags(u, "INBOX", []uint32{1}, store.FlagChange{Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
		t.Fatal(err)
	}
	expect("a flag change")
	if _, err := s.Expunge(u, "INBOX", nil); err != nil {
		t.Fatal(err)
	}
	expect("an expunge")
	if _, _, err := s.Append(u, "INBOX", bytes.NewReader(Msg("y")), int64(len(Msg("y"))), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("an append")
	select {
	case <-other.C:
		t.Fatal("a watch on another mailbox was notified")
	default:
	}
	if _, err := s.Move(u, "INBOX", []uint32{2}, "Other"); err != nil {
		t.Fatal(err)
	}
	expect("a move out")
	select {
	case <-other.C:
	case <-time.After(time.Second):
		t.Fatal("no notification within a second of a move in")
	}
	w.Close()
	w.Close()
}

// testWatchUser checks that a user's watch hears of every change to their
// mail, list and subscriptions included, and nothing of another user's.
func testWatchUser(t *testing.T, s store.Backend) {
	const u, other = "u@example.com", "other@example.com"
	putUser(t, s, u, 0)
	putUser(t, s, other, 0)
	w, err := s.WatchUser(u)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ow, err := s.WatchUser(other)
	if err != nil {
		t.Fatal(err)
	}
	defer ow.Close()
	if _, err := s.WatchUser("nobody@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("WatchUser of an unknown user: %v", err)
	}
	body := Msg("x")
	for _, step := range []struct {
		what string
		do   func() error
	}{
		{"a delivery to INBOX", func() error { return s.Deliver(context.Background(), []string{u}, body) }},
		{"an append to Sent", func() error {
			_, _, err := s.Append(u, "Sent", bytes.NewReader(body), int64(len(body)), store.AppendOptions{})
			return err
		}},
		{"a flag change in Sent", func() error {
			_, err := s.SetFlags(u, "Sent", []uint32{1}, store.FlagChange{Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}})
			return err
		}},
		{"an expunge in Sent", func() error { _, err := s.Expunge(u, "Sent", nil); return err }},
		{"a create", func() error { return s.CreateMailbox(u, "Lists/Go", store.CreateOptions{}) }},
		{"a rename", func() error { return s.RenameMailbox(u, "Lists", "Groups") }},
		{"a subscribe", func() error { return s.Subscribe(u, "Groups/Go", true) }},
		{"an unsubscribe", func() error { return s.Subscribe(u, "Groups/Go", false) }},
		{"a delete", func() error { return s.DeleteMailbox(u, "Groups/Go") }},
		{"a move between mailboxes", func() error { _, err := s.Move(u, "INBOX", []uint32{1}, "Archive"); return err }},
	} {
		drain(w)
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		select {
		case <-w.C:
		case <-time.After(time.Second):
			t.Fatalf("no notification within a second of %s", step.what)
		}
	}
	select {
	case <-ow.C:
		t.Fatal("another user's watch was notified")
	default:
	}
	w.Close()
	w.Close()
}

// drain takes the notifications pending on w, so that the next one comes
// from what the caller does next: one step may commit (and notify) twice.
func drain(w *store.Watch) {
	for {
		select {
		case <-w.C:
			continue
		case <-time.After(20 * time.Millisecond):
		}
		return
	}
}

func testBlobs(t *testing.T, s store.Backend) {
	const u = "u@example.com"
	putUser(t, s, u, 0)
	small := Msg("small")
	large := append(Msg("large"), bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n"), 3<<20/64)...)
	deliver(t, s, small, u)
	if _, _, err := s.Append(u, "INBOX", bytes.NewReader(large), int64(len(large)), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	snap := snapshot(t, s, u, "INBOX")
	buf := make([]byte, 0, 4096)
	got, err := s.ReadBlob(snap.Messages[0].Body, snap.Messages[0].Size, buf)
	if err != nil || !bytes.Equal(got, small) || &got[0] != &buf[:1][0] {
		t.Fatalf("ReadBlob = %q, %v; want the message in buf's storage", got, err)
	}
	lm := snap.Messages[1]
	if lm.Size != int64(len(large)) {
		t.Fatalf("large message size %d, want %d", lm.Size, len(large))
	}
	rc, err := s.OpenBlob(lm.Body)
	if err != nil {
		t.Fatal(err)
	}
	streamed, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(streamed, large) {
		t.Fatalf("OpenBlob streamed %d bytes, %v; want %d", len(streamed), err, len(large))
	}
	// An expunged message's body is gone or still the same, never another.
	if _, err := s.SetFlags(u, "INBOX", []uint32{1}, store.FlagChange{Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expunge(u, "INBOX", nil); err != nil {
		t.Fatal(err)
	}
	if b, err := s.ReadBlob(snap.Messages[0].Body, snap.Messages[0].Size, nil); err != nil && !errors.Is(err, store.ErrNotFound) || err == nil && !bytes.Equal(b, small) {
		t.Fatalf("ReadBlob after expunge = %q, %v; want ErrNotFound or the same body", b, err)
	}
}

func testMaildrop(t *testing.T, s store.Backend) {
	const u = "u@example.com"
	putUser(t, s, u, 0)
	for i := range 3 {
		deliver(t, s, Msg(fmt.Sprint(i)), u)
	}
	d, err := s.OpenMaildrop(u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenMaildrop("u@EXAMPLE.com"); !errors.Is(err, store.ErrMaildropLocked) {
		t.Fatalf("second OpenMaildrop: %v", err)
	}
	if _, err := s.OpenMaildrop("nobody@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("OpenMaildrop of an unknown user: %v", err)
	}
	if err := s.DeleteUser(u); !errors.Is(err, store.ErrMaildropLocked) {
		t.Fatalf("DeleteUser while the maildrop is open: %v", err)
	}
	deliver(t, s, Msg("late"), u)
	msgs, _ := d.Messages()
	if len(msgs) != 3 || msgs[0].Size != int64(len(Msg("0"))) {
		t.Fatalf("Messages = %+v; want the 3 present at open", msgs)
	}
	rc, err := d.Open(msgs[1].UID)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(b, Msg("1")) {
		t.Fatalf("Open returned %q", b)
	}
	if _, err := d.Open("nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Open of an unknown id: %v", err)
	}
	if err := d.Commit([]string{msgs[0].UID, msgs[2].UID}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d.Close()
	d2, err := s.OpenMaildrop(u)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	msgs2, _ := d2.Messages()
	if len(msgs2) != 2 || msgs2[0].UID != msgs[1].UID {
		t.Fatalf("after Commit: %+v (unique ids must be stable: %q)", msgs2, msgs[1].UID)
	}
	if got := uids(t, s, u, "INBOX"); !slices.Equal(got, []uint32{2, 4}) {
		t.Fatalf("IMAP sees %v after the POP3 deletions, want 2 4", got)
	}
}

// testModSeq checks CONDSTORE's mod-sequences (RFC 7162 3): positive,
// growing with every change, per message, and UNCHANGEDSINCE.
func testModSeq(t *testing.T, s store.Backend) {
	const u = "u@example.com"
	putUser(t, s, u, 0)
	empty := status(t, s, u, "INBOX").ModSeq
	if empty == 0 {
		t.Fatal("HIGHESTMODSEQ of an empty mailbox is 0; mod-sequences are positive")
	}
	for i := range 3 {
		deliver(t, s, Msg(fmt.Sprint(i)), u)
	}
	snap := snapshot(t, s, u, "INBOX")
	prev := empty
	for _, m := range snap.Messages {
		if m.ModSeq <= prev || m.ModSeq > snap.ModSeq {
			t.Fatalf("message %d MODSEQ %d: want above %d and at most HIGHESTMODSEQ %d", m.UID, m.ModSeq, prev, snap.ModSeq)
		}
		prev = m.ModSeq
	}
	high := snap.ModSeq
	res, err := s.SetFlags(u, "INBOX", []uint32{1, 2}, store.FlagChange{Op: store.FlagsAdd, Flags: []string{store.FlagFlagged}})
	if err != nil || len(res.Messages) != 2 || len(res.Modified) != 0 {
		t.Fatalf("SetFlags = %+v, %v", res, err)
	}
	after := res.Messages[0].ModSeq
	if after <= high || res.Messages[1].ModSeq != after {
		t.Fatalf("changed messages have MODSEQ %d and %d, want one value above %d", after, res.Messages[1].ModSeq, high)
	}
	if got := status(t, s, u, "INBOX").ModSeq; got != after {
		t.Fatalf("HIGHESTMODSEQ %d after the change, want %d", got, after)
	}
	m3, _ := s.Lookup(u, "INBOX", []uint32{3})
	if m3[0].ModSeq != snap.Messages[2].ModSeq {
		t.Fatal("an untouched message's MODSEQ changed")
	}
	// UNCHANGEDSINCE: 1 and 2 changed after high, 3 did not (RFC 7162 3.1.3).
	res, err = s.SetFlags(u, "INBOX", []uint32{1, 2, 3}, store.FlagChange{Op: store.FlagsAdd, Flags: []string{"$Cond"}, UnchangedSince: high})
	if err != nil || !slices.Equal(res.Modified, []uint32{1, 2}) || len(res.Messages) != 1 || res.Messages[0].UID != 3 || !res.Messages[0].HasFlag("$Cond") {
		t.Fatalf("UNCHANGEDSINCE %d = %+v, %v; want 3 changed, 1 and 2 MODIFIED", high, res, err)
	}
	if m1, _ := s.Lookup(u, "INBOX", []uint32{1}); m1[0].HasFlag("$Cond") {
		t.Fatal("UNCHANGEDSINCE changed a message modified since")
	}
	// An expunge moves HIGHESTMODSEQ too.
	before := status(t, s, u, "INBOX").ModSeq
	if _, err := s.SetFlags(u, "INBOX", []uint32{3}, store.FlagChange{Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expunge(u, "INBOX", nil); err != nil {
		t.Fatal(err)
	}
	if got := status(t, s, u, "INBOX").ModSeq; got <= before {
		t.Fatalf("HIGHESTMODSEQ %d after EXPUNGE, want above %d", got, before)
	}
}

// testVanished checks what QRESYNC needs (RFC 7162 3.2.10): the UIDs
// expunged since a MODSEQ, never one that exists.
func testVanished(t *testing.T, s store.Backend) {
	const u = "u@example.com"
	putUser(t, s, u, 0)
	if err := s.CreateMailbox(u, "Dst", store.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		deliver(t, s, Msg(fmt.Sprint(i)), u)
	}
	expunge := func(uids ...uint32) {
		t.Helper()
		if _, err := s.SetFlags(u, "INBOX", uids, store.FlagChange{Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Expunge(u, "INBOX", uids); err != nil {
			t.Fatal(err)
		}
	}
	expunge(2)
	mark := status(t, s, u, "INBOX").ModSeq
	expunge(4, 5)
	if _, err := s.Move(u, "INBOX", []uint32{6}, "Dst"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Vanished(u, "INBOX", mark)
	if err != nil || !slices.Equal(got, []store.UIDRange{{Start: 4, Stop: 6}}) {
		t.Fatalf("Vanished since %d = %v, %v; want 4:6", mark, got, err)
	}
	all, err := s.Vanished(u, "INBOX", 1)
	if err != nil {
		t.Fatal(err)
	}
	has := func(rs []store.UIDRange, uid uint32) bool {
		for _, r := range rs {
			if uid >= r.Start && uid <= r.Stop {
				return true
			}
		}
		return false
	}
	for _, uid := range []uint32{2, 4, 5, 6} {
		if !has(all, uid) {
			t.Fatalf("Vanished since 1 = %v lacks %d", all, uid)
		}
	}
	for _, uid := range []uint32{1, 3} {
		if has(all, uid) {
			t.Fatalf("Vanished since 1 = %v names %d, which exists", all, uid)
		}
	}
	if now, err := s.Vanished(u, "INBOX", status(t, s, u, "INBOX").ModSeq); err != nil || len(now) != 0 {
		t.Fatalf("Vanished since HIGHESTMODSEQ = %v, %v; want none", now, err)
	}
}

// testRecent checks \Recent (RFC 3501 2.3.2): each new message is recent
// in exactly one session.
func testRecent(t *testing.T, s store.Backend) {
	const u = "u@example.com"
	putUser(t, s, u, 0)
	deliver(t, s, Msg("a"), u)
	deliver(t, s, Msg("b"), u)
	if st := status(t, s, u, "INBOX"); st.Recent != 2 {
		t.Fatalf("STATUS RECENT = %d before any claim, want 2", st.Recent)
	}
	if snap := snapshot(t, s, u, "INBOX"); snap.RecentFrom != 1 {
		t.Fatalf("Snapshot.RecentFrom = %d before any claim, want 1", snap.RecentFrom)
	}
	first, next, err := s.ClaimRecent(u, "INBOX")
	if err != nil || first != 1 || next != 3 {
		t.Fatalf("first ClaimRecent = %d, %d, %v; want 1, 3", first, next, err)
	}
	if again, next, err := s.ClaimRecent(u, "INBOX"); err != nil || again != next {
		t.Fatalf("second ClaimRecent = %d, %d, %v; want nothing new", again, next, err)
	}
	if st := status(t, s, u, "INBOX"); st.Recent != 0 {
		t.Fatalf("STATUS RECENT = %d after the claim, want 0", st.Recent)
	}
	deliver(t, s, Msg("c"), u)
	var wg sync.WaitGroup
	claims := make([]uint32, 8)
	for i := range claims {
		wg.Go(func() {
			var err error
			if claims[i], _, err = s.ClaimRecent(u, "INBOX"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got := 0
	for _, c := range claims {
		if c == 3 {
			got++
		} else if c != 4 {
			t.Fatalf("concurrent claims returned %v", claims)
		}
	}
	if got != 1 {
		t.Fatalf("message 3 is recent in %d sessions, want exactly one (claims %v)", got, claims)
	}
}

// testSubscriptions checks that subscriptions are names (RFC 9051 6.3.7):
// they may name no mailbox and outlive a deleted one.
func testSubscriptions(t *testing.T, s store.Backend) {
	const u = "u@example.com"
	putUser(t, s, u, 0)
	if err := s.CreateMailbox(u, "Lists/Go", store.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Lists/Go", "Not/Yet"} {
		if err := s.Subscribe(u, name, true); err != nil {
			t.Fatalf("SUBSCRIBE %s: %v", name, err)
		}
	}
	if err := s.DeleteMailbox(u, "Lists/Go"); err != nil {
		t.Fatal(err)
	}
	subs, err := s.Subscriptions(u)
	if err != nil || !slices.Equal(subs, []string{"INBOX", "Lists/Go", "Not/Yet"}) {
		t.Fatalf("Subscriptions = %v, %v; want INBOX Lists/Go Not/Yet", subs, err)
	}
	if err := s.Subscribe(u, "inbox", false); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateMailbox(u, "Not/Yet", store.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	boxes, _ := s.Mailboxes(u)
	for _, b := range boxes {
		if want := b.Name == "Not/Yet"; b.Subscribed != want {
			t.Fatalf("%s subscribed = %v, want %v", b.Name, b.Subscribed, want)
		}
	}
}
