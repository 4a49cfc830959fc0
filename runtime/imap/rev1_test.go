package imap

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Transcript tests of what IMAP4rev1 clients rely on and IMAP4rev2
// dropped or left to extensions, each citing the section it checks.

func (tc *transcript) session(env *testEnv) *transcript {
	return dialTranscript(tc.t, env.tlsAddr, env.tls.ClientConfig(testServerName)).login()
}

func TestRecent(t *testing.T) {
	env := newEnv(t, "")
	deliver(t, env, "one")
	deliver(t, env, "two")
	a := dialTranscript(t, env.tlsAddr, env.tls.ClientConfig(testServerName)).login()
	b := a.session(env)
	// RFC 3501 6.3.2: EXAMINE reports \Recent without claiming it.
	if u := b.ok("EXAMINE INBOX"); !contains(u, "* 2 RECENT") {
		t.Fatalf("EXAMINE: %q", u)
	}
	// RFC 3501 6.3.10: STATUS RECENT counts messages no session claimed.
	if u := b.ok("STATUS INBOX (RECENT MESSAGES)"); !contains(u, "RECENT 2") {
		t.Fatalf("STATUS: %q", u)
	}
	// RFC 3501 2.3.2: the first session to SELECT gets them.
	if u := a.ok("SELECT INBOX"); !contains(u, "* 2 RECENT") {
		t.Fatalf("SELECT: %q", u)
	}
	if u := a.ok("FETCH 1 FLAGS"); !contains(u, `FLAGS (\Recent)`) {
		t.Fatalf("FETCH FLAGS: %q", u)
	}
	// RFC 3501 6.4.4: RECENT, NEW (recent and unseen), OLD.
	a.ok(`STORE 2 +FLAGS (\Seen)`)
	if u := a.ok("SEARCH RECENT"); !contains(u, "* SEARCH 1 2") {
		t.Fatalf("SEARCH RECENT: %q", u)
	}
	if u := a.ok("SEARCH NEW"); !contains(u, "* SEARCH 1") || contains(u, "* SEARCH 1 2") {
		t.Fatalf("SEARCH NEW: %q", u)
	}
	if u := a.ok("SEARCH OLD"); !contains(u, "* SEARCH") || contains(u, "* SEARCH 1") {
		t.Fatalf("SEARCH OLD: %q", u)
	}
	c := a.session(env)
	if u := c.ok("SELECT INBOX"); !contains(u, "* 0 RECENT") {
		t.Fatalf("second SELECT: %q", u)
	}
	// RFC 3501 7.3.2: a delivery is recent in one session, told with RECENT.
	deliver(t, env, "three")
	ua, uc := a.ok("NOOP"), c.ok("NOOP")
	if !contains(ua, "* 3 EXISTS") || !contains(uc, "* 3 EXISTS") {
		t.Fatalf("NOOP after delivery: %q, %q", ua, uc)
	}
	if n := strings.Count(strings.Join(append(ua, uc...), "\n"), "* 3 RECENT"); n != 1 && !(contains(ua, "* 3 RECENT") || contains(uc, "* 1 RECENT")) {
		t.Fatalf("the new message is recent in %d sessions: %q, %q", n, ua, uc)
	}
	// IMAP4rev2 has no \Recent (RFC 9051 appendix E).
	d := a.session(env)
	d.ok("ENABLE IMAP4rev2")
	if u := d.ok("SELECT INBOX"); contains(u, "RECENT") {
		t.Fatalf("SELECT after ENABLE IMAP4rev2: %q", u)
	}
}

