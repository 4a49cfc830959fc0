package imap

import (
	"strings"
	"testing"
)

// Transcript tests of the smaller extensions clients sync with, each
// citing the section it checks (imaptest covers some of them too).

func TestExtensionsAdvertised(t *testing.T) {
	env := newEnv(t, "")
	tc := dialTranscript(t, env.tlsAddr, env.tls.ClientConfig(testServerName)).login()
	caps := tc.ok("CAPABILITY")[0]
	for _, c := range []string{"IMAP4rev1", "IMAP4rev2", "CONDSTORE", "QRESYNC", "SPECIAL-USE", "CREATE-SPECIAL-USE",
		"MOVE", "UIDPLUS", "ESEARCH", "SORT", "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT", "LIST-STATUS",
		"NAMESPACE", "ID", "ENABLE", "UNSELECT", "LITERAL+", "IDLE", "QUOTA", "APPENDLIMIT="} {
		if !strings.Contains(caps+" ", " "+c) {
			t.Errorf("%s is not advertised: %s", c, caps)
		}
	}
}

func TestSmallExtensions(t *testing.T) {
	env := newEnv(t, "")
	for _, s := range []string{"one", "two", "three"} {
		deliver(t, env, s)
	}
	tc := dialTranscript(t, env.tlsAddr, env.tls.ClientConfig(testServerName)).login()

	// RFC 2342 5 (NAMESPACE): one personal namespace, "/" as delimiter.
	if u := tc.ok("NAMESPACE"); !contains(u, `* NAMESPACE (("" "/")) NIL NIL`) {
		t.Fatalf("NAMESPACE: %q", u)
	}
	// RFC 5161 3.1 (ENABLE): what is enabled is listed, the rest ignored.
	if u := tc.ok("ENABLE CONDSTORE X-UNKNOWN"); !contains(u, "* ENABLED CONDSTORE") {
		t.Fatalf("ENABLE: %q", u)
	}
	// RFC 5819 4 (LIST-STATUS): STATUS for each listed mailbox.
	u := tc.ok(`LIST "" "INBOX" RETURN (STATUS (MESSAGES UIDNEXT))`)
	if !contains(u, `* LIST (`) || !contains(u, `* STATUS INBOX (MESSAGES 3 UIDNEXT 4)`) {
		t.Fatalf("LIST RETURN (STATUS): %q", u)
	}
	// RFC 7889 4 (APPENDLIMIT): in STATUS too.
	if u := tc.ok("STATUS INBOX (APPENDLIMIT)"); !contains(u, "APPENDLIMIT ") {
		t.Fatalf("STATUS APPENDLIMIT: %q", u)
	}
	tc.ok("SELECT INBOX")
	// RFC 4731 3.1 (ESEARCH): MIN, MAX, COUNT and ALL.
	if u := tc.ok("SEARCH RETURN (MIN MAX COUNT ALL) ALL"); !contains(u, "MIN 1 MAX 3 COUNT 3") || !contains(u, "ALL 1:3") {
		t.Fatalf("ESEARCH: %q", u)
	}
	if u := tc.ok("UID SEARCH RETURN (COUNT) SUBJECT two"); !contains(u, " UID COUNT 1") {
		t.Fatalf("UID ESEARCH: %q", u)
	}
	// RFC 7888 4 (LITERAL+): a non-synchronizing literal needs no "+".
	msg := "Subject: plus\r\n\r\nliteral plus\r\n"
	tc.send("a1 APPEND INBOX {" + itoa(len(msg)) + "+}\r\n" + msg + "\r\n")
	// RFC 4315 3 (UIDPLUS): APPENDUID carries UIDVALIDITY and the new UID.
	if _, st := tc.readUntil("a1"); !strings.HasPrefix(st, "OK [APPENDUID ") || !strings.Contains(st, " 4]") {
		t.Fatalf("APPEND with LITERAL+: %q", st)
	}
	// RFC 4315 2.1 (UID EXPUNGE): only the given UIDs go.
	tc.ok(`STORE 1:2 +FLAGS (\Deleted)`)
	if u := tc.ok("UID EXPUNGE 2"); !contains(u, "* 2 EXPUNGE") || contains(u, "* 1 EXPUNGE") {
		t.Fatalf("UID EXPUNGE: %q", u)
	}
	// RFC 3691 3 (UNSELECT): leaves the mailbox without expunging.
	tc.ok("UNSELECT")
	if u := tc.ok("STATUS INBOX (MESSAGES DELETED)"); !contains(u, "MESSAGES 3 DELETED 1") {
		t.Fatalf("after UNSELECT: %q", u)
	}
	tc.status("BAD", "FETCH 1 FLAGS") // RFC 3691: no mailbox selected any more
	// RFC 2177 3 (IDLE) in the authenticated state ends on DONE.
	tc.send("i1 IDLE\r\n")
	if l := tc.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("IDLE: %q", l)
	}
	tc.send("DONE\r\n")
	if _, st := tc.readUntil("i1"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("IDLE end: %q", st)
	}
}

func TestMultiAppend(t *testing.T) {
	env := newEnv(t, "")
	tc := dialTranscript(t, env.tlsAddr, env.tls.ClientConfig(testServerName)).login()
	m1, m2 := "Subject: one\r\n\r\n1\r\n", "Subject: two\r\n\r\n2\r\n"
	// RFC 3502 6.3.11: several messages in one APPEND; RFC 4315 3: their
	// UIDs as a set.
	tc.send("a1 APPEND INBOX (\\Seen) {" + itoa(len(m1)) + "+}\r\n" + m1 + " {" + itoa(len(m2)) + "+}\r\n" + m2 + "\r\n")
	if _, st := tc.readUntil("a1"); !strings.HasPrefix(st, "OK [APPENDUID ") || !strings.Contains(st, " 1:2]") {
		t.Fatalf("MULTIAPPEND: %q", st)
	}
	if u := tc.ok("STATUS INBOX (MESSAGES UNSEEN)"); !contains(u, "MESSAGES 2 UNSEEN 1") {
		t.Fatalf("after MULTIAPPEND: %q", u)
	}
	// All or none: a message that fails (over the quota) takes back the
	// ones before it.
	if err := env.store.PutUser(testUser, testPass, 100); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 200)
	tc.send("a2 APPEND INBOX {" + itoa(len(m1)) + "+}\r\n" + m1 + " {" + itoa(len(big)) + "+}\r\n" + big + "\r\n")
	if _, st := tc.readUntil("a2"); !strings.HasPrefix(st, "NO [OVERQUOTA]") {
		t.Fatalf("MULTIAPPEND over quota: %q", st)
	}
	if u := tc.ok("STATUS INBOX (MESSAGES)"); !contains(u, "MESSAGES 2") {
		t.Fatalf("a failed MULTIAPPEND left messages: %q", u)
	}
}
