package imap

import (
	"fmt"
	"strings"
	"testing"
)

// TestSearchContext checks CONTEXT=SEARCH (RFC 5267 4) beyond imaptest's
// scripts: a kept search follows changes another session and a delivery
// make, during IDLE too, with MIN/COUNT re-sent; CANCELUPDATE stops it;
// PARTIAL pages the result; the number of kept searches is bounded.
func TestSearchContext(t *testing.T) {
	env := newEnv(t, "")
	for _, s := range []string{"one", "two", "three"} {
		deliver(t, env, s)
	}
	cfg := env.tls.ClientConfig(testServerName)
	tc := dialTranscript(t, env.tlsAddr, cfg).login()
	if caps := tc.ok("CAPABILITY")[0]; !strings.Contains(caps, " CONTEXT=SEARCH") {
		t.Fatalf("CONTEXT=SEARCH is not advertised: %s", caps)
	}
	tc.ok("SELECT INBOX")
	// RFC 5267 4.2: the result, then updates tagged with the search's tag.
	if u := tc.ok("SEARCH RETURN (UPDATE MIN COUNT) UNSEEN"); !contains(u, `* ESEARCH (TAG "t4") MIN 1 COUNT 3`) {
		t.Fatalf("SEARCH RETURN (UPDATE): %q", u)
	}
	if u := tc.ok("UID SEARCH RETURN (UPDATE) SUBJECT three"); !contains(u, `* ESEARCH (TAG "t5") UID`) {
		t.Fatalf("UID SEARCH RETURN (UPDATE): %q", u)
	}

	other := dialTranscript(t, env.tlsAddr, cfg).login()
	other.ok("SELECT INBOX")
	other.ok(`STORE 1,3 +FLAGS (\Seen)`)
	u := tc.ok("NOOP")
	for _, want := range []string{`* ESEARCH (TAG "t4") REMOVEFROM (0 1,3)`, `* ESEARCH (TAG "t4") MIN 2 COUNT 1`} {
		if !contains(u, want) {
			t.Fatalf("after another session's STORE: %q, want %q", u, want)
		}
	}
	// An expunged message leaves the result by the number it had, before
	// its EXPUNGE.
	other.ok(`STORE 2 +FLAGS (\Deleted)`)
	other.ok("EXPUNGE")
	u = tc.ok("NOOP")
	if i, j := index(u, `* ESEARCH (TAG "t4") REMOVEFROM (0 2)`), index(u, "* 2 EXPUNGE"); i < 0 || j < 0 || i > j {
		t.Fatalf("after EXPUNGE: %q", u)
	}
	// During IDLE, a delivery that matches joins the result after EXISTS.
	tc.send("i1 IDLE\r\n")
	if l := tc.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q", l)
	}
	deliver(t, env, "three again")
	want := []string{"* 3 EXISTS", `* ESEARCH (TAG "t4") ADDTO (0 3)`, `* ESEARCH (TAG "t4") MIN 3 COUNT 1`, `* ESEARCH (TAG "t5") UID ADDTO (0 4)`}
	var got []string
	for len(got) < len(want)+1 {
		l := tc.line()
		if strings.HasSuffix(l, "RECENT") {
			continue
		}
		got = append(got, l)
		if len(got) == len(want) {
			break
		}
	}
	tc.send("DONE\r\n")
	tc.readUntil("i1")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("during IDLE: %q, want %q", got, want)
	}
	// RFC 5267 4.3: CANCELUPDATE stops the updates; an unknown tag is an error.
	tc.ok(`CANCELUPDATE "t4" "t5"`)
	tc.status("BAD", `CANCELUPDATE "t4"`)
	other.ok(`STORE 3 -FLAGS (\Seen)`)
	if u := tc.ok("NOOP"); contains(u, "ESEARCH") {
		t.Fatalf("update after CANCELUPDATE: %q", u)
	}
	// RFC 5267 4.4: PARTIAL pages the result, low:high either way.
	if u := tc.ok("SEARCH RETURN (PARTIAL 3:2) ALL"); !contains(u, `PARTIAL (2:3 2:3)`) {
		t.Fatalf("PARTIAL: %q", u)
	}
	if u := tc.ok("UID SEARCH RETURN (PARTIAL 3:9 COUNT) ALL"); !contains(u, `UID COUNT 3 PARTIAL (3:9 4)`) {
		t.Fatalf("UID PARTIAL: %q", u)
	}
	tc.status("BAD", "SEARCH RETURN (PARTIAL 0:1) ALL")
	tc.status("BAD", "SEARCH RETURN (PARTIAL -1:1) ALL")
	tc.status("BAD", "SORT RETURN (PARTIAL 1:2) (DATE) UTF-8 ALL") // no CONTEXT=SORT
	// The kept searches are bounded; NOUPDATE names the one refused.
	for i := 0; i < maxSearchContexts; i++ {
		tc.ok("SEARCH RETURN (UPDATE) ALL")
	}
	if _, st := tc.cmd("SEARCH RETURN (UPDATE) ALL"); !strings.HasPrefix(st, fmt.Sprintf(`NO [NOUPDATE "t%d"]`, tc.n)) {
		t.Fatalf("search beyond the bound: %s", st)
	}
	// Selecting again drops them.
	tc.ok("SELECT INBOX")
	tc.ok("SEARCH RETURN (UPDATE) ALL")
}

// index returns the index of the first line containing sub, or -1.
func index(lines []string, sub string) int {
	for i, l := range lines {
		if strings.Contains(l, sub) {
			return i
		}
	}
	return -1
}