func TestFlagsAnnounceNewKeywords(t *testing.T) {
	env := newEnv(t, "")
	deliver(t, env, "one")
	a := dialTranscript(t, env.tlsAddr, env.tls.ClientConfig(testServerName)).login()
	b := a.session(env)
	a.ok("SELECT INBOX")
	b.ok("SELECT INBOX")
	// RFC 3501 7.2.6: FLAGS lists the flags in use; a client is told
	// before it sees a message with a keyword it does not know.
	u := b.ok("STORE 1 +FLAGS ($Label1)")
	if len(u) < 3 || !strings.HasPrefix(u[0], "* FLAGS (") || !strings.Contains(u[0], "$Label1") || !strings.Contains(u[1], "PERMANENTFLAGS") {
		t.Fatalf("STORE with a new keyword: %q", u)
	}
	u = a.ok("NOOP")
	if len(u) < 3 || !strings.HasPrefix(u[0], "* FLAGS (") || !strings.Contains(u[0], "$Label1") || !strings.Contains(u[2], "$Label1") {
		t.Fatalf("NOOP in the other session: %q", u)
	}
	if u := a.ok(`STORE 1 -FLAGS ($Label1)`); contains(u, "* FLAGS") {
		t.Fatalf("FLAGS sent again for a known keyword: %q", u)
	}
}

func TestID(t *testing.T) {
	env := newEnv(t, "")
	tc := dialTranscript(t, env.tlsAddr, env.tls.ClientConfig(testServerName))
	// RFC 2971 3.1: ID works in any state, with NIL or field pairs.
	if u := tc.ok(`ID ("name" "imaptest" "version" NIL)`); !contains(u, `* ID ("name" "mailstack")`) {
		t.Fatalf("ID: %q", u)
	}
	if u := tc.ok("ID NIL"); !contains(u, "* ID (") {
		t.Fatalf("ID NIL: %q", u)
	}
	tc.status("BAD", `ID ("name")`)
	if u := tc.ok("CAPABILITY"); !strings.Contains(u[0], " ID") {
		t.Fatalf("ID not advertised: %q", u)
	}
}

func TestListSubscriptionsAndSpecialUse(t *testing.T) {
	env := newEnv(t, "")
	tc := dialTranscript(t, env.tlsAddr, env.tls.ClientConfig(testServerName)).login()
	// RFC 6154 2: a new user's special-use mailboxes carry their attribute.
	u := tc.ok(`LIST "" "%%"`)
	for _, want := range []string{`\Sent) "/" "Sent"`, `\Drafts) "/" "Drafts"`, `\Trash) "/" "Trash"`, `\Junk) "/" "Junk"`, `\Archive) "/" "Archive"`} {
		if !contains(u, want) {
			t.Fatalf("LIST %%: %q lacks %q", u, want)
		}
	}
	tc.ok("CREATE a/b/c")
	tc.ok("SUBSCRIBE a/b/c")
	tc.ok("SUBSCRIBE gone")
	// RFC 3501 6.3.9: LSUB marks an unsubscribed parent \Noselect where
	// "%" stops above a subscription.
	if u := tc.ok(`LSUB "" "%%"`); !contains(u, `LSUB (\Noselect) "/" "a"`) || !contains(u, `"gone"`) {
		t.Fatalf("LSUB %%: %q", u)
	}
	if u := tc.ok(`LSUB "" "*"`); contains(u, `"a"`) || !contains(u, `"a/b/c"`) {
		t.Fatalf("LSUB *: %q", u)
	}
	// RFC 5258 3.1, 3.5: a subscription outlives its mailbox and shows
	// \NonExistent; RECURSIVEMATCH reports subscribed children as CHILDINFO.
	if u := tc.ok(`LIST (SUBSCRIBED) "" "*"`); !contains(u, `\NonExistent`) || !contains(u, `"gone"`) {
		t.Fatalf("LIST (SUBSCRIBED): %q", u)
	}
	if u := tc.ok(`LIST (SUBSCRIBED RECURSIVEMATCH) "" "%%"`); !contains(u, `"a" (CHILDINFO ("SUBSCRIBED"))`) {
		t.Fatalf("LIST (SUBSCRIBED RECURSIVEMATCH): %q", u)
	}
	// RFC 3501 5.1.3: a pattern that is not modified UTF-7 matches nothing
	// and is no server error.
	if u := tc.ok(`LIST "" "&-x&"`); len(u) != 0 {
		t.Fatalf("LIST with a bad pattern: %q", u)
	}
}

