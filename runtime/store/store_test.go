package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

func readAll(t *testing.T, s *Store, m MessageInfo) []byte {
	t.Helper()
	b, err := s.ReadBlob(m.Body, m.Size, nil)
	if err != nil {
		t.Fatalf("reading message %d: %v", m.UID, err)
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
	if err := s.CreateMailbox(u, "Gone", CreateOptions{}); err != nil {
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
	if err := os.Remove(string(before.Messages[1].Body)); err != nil {
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
		subjects = append(subjects, strings.TrimSpace(string(readAll(t, s, m)[strings.Index(string(readAll(t, s, m)), "Hello ")+6:])))
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
	if !slices.Equal(names, []string{"Archive", "Drafts", "Hand/Made", "INBOX", "Junk", "Sent", "Trash"}) {
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

// TestMaildirLayout checks what the embedded store leaves on disk: one
// Maildir per user, Maildir++ folders, deliveries in new/, APPEND in cur/
// with its flags in the name, nothing left in tmp/, mail gone with its
// user, and all of it the same after reopening.
func TestMaildirLayout(t *testing.T) {
	s, dir := newTestStore(t, "a@example.com", "b@example.com")
	root := func(u string) string { return filepath.Join(dir, "mail", "example.com", u) }
	if err := s.Deliver(context.Background(), []string{"a@example.com", "b@example.com"}, msg("one")); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"a", "b"} {
		if entries, _ := os.ReadDir(filepath.Join(root(u), "new")); len(entries) != 1 {
			t.Fatalf("%s new/ holds %d files, want 1", u, len(entries))
		}
		if tmp, _ := os.ReadDir(filepath.Join(root(u), "tmp")); len(tmp) != 0 {
			t.Fatalf("%s tmp/ not empty after delivery", u)
		}
	}
	if err := s.CreateMailbox("a@example.com", "Archive/2024", CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Append("a@example.com", "Archive/2024", bytes.NewReader(msg("old")), int64(len(msg("old"))), AppendOptions{Flags: []string{FlagSeen, FlagFlagged}}); err != nil {
		t.Fatal(err)
	}
	cur, _ := os.ReadDir(filepath.Join(root("a"), ".Archive.2024", "cur"))
	if len(cur) != 1 || !strings.HasSuffix(cur[0].Name(), ":2,FS") {
		t.Fatalf("APPEND left %v in the Maildir++ folder's cur/, want one file ending :2,FS", cur)
	}
	if err := s.RenameMailbox("a@example.com", "Archive", "Old"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root("a"), ".Old.2024", "cur")); err != nil {
		t.Fatalf("renamed folder missing: %v", err)
	}
	boxes, _ := s.Mailboxes("a@example.com")
	snap, _ := s.Messages("a@example.com", "Old/2024")
	s.Close()
	s2 := openTest(t, dir)
	defer s2.Close()
	boxes2, err := s2.Mailboxes("a@example.com")
	if err != nil || !slices.Equal(boxes, boxes2) {
		t.Fatalf("after reopen %+v, %v; before %+v", boxes2, err, boxes)
	}
	snap2, err := s2.Messages("a@example.com", "Old/2024")
	if err != nil || len(snap2.Messages) != 1 || snap2.Messages[0].UID != snap.Messages[0].UID || !slices.Equal(snap2.Messages[0].Flags, snap.Messages[0].Flags) {
		t.Fatalf("after reopen %+v, %v; before %+v", snap2, err, snap)
	}
	if err := s2.DeleteUser("b@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root("b")); !os.IsNotExist(err) {
		t.Fatalf("mail directory survived DeleteUser: %v", err)
	}
}

func TestReadBlobShortFile(t *testing.T) {
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
	if err := os.Truncate(string(m.Body), int64(len(body)-1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadBlob(m.Body, m.Size, nil); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadBlob of a file shorter than indexed: %v, want an error", err)
	}
	if err := os.Remove(string(m.Body)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadBlob(m.Body, m.Size, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadBlob of a removed file: %v, want ErrNotFound", err)
	}
	if _, err := s.OpenBlob(m.Body); !errors.Is(err, ErrNotFound) {
		t.Fatalf("OpenBlob of a removed file: %v, want ErrNotFound", err)
	}
}

// System flags set by SetFlags are in the message file's name
// (maildir(5) ":2,"), so that an index rebuilt from the Maildir has them;
// a path read before the rename still reads the message; and a rename
// whose index commit was lost is matched by the file's unique name.
func TestFlagsInMaildirNames(t *testing.T) {
	const u = "u@example.com"
	dir := t.TempDir()
	s := openTest(t, dir)
	if err := s.PutUser(u, "pw", 0); err != nil {
		t.Fatal(err)
	}
	for _, subject := range []string{"one", "two"} {
		if err := s.Deliver(context.Background(), []string{u}, msg(subject)); err != nil {
			t.Fatal(err)
		}
	}
	before, err := s.Messages(u, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetFlags(u, "INBOX", []uint32{1, 2}, FlagChange{Op: FlagsAdd, Flags: []string{FlagSeen, FlagFlagged, "$Label"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetFlags(u, "INBOX", []uint32{2}, FlagChange{Op: FlagsRemove, Flags: []string{FlagFlagged}}); err != nil {
		t.Fatal(err)
	}
	inbox := filepath.Join(dir, "mail", "example.com", "u")
	names := func() []string {
		cur, _ := filepath.Glob(filepath.Join(inbox, "cur", "*"))
		nw, _ := filepath.Glob(filepath.Join(inbox, "new", "*"))
		var out []string
		for _, p := range append(cur, nw...) {
			rel, _ := filepath.Rel(inbox, p)
			out = append(out, rel)
		}
		slices.Sort(out)
		return out
	}
	got := names()
	if len(got) != 2 || !strings.HasSuffix(got[0], ":2,FS") || !strings.HasSuffix(got[1], ":2,S") || !strings.HasPrefix(got[0], "cur/") {
		t.Fatalf("message files after STORE: %v, want cur/<name>:2,FS and cur/<name>:2,S", got)
	}
	// A FETCH that read the path before the flag change still reads.
	if b, err := s.ReadBlob(before.Messages[0].Body, before.Messages[0].Size, nil); err != nil || !strings.Contains(string(b), "Subject: one") {
		t.Errorf("ReadBlob of the path before the rename: %q, %v", b, err)
	}
	if r, err := s.OpenBlob(before.Messages[1].Body); err != nil {
		t.Errorf("OpenBlob of the path before the rename: %v", err)
	} else {
		r.Close()
	}
	// A rename whose index commit a crash lost: recovery keeps the UID and
	// takes the flags of the name.
	if err := os.Rename(filepath.Join(inbox, got[1]), filepath.Join(inbox, strings.TrimSuffix(got[1], "S")+"RS")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, dir)
	after, err := s.Messages(u, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Messages) != 2 || after.Messages[1].UID != 2 || !slices.Equal(after.Messages[1].Flags, []string{FlagSeen, FlagAnswered, "$Label"}) {
		t.Errorf("after recovery: %+v; want UID 2 with \\Seen \\Answered $Label", after.Messages)
	}
	s.Close()
	// The index lost: the system flags come back from the names.
	if err := os.Remove(filepath.Join(dir, "index.db")); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	defer s.Close()
	if err := s.PutUser(u, "pw", 0); err != nil {
		t.Fatal(err)
	}
	rebuilt, err := s.Messages(u, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	var flags [][]string
	for _, m := range rebuilt.Messages {
		flags = append(flags, m.Flags)
	}
	if len(flags) != 2 || !slices.Equal(flags[0], []string{FlagSeen, FlagFlagged}) || !slices.Equal(flags[1], []string{FlagSeen, FlagAnswered}) {
		t.Errorf("flags after the index was rebuilt: %v", flags)
	}
}

func TestCompareMaildirNames(t *testing.T) {
	names := []string{"hand-made", "1700000001.M5P1Q1.h", "1700000000.M999999P1Q2.h", "1700000000.M1000P1Q1.h,S=3:2,S", "1700000000.M99P1Q9.h"}
	slices.SortFunc(names, compareMaildirNames)
	want := []string{"1700000000.M99P1Q9.h", "1700000000.M1000P1Q1.h,S=3:2,S", "1700000000.M999999P1Q2.h", "1700000001.M5P1Q1.h", "hand-made"}
	if !slices.Equal(names, want) {
		t.Errorf("sorted: %v, want %v", names, want)
	}
}

// Flag changes racing expunges and each other (imaptest's stress mode: ten
// sessions storing \Seen and \Deleted and expunging in one mailbox): no
// change fails because another renamed or removed the file first, and no
// file of an expunged message is left for a rebuilt index to bring back.
func TestFlagChangesRaceExpunge(t *testing.T) {
	const u = "u@example.com"
	dir := t.TempDir()
	s := openTest(t, dir)
	if err := s.PutUser(u, "pw", 0); err != nil {
		t.Fatal(err)
	}
	const n = 60
	for i := range n {
		if err := s.Deliver(context.Background(), []string{u}, msg(fmt.Sprint("m", i))); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := range 200 {
				uids := []uint32{uint32((w*7+i)%n + 1), uint32((w*13+i*3)%n + 1)}
				ch := FlagChange{Op: FlagsAdd, Flags: []string{FlagSeen}}
				switch i % 4 {
				case 1:
					ch = FlagChange{Op: FlagsRemove, Flags: []string{FlagSeen}}
				case 2:
					ch = FlagChange{Op: FlagsAdd, Flags: []string{FlagDeleted, FlagFlagged}}
				case 3:
					ch = FlagChange{Op: FlagsReplace, Flags: []string{FlagAnswered}}
				}
				if _, err := s.SetFlags(u, "INBOX", uids, ch); err != nil {
					t.Errorf("SetFlags %v: %v", uids, err)
					return
				}
				if w == 0 && i%10 == 0 {
					if _, err := s.Expunge(u, "INBOX", nil); err != nil {
						t.Errorf("Expunge: %v", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	all := uidsOf(t, s, u, "INBOX")
	if _, err := s.SetFlags(u, "INBOX", all, FlagChange{Op: FlagsAdd, Flags: []string{FlagDeleted}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expunge(u, "INBOX", nil); err != nil {
		t.Fatal(err)
	}
	inbox := filepath.Join(dir, "mail", "example.com", "u")
	left, _ := filepath.Glob(filepath.Join(inbox, "cur", "*"))
	nw, _ := filepath.Glob(filepath.Join(inbox, "new", "*"))
	if left = append(left, nw...); len(left) != 0 {
		t.Errorf("files left after every message was expunged: %v", left)
	}
	s.Close()
	if err := os.Remove(filepath.Join(dir, "index.db")); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	defer s.Close()
	if err := s.PutUser(u, "pw", 0); err != nil {
		t.Fatal(err)
	}
	if got := uidsOf(t, s, u, "INBOX"); len(got) != 0 {
		t.Errorf("expunged messages back after the index was rebuilt: %v", got)
	}
}

// TestClosedStoreMailboxArgs pins which check comes first once the store
// is closed: CREATE and RENAME check their arguments before they take the
// lock, SUBSCRIBE takes the read lock between the address and the name.
func TestClosedStoreMailboxArgs(t *testing.T) {
	s, _ := newTestStore(t, "user@example.com")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	const u = "user@example.com"
	for _, tc := range []struct {
		name          string
		fn            func(address, mailbox string) error
		badNameClosed error // a good address and a bad name, once closed
	}{
		{"CreateMailbox", func(a, m string) error { return s.CreateMailbox(a, m, CreateOptions{}) }, ErrInvalidMailbox},
		{"RenameMailbox", func(a, m string) error { return s.RenameMailbox(a, "INBOX", m) }, ErrInvalidMailbox},
		{"Subscribe", func(a, m string) error { return s.Subscribe(a, m, true) }, ErrClosed},
	} {
		if err := tc.fn("no address", "bad//name"); !errors.Is(err, ErrInvalidAddress) {
			t.Errorf("%s with a bad address: %v, want ErrInvalidAddress", tc.name, err)
		}
		if err := tc.fn(u, "bad//name"); !errors.Is(err, tc.badNameClosed) {
			t.Errorf("%s with a bad name: %v, want %v", tc.name, err, tc.badNameClosed)
		}
		if err := tc.fn(u, "Good"); !errors.Is(err, ErrClosed) {
			t.Errorf("%s with good arguments: %v, want ErrClosed", tc.name, err)
		}
	}
}
