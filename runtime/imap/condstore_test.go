package imap

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var highestModSeqRe = regexp.MustCompile(`HIGHESTMODSEQ (\d+)`)

// highestModSeq finds HIGHESTMODSEQ in responses.
func highestModSeq(t *testing.T, lines []string) uint64 {
	t.Helper()
	for _, l := range lines {
		if m := highestModSeqRe.FindStringSubmatch(l); m != nil {
			v, _ := strconv.ParseUint(m[1], 10, 64)
			return v
		}
	}
	t.Fatalf("no HIGHESTMODSEQ in %q", lines)
	return 0
}

func TestCondStore(t *testing.T) {
	env := newEnv(t, "")
	for _, s := range []string{"one", "two", "three"} {
		deliver(t, env, s)
	}
	a := dialTranscript(t, env.tlsAddr, env.tls.ClientConfig(testServerName)).login()
	// RFC 7162 3.1.2.1: SELECT (CONDSTORE) reports HIGHESTMODSEQ.
	m0 := highestModSeq(t, a.ok("SELECT INBOX (CONDSTORE)"))
	// RFC 7162 3.1.11: STATUS HIGHESTMODSEQ.
	if got := highestModSeq(t, a.ok("STATUS INBOX (HIGHESTMODSEQ)")); got != m0 {
		t.Fatalf("STATUS HIGHESTMODSEQ %d, SELECT said %d", got, m0)
	}
	// RFC 7162 3.1.3: STORE answers MODSEQ; UNCHANGEDSINCE protects a
	// message changed since and names it in MODIFIED.
	u := a.ok(`STORE 2 +FLAGS (\Flagged)`)
	if !contains(u, `MODSEQ (`) {
		t.Fatalf("STORE after CONDSTORE: %q", u)
	}
	if _, st := a.cmd(`STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS (\Seen)`, m0); !strings.HasPrefix(st, "OK [MODIFIED 2]") {
		t.Fatalf("STORE UNCHANGEDSINCE: %q", st)
	}
	// RFC 7162 3.1.4.1: FETCH CHANGEDSINCE returns only what changed, with
	// MODSEQ.
	u = a.ok("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)", m0)
	if len(u) != 3 || !contains(u, "MODSEQ (") {
		t.Fatalf("FETCH CHANGEDSINCE %d: %q", m0, u)
	}
	m1 := highestModSeq(t, a.ok("STATUS INBOX (HIGHESTMODSEQ)"))
	if u := a.ok("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)", m1); len(u) != 0 {
		t.Fatalf("FETCH CHANGEDSINCE HIGHESTMODSEQ: %q", u)
	}
	// RFC 7162 3.1.5: SEARCH MODSEQ, with the highest MODSEQ found.
	if u := a.ok("SEARCH MODSEQ %d", m0+1); !contains(u, "* SEARCH 1 2 3 (MODSEQ ") {
		t.Fatalf("SEARCH MODSEQ: %q", u)
	}
	// RFC 7162 3.1.4: another session's change arrives with MODSEQ.
	b := a.session(env)
	b.ok("SELECT INBOX")
	b.ok(`STORE 3 +FLAGS ($Done)`)
	if u := a.ok("NOOP"); !contains(u, "MODSEQ (") {
		t.Fatalf("update after CONDSTORE: %q", u)
	}
}

func TestQResync(t *testing.T) {
	env := newEnv(t, "")
	for _, s := range []string{"one", "two", "three", "four"} {
		deliver(t, env, s)
	}
	a := dialTranscript(t, env.tlsAddr, env.tls.ClientConfig(testServerName)).login()
	// RFC 7162 3.2.3: ENABLE QRESYNC.
	if u := a.ok("ENABLE QRESYNC"); !contains(u, "* ENABLED QRESYNC") {
		t.Fatalf("ENABLE: %q", u)
	}
	sel := a.ok("SELECT INBOX")
	m0 := highestModSeq(t, sel)
	var uidValidity string
	for _, l := range sel {
		if i := strings.Index(l, "UIDVALIDITY "); i >= 0 {
			uidValidity = strings.Fields(l[i+len("UIDVALIDITY "):])[0]
			uidValidity = strings.TrimSuffix(uidValidity, "]")
		}
	}
	a.ok(`STORE 1 +FLAGS (\Deleted)`)
	// RFC 7162 3.2.10: with QRESYNC, expunges are VANISHED UIDs.
	if u := a.ok("EXPUNGE"); !contains(u, "* VANISHED 1") || contains(u, "EXPUNGE") {
		t.Fatalf("EXPUNGE with QRESYNC: %q", u)
	}
	a.ok(`STORE 2 +FLAGS (\Seen)`) // UID 3, now that UID 1 is gone
	a.ok("UNSELECT")

	// RFC 7162 3.2.5: a client that knew m0 learns what vanished and what
	// changed in SELECT.
	u := a.ok("SELECT INBOX (QRESYNC (%s %d))", uidValidity, m0)
	if !contains(u, "* VANISHED (EARLIER) 1") || !contains(u, `* 2 FETCH (UID 3 FLAGS (\Seen) MODSEQ (`) {
		t.Fatalf("SELECT QRESYNC: %q", u)
	}
	// RFC 7162 3.2.6: UID FETCH ... (CHANGEDSINCE m VANISHED).
	u = a.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)", m0)
	if !contains(u, "* VANISHED (EARLIER) 1") {
		t.Fatalf("UID FETCH VANISHED: %q", u)
	}
	a.status("BAD", "FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)", m0)
	// A different UIDVALIDITY: no resync data (RFC 7162 3.2.5.2).
	if u := a.ok("SELECT INBOX (QRESYNC (1 %d))", m0); contains(u, "VANISHED") {
		t.Fatalf("SELECT QRESYNC with another UIDVALIDITY: %q", u)
	}
}