func TestQuota(t *testing.T) {
	env := newEnv(t, "")
	if err := env.store.PutUser(testUser, testPass, 10<<10); err != nil {
		t.Fatal(err)
	}
	deliver(t, env, "one")
	tc := dialTranscript(t, env.tlsAddr, env.tls.ClientConfig(testServerName)).login()
	if u := tc.ok("CAPABILITY"); !strings.Contains(u[0], " QUOTA ") || !strings.Contains(u[0], "QUOTA=RES-STORAGE") {
		t.Fatalf("QUOTA not advertised: %q", u)
	}
	// RFC 9208 4.3.2: the roots of a mailbox, then each root's resources.
	u := tc.ok("GETQUOTAROOT INBOX")
	if len(u) != 2 || u[0] != `* QUOTAROOT INBOX ""` || u[1] != `* QUOTA "" (STORAGE 1 10)` {
		t.Fatalf("GETQUOTAROOT: %q", u)
	}
	// RFC 9208 4.3.1.
	if u := tc.ok(`GETQUOTA ""`); len(u) != 1 || u[0] != `* QUOTA "" (STORAGE 1 10)` {
		t.Fatalf("GETQUOTA: %q", u)
	}
	tc.status("NO [NONEXISTENT]", `GETQUOTA "other"`)
	tc.status("NO [NONEXISTENT]", "GETQUOTAROOT Nope")
	// RFC 9208 4.1: no QUOTASET, so SETQUOTA is refused.
	tc.status("NO", `SETQUOTA "" (STORAGE 100)`)
	// RFC 9208 5.1: APPEND beyond the limit is refused with OVERQUOTA.
	big := strings.Repeat("x", 12<<10)
	tc.send("a1 APPEND INBOX {" + itoa(len(big)) + "+}\r\n" + big + "\r\n")
	if _, st := tc.readUntil("a1"); !strings.HasPrefix(st, "NO [OVERQUOTA]") {
		t.Fatalf("APPEND over quota: %q", st)
	}
	// A user without a limit has no quota root.
	if err := env.store.PutUser(testUser, testPass, 0); err != nil {
		t.Fatal(err)
	}
	if u := tc.ok("GETQUOTAROOT INBOX"); len(u) != 1 || u[0] != "* QUOTAROOT INBOX" {
		t.Fatalf("GETQUOTAROOT without a limit: %q", u)
	}
}

