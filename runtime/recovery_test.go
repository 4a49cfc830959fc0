package runtime_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/runtime"
)

// The index (bbolt) deleted while mail is on disk: the runtime starts on
// an empty index, the users are gone until the provider puts them back
// (apply), and then their mail is back from the Maildirs: every message in
// delivery order (new UIDs in that order, under a new UIDVALIDITY), their
// system flags (APPEND, COPY and STORE keep them in the Maildir names)
// and the folders.
func TestIndexRebuiltFromMaildir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ks := newKeystore(t, dir)
	h := start(t, dir, 5*time.Second)
	ls := configure(t, h, ks)
	imaps, smtps := ls["imaps"], ls["smtps"]

	mx := dialText(t, smtps.Addr(), ks.clientConfig())
	mx.smtpReply()
	mx.smtp("250", "EHLO go.example")
	for _, subject := range []string{"first", "second", "third"} {
		mx.smtp("250", "MAIL FROM:<someone@elsewhere.example>")
		mx.smtp("250", "RCPT TO:<alice@example.com>")
		mx.smtp("354", "DATA")
		mx.smtp("250", "Subject: %s\r\n\r\n%s body\r\n.", subject, subject)
	}
	mx.smtp("221", "QUIT")
	c := dialText(t, imaps.Addr(), ks.clientConfig())
	c.line()
	const appended = "Subject: fourth\r\n\r\nappended"
	for _, cmd := range []string{"LOGIN alice@example.com " + alicePassword, "SELECT INBOX",
		fmt.Sprintf("APPEND INBOX (\\Seen \\Flagged) {%d+}\r\n%s", len(appended), appended), "CREATE Projects", "COPY 2 Projects",
		`STORE 1 +FLAGS (\Answered)`, `STORE 4 -FLAGS (\Flagged)`, "LOGOUT"} {
		if got := c.imap("a", cmd); !strings.HasPrefix(got, "a OK") {
			t.Fatalf("%s: %q", cmd, got)
		}
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}

	if err := os.Remove(filepath.Join(dir, runtime.StoreDir, "index.db")); err != nil {
		t.Fatal(err)
	}
	h2 := start(t, dir, 5*time.Second)
	c = dialText(t, imaps.Addr(), ks.clientConfig())
	c.line()
	if got := c.imap("a", "LOGIN alice@example.com "+alicePassword); !strings.HasPrefix(got, "a NO") {
		t.Fatalf("login with no user in the index: %q", got)
	}
	h2.putUser("alice@example.com", alicePassword) // what apply does: the user resource is missing

	c = dialText(t, imaps.Addr(), ks.clientConfig())
	c.line()
	if got := c.imap("a", "LOGIN alice@example.com "+alicePassword); !strings.HasPrefix(got, "a OK") {
		t.Fatalf("login after the user came back: %q", got)
	}
	c.send("b SELECT INBOX")
	var exists string
	for l := c.line(); !strings.HasPrefix(l, "b "); l = c.line() {
		if strings.HasSuffix(l, " EXISTS") {
			exists = l
		}
	}
	if exists != "* 4 EXISTS" {
		t.Fatalf("INBOX after the rebuild: %q, want 4 messages", exists)
	}
	c.send("c FETCH 1:4 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
	var fetched []string
	for l := c.line(); !strings.HasPrefix(l, "c "); l = c.line() {
		fetched = append(fetched, l)
	}
	got := strings.Join(fetched, "\n")
	last := -1
	for _, subject := range []string{"first", "second", "third", "fourth"} {
		i := strings.Index(got, "Subject: "+subject)
		if i < last {
			t.Errorf("%s is missing or out of delivery order:\n%s", subject, got)
		}
		last = i
	}
	for _, want := range []string{`\* 1 FETCH \(UID 1 FLAGS \(\\Answered( \\Recent)?\) `, `\* 4 FETCH \(UID 4 FLAGS \(\\Seen( \\Recent)?\) `} {
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("the flags STORE left are lost (want %s):\n%s", want, got)
		}
	}
	c.send(`d STATUS Projects (MESSAGES)`)
	if l := c.line(); l != `* STATUS "Projects" (MESSAGES 1)` {
		t.Errorf("the folder made before the index was lost: %q", l)
	}
}
