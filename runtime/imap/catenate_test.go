package imap

import (
	"fmt"
	"strings"
	"testing"
)

// lit is s as a non-synchronizing literal (RFC 7888).
func lit(s string) string { return "{" + itoa(len(s)) + "+}\r\n" + s }

// TestCatenate checks CATENATE (RFC 4469) beyond imaptest's script: URLs
// in both forms with SECTION and PARTIAL, and that a bad URL appends
// nothing, names the URL, and leaves the connection in step.
func TestCatenate(t *testing.T) {
	env := newEnv(t, "")
	deliver(t, env, "one") // UID 1 of INBOX
	tc := dialTranscript(t, env.tlsAddr, env.tls.ClientConfig(testServerName)).login()
	if caps := tc.ok("CAPABILITY")[0]; !strings.Contains(caps, " CATENATE") {
		t.Fatalf("CATENATE is not advertised: %s", caps)
	}
	tc.ok("CREATE Out")
	v := strings.Fields(tc.ok("STATUS INBOX (UIDVALIDITY)")[0])
	validity := strings.TrimSuffix(v[len(v)-1], ")")

	// RFC 4469 5: the parts in order; RFC 5092 6: a server-relative path
	// and an absolute URL naming the logged-in user.
	_, st := tc.cmd("APPEND Out (\\Seen) CATENATE (URL \"/INBOX/;UID=1/;SECTION=HEADER\" TEXT %s URL \"imap://alice%%40example.com;AUTH=*@mail.example.com/INBOX;UIDVALIDITY=%s/;UID=1/;SECTION=1/;PARTIAL=0.7\")",
		lit("new body\r\n"), validity)
	if !strings.HasPrefix(st, "OK [APPENDUID ") || !strings.HasSuffix(strings.Fields(st)[3], "1]") {
		t.Fatalf("APPEND CATENATE: %s", st)
	}
	tc.ok("SELECT Out")
	u := tc.ok("FETCH 1 (FLAGS BODY.PEEK[])")
	want := "From: bob@example.org\r\nTo: alice@example.com\r\nSubject: one\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n\r\nnew body\r\nbody of"
	if !contains(u, "BODY[] {"+itoa(len(want))+"}"+want+")") || !contains(u, `\Seen`) {
		t.Fatalf("catenated message: %q, want body %q", u, want)
	}

	// A URL the server cannot serve: NO [BADURL url], nothing appended.
	for _, bad := range []string{
		"/INBOX;UIDVALIDITY=1/;UID=1",                 // UIDVALIDITY does not match
		"/INBOX/;UID=99",                              // no such message
		"/Nope/;UID=1",                                // no such mailbox
		"imap://bob%40example.com@host/INBOX/;UID=1",  // another user's mail
		"/INBOX/;UID=1/;SECTION=BOGUS",                // not a section
		"/INBOX/;UID=1/;URLAUTH=anonymous:internal:0", // URLAUTH is not served
		"INBOX/;UID=1",                                // relative
	} {
		_, st := tc.cmd("APPEND Out CATENATE (TEXT %s URL %q TEXT %s)", lit("Subject: x\r\n\r\n"), bad, lit("tail\r\n"))
		if !strings.HasPrefix(st, "NO [BADURL "+bad+"]") {
			t.Errorf("URL %q: got %q, want NO [BADURL ...]", bad, st)
		}
	}
	// After a bad URL, a synchronizing literal gets no "+": the command
	// ends there and the connection stays in step.
	_, st = tc.cmd("APPEND Out CATENATE (URL \"/INBOX/;UID=99\" TEXT {5}")
	if !strings.HasPrefix(st, "NO [BADURL") {
		t.Fatalf("bad URL before a synchronizing literal: %s", st)
	}
	tc.ok("NOOP")
	// MULTIAPPEND with CATENATE (RFC 3502, RFC 4469): all or none.
	_, st = tc.cmd("APPEND Out CATENATE (TEXT %s) CATENATE (URL \"/INBOX/;UID=99\")", lit("Subject: first\r\n\r\n"))
	if !strings.HasPrefix(st, "NO [BADURL") {
		t.Fatalf("MULTIAPPEND with a bad URL: %s", st)
	}
	// A missing target answers TRYCREATE, as a plain APPEND does, even
	// when a URL is bad too.
	_, st = tc.cmd("APPEND Missing CATENATE (URL \"/INBOX/;UID=99\")")
	if !strings.HasPrefix(st, "NO [TRYCREATE]") {
		t.Fatalf("APPEND CATENATE to a missing mailbox: %s", st)
	}
	if u := tc.ok("STATUS Out (MESSAGES)"); !contains(u, "MESSAGES 1)") {
		t.Fatalf("a failed CATENATE appended something: %q", u)
	}
	// An unknown part kind is the client's error.
	tc.status("BAD", "APPEND Out CATENATE (FILE \"/etc/passwd\")")
	tc.ok("NOOP")
}

func TestParseMessageURL(t *testing.T) {
	for _, c := range []struct {
		url, mailbox, section string
		validity, uid         uint32
		partial               string
	}{
		{url: "/INBOX/;UID=3", mailbox: "INBOX", uid: 3, section: "[]  []"},
		{url: "/inbox;uidvalidity=7/;uid=3/;section=1.2.MIME", mailbox: "INBOX", validity: 7, uid: 3, section: "[1 2] MIME []"},
		{url: "/Caf%C3%A9%20Bar/Sub/;UID=1/;SECTION=HEADER.FIELDS%20(From%20To)", mailbox: "Café Bar/Sub", uid: 1, section: "[] HEADER [From To]"},
		{url: "IMAP://alice%40EXAMPLE.COM@host:993/INBOX/;UID=2/;PARTIAL=10", mailbox: "INBOX", uid: 2, section: "[]  []", partial: "10+"},
		{url: "imap://host/INBOX/;UID=2/;PARTIAL=10.5", mailbox: "INBOX", uid: 2, section: "[]  []", partial: "10.5"},
	} {
		u, err := parseMessageURL(c.url, testUser)
		if err != nil {
			t.Errorf("%s: %v", c.url, err)
			continue
		}
		section := fmt.Sprintf("%v %s %v", u.section.Part, u.section.Specifier, u.section.HeaderFields)
		if u.mailbox != c.mailbox || u.uidValidity != c.validity || u.uid != c.uid || section != c.section {
			t.Errorf("%s: got %+v, section %s", c.url, u, section)
		}
		var partial string
		if p := u.section.Partial; p != nil {
			partial = itoa(int(p.Offset)) + "." + itoa(int(p.Size))
			if p.Size > 1<<40 {
				partial = itoa(int(p.Offset)) + "+"
			}
		}
		if partial != c.partial {
			t.Errorf("%s: partial %q, want %q", c.url, partial, c.partial)
		}
	}
	for _, bad := range []string{
		"", "/", "/INBOX", "/INBOX/;UID=0", "/INBOX/;UID=01", "/INBOX/;UID=x", "/INBOX;UIDVALIDITY=0/;UID=1",
		"/INBOX/;SECTION=1/;UID=1", "/INBOX/;UID=1/;PARTIAL=1.0", "/INBOX/;UID=1/;EXPIRE=2030-01-01T00:00:00Z",
		"imap://bob%40example.com@host/INBOX/;UID=1", "imap://host", "/%ZZ/;UID=1",
	} {
		if u, err := parseMessageURL(bad, testUser); err == nil {
			t.Errorf("%q parsed: %+v", bad, u)
		}
	}
}