func TestCreateSpecialUse(t *testing.T) {
	env := newEnv(t, "")
	tc := dialTranscript(t, env.tlsAddr, env.tls.ClientConfig(testServerName)).login()
	tc.ok("DELETE Trash")
	// RFC 6154 3: CREATE with USE.
	tc.ok(`CREATE Papierkorb (USE (\Trash))`)
	if u := tc.ok(`LIST (SPECIAL-USE) "" "*"`); !contains(u, `(\HasNoChildren \Trash) "/" "Papierkorb"`) || contains(u, `"Work"`) {
		t.Fatalf("LIST (SPECIAL-USE): %q", u)
	}
	// RFC 6154 6: a use the server does not offer.
	tc.status("NO [USEATTR]", `CREATE Everything (USE (\All))`)
	if u := tc.ok("CAPABILITY"); !strings.Contains(u[0], "CREATE-SPECIAL-USE") || !strings.Contains(u[0], "SPECIAL-USE") {
		t.Fatalf("not advertised: %q", u)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestClientInputIsNeverServerBug sends input that once reached the
// server's internals: deep nesting and LIST patterns with special
// characters get BAD or a normal answer, never NO [SERVERBUG] (RFC 9051
// 7.1: SERVERBUG is for the server's own faults).
func TestClientInputIsNeverServerBug(t *testing.T) {
	env := newEnv(t, "")
	deliver(t, env, "one")
	tc := dialTranscript(t, env.tlsAddr, env.tls.ClientConfig(testServerName)).login()
	tc.ok("SELECT INBOX")
	for _, tcase := range []struct{ name, cmd, want string }{
		{"nested parentheses", "SEARCH " + strings.Repeat("(", 2000) + "ALL" + strings.Repeat(")", 2000), "BAD"},
		{"unknown search key", "SEARCH /", "BAD"},
		{"sequence set that does not parse", "FETCH 1:: FLAGS", "BAD"},
		{"nested NOT", "SEARCH " + strings.Repeat("NOT ", 2000) + "ALL", "OK"},
		{"nested OR", "SEARCH " + strings.Repeat("OR ", 2000) + strings.Repeat("ALL ", 2000) + "ALL", "OK"},
		{"pattern with specials", `LIST "" !#$&'+,-.0123456789:;<=>?@^_` + "`" + `|[}%*`, "OK"},
		{"mailbox name not modified UTF-7", `SELECT !#$&'+,-.0123456789:;<=>?@^_` + "`" + `|[}`, "NO [CANNOT]"},
		{"quoted string the line's end leaves open", `SELECT "INBOX`, "BAD [CLIENTBUG]"},
	} {
		t.Run(tcase.name, func(t *testing.T) {
			_, st := tc.cmd("%s", tcase.cmd)
			if !strings.HasPrefix(st, tcase.want) || strings.Contains(st, "SERVERBUG") {
				t.Fatalf("%.60s...: %q, want %s", tcase.cmd, st, tcase.want)
			}
		})
	}
}

func TestSort(t *testing.T) {
	env := newEnv(t, "")
	for _, m := range []struct{ subject, from, date string }{
		{"Re: beta", "Zed <zed@example.org>", "Tue, 03 Jan 2006 10:00:00 +0000"},
		{"alpha", "amy@example.org", "Mon, 02 Jan 2006 10:00:00 +0000"},
		{"[list] Fwd: Beta (fwd)", "Bob <bob@example.org>", "Wed, 04 Jan 2006 10:00:00 +0000"},
	} {
		body := "From: " + m.from + "\r\nTo: alice@example.com\r\nSubject: " + m.subject + "\r\nDate: " + m.date + "\r\n\r\nbody\r\n"
		if err := env.store.Deliver(t.Context(), []string{testUser}, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	tc := dialTranscript(t, env.tlsAddr, env.tls.ClientConfig(testServerName)).login()
	tc.ok("SELECT INBOX")
	for _, c := range []struct{ cmd, want string }{
		// RFC 5256 2.1: "Re: beta" and "[list] Fwd: Beta (fwd)" share the base subject BETA.
		{"SORT (SUBJECT) UTF-8 ALL", "* SORT 2 1 3"},
		{"SORT (REVERSE SUBJECT) UTF-8 ALL", "* SORT 1 3 2"},
		// RFC 5256 3: FROM sorts by the first address's mailbox.
		{"SORT (FROM) UTF-8 ALL", "* SORT 2 3 1"},
		{"SORT (DATE) UTF-8 ALL", "* SORT 2 1 3"},
		{"SORT (ARRIVAL) UTF-8 NOT SUBJECT alpha", "* SORT 1 3"},
		{"UID SORT (REVERSE DATE) UTF-8 ALL", "* SORT 3 1 2"},
		// RFC 5957: DISPLAYFROM sorts by display name, else address.
		{"SORT (DISPLAYFROM) UTF-8 ALL", "* SORT 2 3 1"},
		// RFC 5267 3.2 (ESORT): ESEARCH, ALL in sort order.
		{"SORT RETURN (MIN MAX COUNT ALL) (SUBJECT) UTF-8 ALL", "MIN 2 MAX 3 COUNT 3 ALL 2,1,3"},
	} {
		if u := tc.ok("%s", c.cmd); !contains(u, c.want) {
			t.Fatalf("%s: %q, want %q", c.cmd, u, c.want)
		}
	}
	tc.status("BAD", "SORT (NOSUCHKEY) UTF-8 ALL")
	tc.status("NO [BADCHARSET]", "SORT (SUBJECT) KOI8-R ALL")
}

func TestBaseSubject(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Hello", "HELLO"},
		{"Re: Hello", "HELLO"},
		{"RE: re: fwd: Hello (fwd) (FWD)", "HELLO"},
		{"[list] Re: [other] Hello", "HELLO"},
		{"[xyz]", "[XYZ]"},
		{"[fwd: Re: Hello]", "HELLO"},
		{"=?utf-8?q?Re=3A_caf=C3=A9?=", "CAFé"},
		{"Re:   lots \t of   space", "LOTS OF SPACE"},
		{"", ""},
	} {
		if got := BaseSubject(c.in); got != c.want {
			t.Errorf("BaseSubject(%q) = %q, want %q (RFC 5256 2.1)", c.in, got, c.want)
		}
	}
}

func TestThread(t *testing.T) {
	env := newEnv(t, "")
	for _, m := range []struct{ id, refs, subject, date string }{
		{"<a@x>", "", "Plans", "Mon, 02 Jan 2006 10:00:00 +0000"},
		{"<b@x>", "<a@x>", "Re: Plans", "Tue, 03 Jan 2006 10:00:00 +0000"},
		{"<c@x>", "", "Lunch", "Tue, 03 Jan 2006 11:00:00 +0000"},
		{"<d@x>", "<a@x> <b@x>", "Re: Plans", "Wed, 04 Jan 2006 10:00:00 +0000"},
		{"<e@x>", "<a@x>", "Re: Plans", "Thu, 05 Jan 2006 10:00:00 +0000"},
		{"<f@x>", "<gone@x>", "Re: Lunch", "Fri, 06 Jan 2006 10:00:00 +0000"},
	} {
		body := "From: bob@example.org\r\nMessage-ID: " + m.id + "\r\nSubject: " + m.subject + "\r\nDate: " + m.date + "\r\n"
		if m.refs != "" {
			body += "References: " + m.refs + "\r\n"
		}
		if err := env.store.Deliver(t.Context(), []string{testUser}, []byte(body+"\r\nbody\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	tc := dialTranscript(t, env.tlsAddr, env.tls.ClientConfig(testServerName)).login()
	if u := tc.ok("CAPABILITY"); !strings.Contains(u[0], "THREAD=REFERENCES") || !strings.Contains(u[0], "THREAD=ORDEREDSUBJECT") || !strings.Contains(u[0], " SORT") {
		t.Fatalf("not advertised: %q", u)
	}
	tc.ok("SELECT INBOX")
	for _, c := range []struct{ cmd, want string }{
		// RFC 5256 4: 2 and 5 reply to 1, 4 to 2; 6's parent is missing
		// and its base subject joins it to 3.
		{"THREAD REFERENCES UTF-8 ALL", "* THREAD (1 (2 4)(5))(3 6)"},
		// RFC 5256 4, ORDEREDSUBJECT: by base subject, first message first.
		{"THREAD ORDEREDSUBJECT UTF-8 ALL", "* THREAD (1 (2)(4)(5))(3 6)"},
		{"THREAD REFERENCES UTF-8 SUBJECT lunch", "* THREAD (3 6)"},
		{"THREAD REFERENCES UTF-8 SUBJECT nothing", "* THREAD"},
	} {
		if u := tc.ok("%s", c.cmd); !slices.Contains(u, c.want) {
			t.Fatalf("%s: %q, want %q", c.cmd, u, c.want)
		}
	}
	tc.status("BAD", "THREAD NOSUCH UTF-8 ALL")
}
