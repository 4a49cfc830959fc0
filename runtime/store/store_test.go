package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// cheapArgon keeps tests fast; production uses DefaultArgon2.
var cheapArgon = Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}

func openTest(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{Argon2: cheapArgon, Hostname: "test", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func newTestStore(t testing.TB, users ...string) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s := openTest(t, dir)
	t.Cleanup(func() { s.Close() })
	for _, u := range users {
		if err := s.PutUser(u, "secret-"+u, 0); err != nil {
			t.Fatalf("PutUser(%s): %v", u, err)
		}
	}
	return s, dir
}

func msg(subject string) []byte {
	return []byte("From: a@example.org\r\nTo: b@example.com\r\nSubject: " + subject + "\r\n\r\nHello " + subject + "\r\n")
}

func uidsOf(t *testing.T, s *Store, addr, mailbox string) []uint32 {
	t.Helper()
	snap, err := s.Messages(addr, mailbox)
	if err != nil {
		t.Fatalf("Messages(%s, %s): %v", addr, mailbox, err)
	}
	var out []uint32
	for _, m := range snap.Messages {
		out = append(out, m.UID)
	}
	return out
}

func readAll(t *testing.T, m MessageInfo) []byte {
	t.Helper()
	f, err := m.Open()
	if err != nil {
		t.Fatalf("Open message %d: %v", m.UID, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCanonicalAddress(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"domain lowered", "Alice@Example.COM", "Alice@example.com", false},
		{"plain", "bob@example.com", "bob@example.com", false},
		{"no at", "bob", "", true},
		{"two ats", "a@b@example.com", "", true},
		{"empty local", "@example.com", "", true},
		{"dotdot local", "..@example.com", "", true},
		{"slash local", "a/b@example.com", "", true},
		{"bad domain", "a@exa_mple.com", "", true},
		{"empty label", "a@example..com", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CanonicalAddress(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("CanonicalAddress(%q) = %q, %v; want %q, err=%v", tc.in, got, err, tc.want, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidAddress) {
				t.Fatalf("error %v is not ErrInvalidAddress", err)
			}
		})
	}
}

func TestFolderDirRoundTrip(t *testing.T) {
	tests := []struct{ name, dir string }{
		{"INBOX", ""},
		{"Archive", ".Archive"},
		{"Archive/2024", ".Archive.2024"},
		{"v1.2/notes", ".v1%2E2.notes"},
		{"a.b.c", ".a%2Eb%2Ec"},
		{"Entwürfe", ".Entwürfe"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := folderDir(tc.name); got != tc.dir {
				t.Fatalf("folderDir(%q) = %q, want %q", tc.name, got, tc.dir)
			}
			if tc.dir == "" {
				return
			}
			if got, ok := nameFromFolderDir(tc.dir); !ok || got != tc.name {
				t.Fatalf("nameFromFolderDir(%q) = %q, %v", tc.dir, got, ok)
			}
		})
	}
	for _, bad := range []string{".", "..", ".a..b", ".%zz", "cur"} {
		if _, ok := nameFromFolderDir(bad); ok {
			t.Errorf("nameFromFolderDir(%q) accepted", bad)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	r := record{flags: makeFlagSet([]string{`\Seen`, "$Label1", `\deleted`, "Junk"}), size: 12345, date: time.Unix(1700000000, 42), file: "cur/x:2,ST"}
	got, err := unmarshalRecord(r.marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !got.flags.equal(r.flags) || got.size != r.size || !got.date.Equal(r.date) || got.file != r.file {
		t.Fatalf("round trip: got %+v, want %+v", got, r)
	}
	if want := []string{`\Seen`, `\Deleted`, "$Label1", "Junk"}; !slices.Equal(got.flags.list(), want) {
		t.Fatalf("flags %v, want %v", got.flags.list(), want)
	}
	if _, err := unmarshalRecord(r.marshal()[:5]); err == nil {
		t.Fatal("truncated record accepted")
	}
}

func TestFlagsFromFilename(t *testing.T) {
	tests := []struct {
		name, file string
		want       []string
	}{
		{"none", "123.M1P1Q1.host", nil},
		{"seen replied", "123.host:2,RS", []string{`\Seen`, `\Answered`}},
		{"all", "123.host:2,DFRST", []string{`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := flagsFromFilename(tc.file)
			if got := f.list(); !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if info := f.maildirInfo(); !strings.HasSuffix(tc.file, ":2,"+info) && info != "" {
				t.Fatalf("maildirInfo %q does not round-trip %q", info, tc.file)
			}
		})
	}
}

func TestUsers(t *testing.T) {
	s, _ := newTestStore(t)
	if err := s.PutUser("Alice@Example.com", "pw1", 1000); err != nil {
		t.Fatal(err)
	}
	if err := s.Authenticate("Alice@EXAMPLE.com", "pw1"); err != nil {
		t.Fatalf("Authenticate with domain in other case: %v", err)
	}
	for _, tc := range []struct{ name, addr, pw string }{
		{"wrong password", "Alice@example.com", "nope"},
		{"unknown user", "mallory@example.com", "pw1"},
		{"local part is case-sensitive", "alice@example.com", "pw1"},
		{"invalid address", "nobody", "pw1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Authenticate(tc.addr, tc.pw); !errors.Is(err, ErrAuthFailed) {
				t.Fatalf("Authenticate = %v, want ErrAuthFailed", err)
			}
		})
	}
	// Updating keeps the mail and changes the password.
	if err := s.Deliver(context.Background(), []string{"Alice@example.com"}, msg("kept")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutUser("Alice@example.com", "pw2", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Authenticate("Alice@example.com", "pw1"); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("old password still works: %v", err)
	}
	info, err := s.User("Alice@example.com")
	if err != nil || info.QuotaBytes != 0 || info.UsedBytes != int64(len(msg("kept"))) {
		t.Fatalf("User = %+v, %v", info, err)
	}
	users, err := s.Users()
	if err != nil || len(users) != 1 || users[0].Address != "Alice@example.com" {
		t.Fatalf("Users = %+v, %v", users, err)
	}
	if err := s.DeleteUser("Alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.User("Alice@example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("User after delete: %v", err)
	}
	if err := s.DeleteUser("Alice@example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second DeleteUser: %v", err)
	}
	if _, err := os.Stat(s.userDir("Alice@example.com")); !os.IsNotExist(err) {
		t.Fatalf("mail directory survived DeleteUser: %v", err)
	}
}

func TestPasswordHashFormat(t *testing.T) {
	h, err := hashPassword("correct horse", DefaultArgon2)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=7168,t=5,p=1$") || strings.Contains(h, "correct horse") {
		t.Fatalf("unexpected PHC string %q", h)
	}
	// Users created before the default changed keep their hashes: the PHC
	// string carries its parameters.
	old, err := hashPassword("correct horse", Argon2Params{Time: 2, MemoryKiB: 19 * 1024, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(old, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("unexpected PHC string %q", old)
	}
	if ok, err := verifyPassword(old, "correct horse"); err != nil || !ok {
		t.Errorf("a hash made with m=19 MiB, t=2 does not verify: %v, %v", ok, err)
	}
	for pw, want := range map[string]bool{"correct horse": true, "correct hors": false, "": false} {
		if ok, err := verifyPassword(h, pw); err != nil || ok != want {
			t.Errorf("verify(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	if _, err := verifyPassword("$2a$10$bcrypt", "x"); err == nil {
		t.Error("non-argon2id hash accepted")
	}
}

func TestDeliver(t *testing.T) {
	s, dir := newTestStore(t, "a@example.com", "b@example.com")
	ctx := context.Background()
	body := msg("one")
	if err := s.Deliver(ctx, []string{"a@example.com", "b@EXAMPLE.com", "a@example.com"}, body); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"a", "b"} {
		snap, err := s.Messages(u+"@example.com", "inbox")
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Messages) != 1 {
			t.Fatalf("%s has %d messages, want 1 (duplicates must collapse)", u, len(snap.Messages))
		}
		m := snap.Messages[0]
		if m.UID != 1 || m.Size != int64(len(body)) || len(m.Flags) != 0 || !bytes.Equal(readAll(t, m), body) {
			t.Fatalf("%s: got %+v", u, m)
		}
		entries, _ := os.ReadDir(filepath.Join(dir, "mail", "example.com", u, "new"))
		if len(entries) != 1 {
			t.Fatalf("%s new/ holds %d files, want 1", u, len(entries))
		}
		if tmp, _ := os.ReadDir(filepath.Join(dir, "mail", "example.com", u, "tmp")); len(tmp) != 0 {
			t.Fatalf("%s tmp/ not empty after delivery", u)
		}
	}

	if err := s.Deliver(ctx, []string{"a@example.com", "nobody@example.com"}, msg("two")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delivery to unknown user: %v", err)
	}
	if got := uidsOf(t, s, "a@example.com", "INBOX"); len(got) != 1 {
		t.Fatalf("partial delivery happened: %v", got)
	}

	if err := s.PutUser("small@example.com", "pw", 100); err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver(ctx, []string{"small@example.com"}, bytes.Repeat([]byte("x"), 60)); err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver(ctx, []string{"small@example.com"}, bytes.Repeat([]byte("x"), 60)); !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("over quota: %v", err)
	}
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Deliver(ctx2, []string{"a@example.com"}, body); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled delivery: %v", err)
	}
}

func TestMailboxes(t *testing.T) {
	const u = "u@example.com"
	s, dir := newTestStore(t, u)
	root := filepath.Join(dir, "mail", "example.com", "u")
	if err := s.CreateMailbox(u, "Archive/2024"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateMailbox(u, "Archive"); !errors.Is(err, ErrExists) {
		t.Fatalf("parent was not created with its child: %v", err)
	}
	if err := s.CreateMailbox(u, "bad/"+"/name"); !errors.Is(err, ErrInvalidMailbox) {
		t.Fatalf("bad name: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, ".Archive.2024", "cur")); err != nil {
		t.Fatalf("Maildir++ folder missing: %v", err)
	}
	names := func() []string {
		boxes, err := s.Mailboxes(u)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, b := range boxes {
			out = append(out, b.Name)
		}
		return out
	}
	if got := names(); !slices.Equal(got, []string{"Archive", "Archive/2024", "INBOX"}) {
		t.Fatalf("Mailboxes = %v", got)
	}
	if err := s.DeleteMailbox(u, "Archive"); !errors.Is(err, ErrHasChildren) {
		t.Fatalf("delete with children: %v", err)
	}
	if err := s.DeleteMailbox(u, "inbox"); !errors.Is(err, ErrInvalidMailbox) {
		t.Fatalf("delete INBOX: %v", err)
	}
	if _, _, err := s.Append(u, "Archive/2024", bytes.NewReader(msg("old")), int64(len(msg("old"))), AppendOptions{Flags: []string{FlagSeen}}); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Status(u, "Archive/2024")
	if err := s.RenameMailbox(u, "Archive", "Old/Stuff"); err != nil {
		t.Fatal(err)
	}
	if got := names(); !slices.Equal(got, []string{"INBOX", "Old", "Old/Stuff", "Old/Stuff/2024"}) {
		t.Fatalf("after rename: %v", got)
	}
	after, err := s.Status(u, "Old/Stuff/2024")
	if err != nil || after.UIDValidity != before.UIDValidity || after.Messages != 1 || after.Unseen != 0 {
		t.Fatalf("renamed mailbox status %+v (before %+v), %v", after, before, err)
	}
	if _, err := os.Stat(filepath.Join(root, ".Old.Stuff.2024", "cur")); err != nil {
		t.Fatalf("renamed folder missing: %v", err)
	}
	if err := s.Subscribe(u, "Old/Stuff", true); err != nil {
		t.Fatal(err)
	}

	// RENAME INBOX moves its messages and leaves it empty (RFC 9051 6.3.6).
	if err := s.Deliver(context.Background(), []string{u}, msg("in inbox")); err != nil {
		t.Fatal(err)
	}
	if err := s.RenameMailbox(u, "INBOX", "Saved"); err != nil {
		t.Fatal(err)
	}
	if got := uidsOf(t, s, u, "INBOX"); len(got) != 0 {
		t.Fatalf("INBOX not empty after rename: %v", got)
	}
	if got := uidsOf(t, s, u, "Saved"); len(got) != 1 {
		t.Fatalf("Saved has %v", got)
	}

	if err := s.DeleteMailbox(u, "Old/Stuff/2024"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateMailbox(u, "Old/Stuff/2024"); err != nil {
		t.Fatal(err)
	}
	again, _ := s.Status(u, "Old/Stuff/2024")
	if again.UIDValidity == before.UIDValidity {
		t.Fatal("UIDVALIDITY reused after delete and create (RFC 9051 2.3.1.1)")
	}

	// Everything is the same after a restart.
	boxes, _ := s.Mailboxes(u)
	s.Close()
	s2 := openTest(t, dir)
	defer s2.Close()
	boxes2, err := s2.Mailboxes(u)
	if err != nil || !slices.Equal(boxes, boxes2) {
		t.Fatalf("after reopen %+v, %v; before %+v", boxes2, err, boxes)
	}
	info, _ := s2.User(u)
	if want := int64(len(msg("old")) + len(msg("in inbox"))); info.UsedBytes != int64(len(msg("in inbox"))) {
		_ = want
		t.Fatalf("usage after deletes = %d, want %d", info.UsedBytes, len(msg("in inbox")))
	}
}

func TestFlagsCopyMoveExpunge(t *testing.T) {
	const u = "u@example.com"
	s, _ := newTestStore(t, u)
	ctx := context.Background()
	for i := range 4 {
		if err := s.Deliver(ctx, []string{u}, msg(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateMailbox(u, "Dst"); err != nil {
		t.Fatal(err)
	}
	got, err := s.SetFlags(u, "INBOX", []uint32{1, 2, 99}, FlagsAdd, []string{`\seen`, "$Work"})
	if err != nil || len(got) != 2 || !slices.Equal(got[0].Flags, []string{`\Seen`, "$Work"}) {
		t.Fatalf("SetFlags = %+v, %v", got, err)
	}
	seq0, _ := s.ModSeq(u, "INBOX")
	if _, err := s.SetFlags(u, "INBOX", []uint32{1}, FlagsAdd, []string{`\Seen`}); err != nil {
		t.Fatal(err)
	}
	if seq1, _ := s.ModSeq(u, "INBOX"); seq1 != seq0 {
		t.Fatalf("no-op flag change moved ModSeq %d -> %d", seq0, seq1)
	}
	if _, err := s.SetFlags(u, "INBOX", []uint32{2}, FlagsRemove, []string{"$Work"}); err != nil {
		t.Fatal(err)
	}

	cr, err := s.Copy(u, "INBOX", []uint32{1, 2}, "Dst")
	if err != nil || !slices.Equal(cr.SourceUIDs, []uint32{1, 2}) || !slices.Equal(cr.DestUIDs, []uint32{1, 2}) {
		t.Fatalf("Copy = %+v, %v", cr, err)
	}
	dst, _ := s.Messages(u, "Dst")
	if !slices.Equal(dst.Messages[0].Flags, []string{`\Seen`, "$Work"}) || !bytes.Equal(readAll(t, dst.Messages[1]), msg("1")) {
		t.Fatalf("copied message: %+v", dst.Messages[0])
	}

	mr, err := s.Move(u, "INBOX", []uint32{3}, "Dst")
	if err != nil || !slices.Equal(mr.DestUIDs, []uint32{3}) {
		t.Fatalf("Move = %+v, %v", mr, err)
	}
	if got := uidsOf(t, s, u, "INBOX"); !slices.Equal(got, []uint32{1, 2, 4}) {
		t.Fatalf("INBOX after move: %v", got)
	}

	if _, err := s.SetFlags(u, "INBOX", []uint32{1, 4}, FlagsAdd, []string{FlagDeleted}); err != nil {
		t.Fatal(err)
	}
	removed, err := s.Expunge(u, "INBOX", []uint32{4, 2})
	if err != nil || !slices.Equal(removed, []uint32{4}) {
		t.Fatalf("UID EXPUNGE 2,4 = %v, %v", removed, err)
	}
	removed, err = s.Expunge(u, "INBOX", nil)
	if err != nil || !slices.Equal(removed, []uint32{1}) {
		t.Fatalf("EXPUNGE = %v, %v", removed, err)
	}
	if got := uidsOf(t, s, u, "INBOX"); !slices.Equal(got, []uint32{2}) {
		t.Fatalf("INBOX after expunge: %v", got)
	}
	// The copy in Dst shares the file; expunging the original keeps it.
	if !bytes.Equal(readAll(t, dst.Messages[0]), msg("0")) {
		t.Fatal("copy lost its content when the original was expunged")
	}
	info, _ := s.User(u)
	var want int64
	for _, mb := range []string{"INBOX", "Dst"} {
		st, _ := s.Status(u, mb)
		want += st.Size
	}
	if info.UsedBytes != want {
		t.Fatalf("usage %d, want %d", info.UsedBytes, want)
	}
	if _, err := s.Lookup(u, "Nope", []uint32{1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Lookup in missing mailbox: %v", err)
	}
}

func TestWatch(t *testing.T) {
	const u = "u@example.com"
	s, _ := newTestStore(t, u)
	w, err := s.Watch(u, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := s.Deliver(context.Background(), []string{u}, msg("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.C:
	default:
		t.Fatal("no notification by the time Deliver returned")
	}
	if _, err := s.SetFlags(u, "INBOX", []uint32{1}, FlagsAdd, []string{FlagSeen}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.C:
	case <-time.After(time.Second):
		t.Fatal("no notification for a flag change")
	}
	w.Close()
	w.Close()
}

func TestMaildrop(t *testing.T) {
	const u = "u@example.com"
	s, _ := newTestStore(t, u)
	for i := range 3 {
		if err := s.Deliver(context.Background(), []string{u}, msg(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	d, err := s.OpenMaildrop(u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenMaildrop("u@EXAMPLE.com"); !errors.Is(err, ErrMaildropLocked) {
		t.Fatalf("second OpenMaildrop: %v", err)
	}
	if err := s.Deliver(context.Background(), []string{u}, msg("late")); err != nil {
		t.Fatal(err)
	}
	msgs, _ := d.Messages()
	if len(msgs) != 3 || msgs[0].Size != int64(len(msg("0"))) {
		t.Fatalf("Messages = %+v", msgs)
	}
	rc, err := d.Open(msgs[1].UID)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(b, msg("1")) {
		t.Fatalf("Open returned %q", b)
	}
	if _, err := d.Open("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open unknown: %v", err)
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
		t.Fatalf("after commit: %+v (UIDL must be stable: %q)", msgs2, msgs[1].UID)
	}
}

// TestRecovery simulates what a crash or another tool leaves on disk and
// checks that Open repairs it.
func TestRecovery(t *testing.T) {
	const u = "u@example.com"
	dir := t.TempDir()
	s := openTest(t, dir)
	if err := s.PutUser(u, "pw", 0); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := s.Deliver(context.Background(), []string{u}, msg(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateMailbox(u, "Gone"); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Messages(u, "INBOX")
	s.Close()

	root := filepath.Join(dir, "mail", "example.com", "u")
	write := func(rel string, body []byte) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A delivery that crashed before reaching new/: never acknowledged.
	write("tmp/1.M1P1Q1.test,S=5", []byte("half-"))
	// Deliveries whose index commit was lost, and one with flags in cur/.
	write("new/2000000000.M1P1Q9.test", msg("orphan new"))
	write("cur/2000000001.M1P1Q9.test:2,FS", msg("orphan cur"))
	// A message whose expunge unlinked the file but lost the index commit.
	if err := os.Remove(before.Messages[1].path); err != nil {
		t.Fatal(err)
	}
	// A folder made by hand (or an interrupted rename), and one removed.
	write(".Hand.Made/cur/3000000000.M1P1Q1.test:2,S", msg("by hand"))
	write(".Hand.Made/new/.keep-dir-only", nil)
	os.Remove(filepath.Join(root, ".Hand.Made/new/.keep-dir-only"))
	os.MkdirAll(filepath.Join(root, ".Hand.Made/tmp"), 0o700)
	if err := os.RemoveAll(filepath.Join(root, ".Gone")); err != nil {
		t.Fatal(err)
	}
	// A DeleteUser or DeleteMailbox interrupted before emptying the trash.
	write("../../../trash/x/cur/1", []byte("trash"))

	s = openTest(t, dir)
	defer s.Close()
	snap, err := s.Messages(u, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, m := range snap.Messages {
		subjects = append(subjects, strings.TrimSpace(string(readAll(t, m)[strings.Index(string(readAll(t, m)), "Hello ")+6:])))
	}
	if want := []string{"0", "2", "orphan new", "orphan cur"}; !slices.Equal(subjects, want) {
		t.Fatalf("INBOX after recovery = %v, want %v", subjects, want)
	}
	if snap.UIDValidity != before.UIDValidity || snap.Messages[0].UID != 1 || snap.Messages[1].UID != 3 {
		t.Fatalf("known messages changed UID or UIDVALIDITY: %+v", snap)
	}
	if snap.Messages[2].UID != 4 || !slices.Equal(snap.Messages[3].Flags, []string{`\Seen`, `\Flagged`}) {
		t.Fatalf("orphans indexed wrongly: %+v", snap.Messages[2:])
	}
	if tmp, _ := os.ReadDir(filepath.Join(root, "tmp")); len(tmp) != 0 {
		t.Fatal("stale tmp/ file survived recovery")
	}
	boxes, _ := s.Mailboxes(u)
	var names []string
	for _, b := range boxes {
		names = append(names, b.Name)
	}
	if !slices.Equal(names, []string{"Hand/Made", "INBOX"}) {
		t.Fatalf("mailboxes after recovery: %v", names)
	}
	if _, err := os.Stat(filepath.Join(dir, "trash")); !os.IsNotExist(err) {
		t.Fatal("trash not emptied")
	}
	info, _ := s.User(u)
	var want int64
	for _, m := range snap.Messages {
		want += m.Size
	}
	if hm, _ := s.Status(u, "Hand/Made"); info.UsedBytes != want+hm.Size {
		t.Fatalf("usage %d, want %d", info.UsedBytes, want+hm.Size)
	}
}

// TestConcurrentDeliver runs deliveries, flag changes and reads at once;
// run it with -race.
func TestConcurrentDeliver(t *testing.T) {
	users := []string{"a@example.com", "b@example.com", "c@example.com"}
	s, dir := newTestStore(t, users...)
	w, err := s.Watch("a@example.com", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const workers, each = 16, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for i := range workers {
		wg.Go(func() {
			for j := range each {
				rcpts := []string{users[(i+j)%3], users[(i+j+1)%3]}
				if err := s.Deliver(context.Background(), rcpts, msg(fmt.Sprintf("%d-%d", i, j))); err != nil {
					errs <- err
				}
				if _, err := s.SetFlags(users[i%3], "INBOX", []uint32{uint32(j + 1)}, FlagsAdd, []string{FlagSeen}); err != nil {
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
		uids := uidsOf(t, s, u, "INBOX")
		for i, uid := range uids {
			if uid != uint32(i+1) {
				t.Fatalf("%s: UIDs not dense and ascending: %v", u, uids)
			}
		}
		total += len(uids)
	}
	if total != workers*each*2 {
		t.Fatalf("%d messages stored, want %d", total, workers*each*2)
	}
	select {
	case <-w.C:
	default:
		t.Fatal("watch was never notified")
	}
	s.Close()
	s2 := openTest(t, dir)
	defer s2.Close()
	if got := len(uidsOf(t, s2, "b@example.com", "INBOX")); got == 0 {
		t.Fatal("messages lost across reopen")
	}
}

func TestContent(t *testing.T) {
	s, _ := newTestStore(t, "a@example.com")
	body := msg("content")
	if err := s.Deliver(context.Background(), []string{"a@example.com"}, body); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Messages("a@example.com", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	m := snap.Messages[0]
	buf := make([]byte, 0, 4096)
	got, err := m.Content(buf)
	if err != nil || !bytes.Equal(got, body) || &got[0] != &buf[:1][0] {
		t.Fatalf("Content = %q, %v; want the message in buf's storage", got, err)
	}

	if err := os.Truncate(m.path, int64(len(body)-1)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Content(nil); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Content of a file shorter than indexed: %v, want an error", err)
	}
	if err := os.Remove(m.path); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Content(nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Content of a removed file: %v, want ErrNotFound", err)
	}
}
