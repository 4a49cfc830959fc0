package imap

import (
	"strings"
	"testing"
)

// TestNotify checks NOTIFY (RFC 5465) beyond imaptest's script: changes
// other sessions make are told at once, with no command running, as
// STATUS for mailboxes other than the selected one and as LIST for the
// mailbox list and subscriptions; the selected mailbox keeps its usual
// updates; unserved events are refused with BADEVENT; NOTIFY NONE stops.
func TestNotify(t *testing.T) {
	env := newEnv(t, "")
	cfg := env.tls.ClientConfig(testServerName)
	tc := dialTranscript(t, env.tlsAddr, cfg).login()
	if caps := tc.ok("CAPABILITY")[0]; !strings.Contains(caps, " NOTIFY") {
		t.Fatalf("NOTIFY is not advertised: %s", caps)
	}
	tc.ok("CREATE Box")
	tc.ok("SELECT INBOX")
	tc.ok("NOTIFY SET (SELECTED (MessageNew MessageExpunge)) (PERSONAL (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange))")

	other := dialTranscript(t, env.tlsAddr, cfg).login()
	// RFC 5465 5.2: a new message in another mailbox, told with no
	// command running.
	other.ok("APPEND Box {3+}\r\nx\r\n")
	if l := tc.line(); !strings.HasPrefix(l, `* STATUS "Box" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY `) || !strings.HasSuffix(l, " HIGHESTMODSEQ 2)") {
		t.Fatalf("after APPEND elsewhere: %q", l)
	}
	// RFC 5465 5.3: a flag change there.
	other.ok("SELECT Box")
	other.ok(`STORE 1 +FLAGS (\Flagged)`)
	if l := tc.line(); !strings.HasPrefix(l, `* STATUS "Box" (`) || !strings.HasSuffix(l, " HIGHESTMODSEQ 3)") {
		t.Fatalf("after STORE elsewhere: %q", l)
	}
	// RFC 5465 5.4: mailboxes created, renamed and deleted.
	for _, c := range []struct{ cmd, want string }{
		{"CREATE New", `* LIST () "/" "New"`},
		{"RENAME New Newer", `* LIST () "/" "Newer" (OLDNAME ("New"))`},
		{"DELETE Newer", `* LIST (\NonExistent) "/" "Newer"`},
		// RFC 5465 5.5: subscriptions.
		{"SUBSCRIBE Box", `* LIST (\Subscribed) "/" "Box"`},
		{"UNSUBSCRIBE Box", `* LIST () "/" "Box"`},
	} {
		other.ok("%s", c.cmd)
		if l := tc.line(); l != c.want {
			t.Fatalf("after %s elsewhere: %q, want %q", c.cmd, l, c.want)
		}
	}
	// The selected mailbox: no STATUS, the usual EXISTS.
	deliver(t, env, "hello")
	if u := tc.ok("NOOP"); !contains(u, "* 1 EXISTS") || contains(u, "STATUS") {
		t.Fatalf("delivery to the selected mailbox: %q", u)
	}
	// RFC 5465 8: an event not served is refused, naming those that are.
	for _, c := range []string{"NOTIFY SET (PERSONAL (MessageNew (UID) MessageExpunge))", "NOTIFY SET (INBOXES (AnnotationChange))"} {
		_, st := tc.cmd("%s", c)
		if !strings.HasPrefix(st, "NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)]") {
			t.Fatalf("%s: %s", c, st)
		}
	}
	tc.status("BAD", "NOTIFY SET (NOWHERE (MessageNew))")
	// NOTIFY NONE: no more events.
	tc.ok("NOTIFY NONE")
	other.ok("CREATE Quiet")
	other.ok("APPEND Box {3+}\r\ny\r\n")
	if u := tc.ok("NOOP"); len(u) != 0 {
		t.Fatalf("after NOTIFY NONE: %q", u)
	}
	// STATUS with SET: the initial state of each mailbox with message
	// events (the special-use ones too), the selected one left out.
	if u := tc.ok("NOTIFY SET STATUS (PERSONAL (MessageNew MessageExpunge))"); contains(u, "INBOX") || !contains(u, `* STATUS "Box" (MESSAGES 2 UIDNEXT 3 `) || !contains(u, `* STATUS "Quiet" (MESSAGES 0 UIDNEXT 1 `) {
		t.Fatalf("NOTIFY SET STATUS: %q", u)
	}
	tc.ok("LOGOUT")
}
