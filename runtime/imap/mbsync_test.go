package imap

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
)

// TestMbsync syncs a user's folders with flags both ways with mbsync
// (isync), a real sync client, over implicit TLS: a first full sync, then
// changes on both sides, then a third run that must find nothing to do.
func TestMbsync(t *testing.T) {
	mbsync, err := exec.LookPath("mbsync")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("mbsync (isync) is not installed; .ci/run installs it")
		}
		t.Skip("mbsync (isync) not installed")
	}
	env := newEnv(t, "")
	for _, s := range []string{"one", "two", "three"} {
		deliver(t, env, s)
	}
	if err := env.store.CreateMailbox(testUser, "Work", store.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	work := []byte("From: carol@example.org\r\nSubject: plan\r\n\r\nthe plan\r\n")
	if _, _, err := env.store.Append(testUser, "Work", bytes.NewReader(work), int64(len(work)), store.AppendOptions{Flags: []string{store.FlagSeen}}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	local := filepath.Join(dir, "mail")
	if err := os.MkdirAll(local, 0o700); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(env.tlsAddr)
	cfg := filepath.Join(dir, "mbsyncrc")
	writeFile(t, dir, "mbsyncrc", []byte(fmt.Sprintf(`IMAPAccount test
Host localhost
Port %s
User %s
Pass "%s"
SSLType IMAPS
CertificateFile %s

IMAPStore remote
Account test

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns INBOX Work
Create Both
Expunge Both
SyncState *
`, port, testUser, testPass, env.tls.WriteCAFile(t, dir), local, local)))
	run := func(what string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, mbsync, "-c", cfg, "-a").CombinedOutput()
		if err != nil {
			t.Fatalf("mbsync (%s): %v\n%s", what, err, out)
		}
		return string(out)
	}
	// localFiles maps a folder's messages to their maildir flag letters.
	localFiles := func(folder string) []string {
		var out []string
		for _, sub := range []string{"cur", "new"} {
			entries, _ := os.ReadDir(filepath.Join(local, folder, sub))
			for _, e := range entries {
				_, info, _ := strings.Cut(e.Name(), ":2,")
				out = append(out, info)
			}
		}
		slices.Sort(out)
		return out
	}
	serverFlags := func(mailbox string) []string {
		snap, err := env.store.Messages(testUser, mailbox)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range snap.Messages {
			out = append(out, strings.Join(m.Flags, " "))
		}
		return out
	}

	run("first sync")
	if got := localFiles("INBOX"); len(got) != 3 {
		t.Fatalf("local INBOX after the first sync: %q", got)
	}
	if got := localFiles("Work"); !slices.Equal(got, []string{"S"}) {
		t.Fatalf("local Work after the first sync: %q, want one seen message", got)
	}

	// Both sides change: flag a message on the server, mark one seen and
	// add one locally.
	if _, err := env.store.SetFlags(testUser, "INBOX", []uint32{2}, store.FlagChange{Op: store.FlagsAdd, Flags: []string{store.FlagFlagged}}); err != nil {
		t.Fatal(err)
	}
	cur := filepath.Join(local, "INBOX", "cur")
	entries, _ := os.ReadDir(cur)
	if len(entries) == 0 {
		entries, _ = os.ReadDir(filepath.Join(local, "INBOX", "new"))
		cur = filepath.Join(local, "INBOX", "new")
	}
	first := ""
	for _, e := range entries {
		if first == "" || e.Name() < first {
			first = e.Name()
		}
	}
	base, _, _ := strings.Cut(first, ":2,")
	if err := os.Rename(filepath.Join(cur, first), filepath.Join(local, "INBOX", "cur", base+":2,S")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(local, "Work", "cur"), "1700000000.local.test:2,F", []byte("From: me@example.com\r\nSubject: local\r\n\r\nwritten offline\r\n"))

	run("second sync")
	inbox := serverFlags("INBOX")
	if !slices.Contains(inbox, `\Seen`) || !slices.Contains(inbox, `\Flagged`) {
		t.Fatalf("server INBOX flags after the second sync: %q; want one \\Seen (local) and one \\Flagged", inbox)
	}
	if got := serverFlags("Work"); len(got) != 2 || !slices.Contains(got, `\Flagged`) {
		t.Fatalf("server Work after the second sync: %q; want the local message, flagged", got)
	}
	if got := localFiles("INBOX"); !slices.Contains(got, "F") || !slices.Contains(got, "S") {
		t.Fatalf("local INBOX after the second sync: %q; want the server's \\Flagged", got)
	}

	// Stable: a third run changes nothing on either side.
	beforeLocal := fmt.Sprint(localFiles("INBOX"), localFiles("Work"))
	beforeServer := fmt.Sprint(serverFlags("INBOX"), serverFlags("Work"))
	run("third sync")
	if got := fmt.Sprint(localFiles("INBOX"), localFiles("Work")); got != beforeLocal {
		t.Fatalf("local changed on a sync with nothing to do: %s -> %s", beforeLocal, got)
	}
	if got := fmt.Sprint(serverFlags("INBOX"), serverFlags("Work")); got != beforeServer {
		t.Fatalf("server changed on a sync with nothing to do: %s -> %s", beforeServer, got)
	}
}
