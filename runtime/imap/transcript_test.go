package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

func deliver(t testing.TB, env *testEnv, subject string) {
	t.Helper()
	body := "From: bob@example.org\r\nTo: alice@example.com\r\nSubject: " + subject + "\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n\r\nbody of " + subject + "\r\n"
	if err := env.store.Deliver(context.Background(), []string{testUser}, []byte(body)); err != nil {
		t.Fatal(err)
	}
}

// startTLS upgrades a transcript after STARTTLS.
func (tc *transcript) startTLS(cfg *tls.Config) {
	tc.t.Helper()
	tc.ok("STARTTLS")
	conn := tls.Client(tc.conn, cfg)
	if err := conn.Handshake(); err != nil {
		tc.t.Fatalf("handshake: %v", err)
	}
	tc.conn = conn
	tc.r.Reset(conn)
}

func TestAuthRequiresTLS(t *testing.T) {
	env := newEnv(t, "")
	tc := dialTranscript(t, env.addr, nil)
	caps := tc.ok("CAPABILITY")
	// RFC 9051 6.2.3 / 7.2.2: LOGINDISABLED before TLS, STARTTLS offered.
	if !contains(caps, "LOGINDISABLED") || !contains(caps, "STARTTLS") || contains(caps, "AUTH=PLAIN") {
		t.Fatalf("capabilities before TLS: %q", caps)
	}
	tc.status("NO [PRIVACYREQUIRED]", "LOGIN %s %q", testUser, testPass)
	tc.status("NO [PRIVACYREQUIRED]", "AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHNlY3JldA==")
	tc.startTLS(env.tls.ClientConfig(testServerName))
	caps = tc.ok("CAPABILITY")
	if contains(caps, "LOGINDISABLED") || contains(caps, "STARTTLS") || !contains(caps, "AUTH=PLAIN") {
		t.Fatalf("capabilities after TLS: %q", caps)
	}
	tc.status("NO [AUTHENTICATIONFAILED]", "LOGIN %s wrong", testUser) // RFC 9051 6.2.3
	tc.login()
}

// TestImplicitTLSServerRefusesPlainConnections: a server for implicit TLS
// lets imapserver allow LOGIN (it cannot see TLS under the write
// coalescing), so a connection that is not TLS, which only a wiring bug
// could hand it, must get nothing at all: no greeting, no LOGIN.
func TestImplicitTLSServerRefusesPlainConnections(t *testing.T) {
	env := newEnv(t, "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go env.implicit.Serve(ln) // plain TCP: the wiring bug
	conn := testutil.Dial(t, ln.Addr().String(), nil)
	fmt.Fprintf(conn, "a LOGIN %s %q\r\n", testUser, testPass)
	conn.SetReadDeadline(time.Now().Add(testutil.HangGuard))
	got, err := io.ReadAll(conn) // EOF or a reset: closed either way
	var nerr net.Error
	if len(got) > 0 || errors.As(err, &nerr) && nerr.Timeout() {
		t.Fatalf("a plain connection to the implicit-TLS server read %q, %v; want the connection closed with nothing sent", got, err)
	}
	// TLS connections to the same server still work.
	dialTranscript(t, env.tlsAddr, env.tls.ClientConfig(testServerName)).login()
}

// TestStartTLSInjection checks the CVE-2011-0411 class: commands a client
// (or an attacker in the path) sends in clear text behind STARTTLS must
// never be executed, neither before nor after the handshake.
func TestStartTLSInjection(t *testing.T) {
	env := newEnv(t, "")
	tc := dialTranscript(t, env.addr, nil)
	tc.send("t1 STARTTLS\r\nt2 LOGIN " + testUser + " \"" + testPass + "\"\r\n")
	if l := tc.line(); !strings.HasPrefix(l, "t1 OK") {
		t.Fatalf("STARTTLS: %q", l)
	}
	conn := tls.Client(tc.conn, env.tls.ClientConfig(testServerName))
	conn.SetDeadline(time.Now().Add(testutil.HangGuard))
	if err := conn.Handshake(); err != nil {
		return // the injected bytes broke the handshake: nothing was executed
	}
	tc.conn = conn
	tc.r.Reset(conn)
	// If the pipelined LOGIN had been kept, its response would come first.
	_, st := tc.cmd("NOOP")
	if !strings.HasPrefix(st, "OK") {
		t.Fatalf("NOOP after STARTTLS: %q", st)
	}
	tc.status("BAD", "SELECT INBOX") // still not authenticated
}

func TestMailboxCommands(t *testing.T) {
	env := newEnv(t, "")
	tc := dialTranscript(t, env.tlsAddr, env.tls.ClientConfig(testServerName)).login()
	tc.status("NO", "CREATE INBOX")                                                          // RFC 9051 6.3.4
	tc.status("NO", "DELETE INBOX")                                                          // RFC 9051 6.3.5
	tc.status("NO [NONEXISTENT]", "SELECT Nope")                                             // RFC 9051 7.1
	tc.ok("CREATE Work/Projects")                                                            // RFC 9051 6.3.4: parents too
	tc.status("NO [ALREADYEXISTS]", "CREATE Work")                                           // RFC 9051 7.1
	tc.status("NO [HASCHILDREN]", "DELETE Work")                                             // RFC 9051 7.1
	if u := tc.ok(`LIST "" "*"`); len(u) != 8 || !contains(u, `(\HasChildren) "/" "Work"`) { // RFC 9051 6.3.9, and the five RFC 6154 mailboxes of a new user
		t.Fatalf("LIST: %q", u)
	}
	if u := tc.ok(`LIST "" ""`); !contains(u, `(\Noselect) "/" ""`) { // RFC 9051 6.3.9 delimiter query
		t.Fatalf("LIST delimiter: %q", u)
	}
	tc.ok("SUBSCRIBE Work/Projects") // RFC 9051 6.3.7
	if u := tc.ok(`LSUB "" "*"`); len(u) != 2 || !contains(u, "Work/Projects") {
		t.Fatalf("LSUB: %q", u) // RFC 3501 6.3.9
	}
	tc.ok("UNSUBSCRIBE Work/Projects") // RFC 9051 6.3.8
	tc.ok("RENAME Work Play")          // RFC 9051 6.3.6: children follow
	if u := tc.ok(`LIST "" "Play/%%"`); len(u) != 1 || !contains(u, "Play/Projects") {
		t.Fatalf("LIST after rename: %q", u)
	}
	deliver(t, env, "one")
	if u := tc.ok("STATUS INBOX (MESSAGES UNSEEN UIDNEXT UIDVALIDITY SIZE)"); !contains(u, "MESSAGES 1") || !contains(u, "UNSEEN 1") || !contains(u, "UIDNEXT 2") {
		t.Fatalf("STATUS: %q", u) // RFC 9051 6.3.11
	}
	tc.status("NO [TRYCREATE]", "APPEND Nope {3+}\r\nabc") // RFC 9051 6.3.12
	tc.ok("DELETE Play/Projects")
	tc.ok("DELETE Play")
}

func TestMessageCommands(t *testing.T) {
	env := newEnv(t, "")
	tc := dialTranscript(t, env.tlsAddr, env.tls.ClientConfig(testServerName)).login()
	for i := 1; i <= 3; i++ {
		deliver(t, env, fmt.Sprint("msg", i))
	}
	msg := "Subject: appended\r\n\r\nhello\r\n"
	if u := tc.ok("APPEND INBOX (\\Flagged) {%d+}\r\n%s", len(msg), msg); len(u) != 0 {
		t.Fatalf("APPEND untagged: %q", u)
	}
	u := tc.ok("SELECT INBOX") // RFC 9051 6.3.2
	if !contains(u, "* 4 EXISTS") || !contains(u, "[UIDVALIDITY ") || !contains(u, "[UIDNEXT 5]") {
		t.Fatalf("SELECT: %q", u)
	}
	// RFC 9051 6.4.5: BODY.PEEK leaves \Seen alone, BODY[] sets it.
	u = tc.ok("FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
	if !contains(u, "Subject: msg1") || contains(u, `\Seen`) {
		t.Fatalf("FETCH PEEK: %q", u)
	}
	u = tc.ok("FETCH 1 BODY[]")
	if !contains(u, "body of msg1") || !contains(u, `FLAGS (\Seen \Recent)`) { // RFC 3501 2.3.2: first to SELECT
		t.Fatalf("FETCH BODY[]: %q", u)
	}
	u = tc.ok("UID FETCH 4 (UID RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE FLAGS)")
	if !contains(u, fmt.Sprintf("RFC822.SIZE %d", len(msg))) || !contains(u, `"appended"`) || !contains(u, `\Flagged`) || !contains(u, `BODYSTRUCTURE ("text" "plain"`) {
		t.Fatalf("UID FETCH: %q", u)
	}
	// A message above maxBufferedBody is streamed from its file.
	big := "Subject: big\r\n\r\n" + strings.Repeat("x", maxBufferedBody) + "\r\n"
	tc.ok("CREATE Big")
	tc.ok("APPEND Big {%d+}\r\n%s", len(big), big)
	tc.ok("EXAMINE Big")
	if u := tc.ok("FETCH 1 BODY.PEEK[]"); len(u) != 1 || !strings.HasSuffix(u[0], fmt.Sprintf("{%d}%s)", len(big), big)) {
		t.Fatalf("FETCH of a %d-byte message: %d untagged, %.80q", len(big), len(u), u)
	}
	tc.ok("SELECT INBOX")
	// RFC 9051 6.4.4.
	if u := tc.ok("SEARCH UNSEEN"); !contains(u, "* SEARCH 2 3 4") {
		t.Fatalf("SEARCH UNSEEN: %q", u)
	}
	if u := tc.ok("UID SEARCH SUBJECT msg2"); !contains(u, "* SEARCH 2") {
		t.Fatalf("SEARCH SUBJECT: %q", u)
	}
	if u := tc.ok("SEARCH BODY hello"); !contains(u, "* SEARCH 4") {
		t.Fatalf("SEARCH BODY: %q", u)
	}
	if u := tc.ok("SEARCH OR FLAGGED SEEN"); !contains(u, "* SEARCH 1 4") {
		t.Fatalf("SEARCH OR: %q", u)
	}
	// RFC 9051 6.4.6.
	// RFC 3501 7.2.6: a new keyword is announced in FLAGS first.
	if u := tc.ok(`STORE 2:3 +FLAGS (\Deleted $Work)`); len(u) != 4 || !strings.HasPrefix(u[0], `* FLAGS (`) || !strings.Contains(u[0], "$Work") || !contains(u, `* 2 FETCH (UID 2 FLAGS (\Deleted $Work))`) {
		t.Fatalf("STORE: %q", u)
	}
	if u := tc.ok(`STORE 3 -FLAGS.SILENT ($Work)`); len(u) != 0 {
		t.Fatalf("STORE.SILENT: %q", u)
	}
	tc.ok("CREATE Saved")
	// RFC 9051 6.4.7 and RFC 4315 COPYUID.
	if _, st := tc.cmd("COPY 1 Saved"); !strings.Contains(st, "[COPYUID ") || !strings.Contains(st, " 1 1]") {
		t.Fatalf("COPY: %q", st)
	}
	tc.status("NO [TRYCREATE]", "COPY 1 Nope")
	// A set that names no message copies and moves nothing: a plain OK,
	// since COPYUID cannot carry empty sets.
	for _, cmd := range []string{"COPY 9 Saved", "UID COPY 99 Saved", "MOVE 9 Saved", "UID MOVE 99 Saved"} {
		if u, st := tc.cmd("%s", cmd); len(u) != 0 || !strings.HasPrefix(st, "OK ") || strings.Contains(st, "[") {
			t.Fatalf("%s: %q %q", cmd, u, st)
		}
	}
	// RFC 9051 6.4.3: EXPUNGE responses, highest first is fine.
	if u := tc.ok("EXPUNGE"); len(u) != 2 || u[0] != "* 3 EXPUNGE" || u[1] != "* 2 EXPUNGE" {
		t.Fatalf("EXPUNGE: %q", u)
	}
	// RFC 6851: MOVE gives COPYUID then EXPUNGE.
	if u := tc.ok("UID MOVE 4 Saved"); len(u) != 2 || !strings.Contains(u[0], "COPYUID") || u[1] != "* 2 EXPUNGE" {
		t.Fatalf("MOVE: %q", u)
	}
	// RFC 9051 6.3.3: EXAMINE is read-only.
	tc.ok("EXAMINE Saved")
	tc.status("NO", `STORE 1 +FLAGS (\Deleted)`)
	tc.status("NO", "EXPUNGE")
	tc.ok("CLOSE")
}

// TestUpdatesFromOtherSessions checks that changes made elsewhere reach a
// session on its next command and during IDLE (RFC 9051 7.5.1, RFC 2177).
func TestUpdatesFromOtherSessions(t *testing.T) {
	env := newEnv(t, "")
	deliver(t, env, "first")
	deliver(t, env, "second")
	a := dialTranscript(t, env.tlsAddr, env.tls.ClientConfig(testServerName)).login()
	b := dialTranscript(t, env.tlsAddr, env.tls.ClientConfig(testServerName)).login()
	a.ok("SELECT INBOX")
	b.ok("SELECT INBOX")
	b.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	b.ok("EXPUNGE")
	// FETCH may not carry EXPUNGE (RFC 9051 7.5.1), NOOP must.
	if u := a.ok("FETCH 1:* FLAGS"); contains(u, "EXPUNGE") {
		t.Fatalf("EXPUNGE during FETCH: %q", u)
	}
	if u := a.ok("NOOP"); !contains(u, "* 1 EXPUNGE") {
		t.Fatalf("NOOP after other session's expunge: %q", u)
	}
	b.ok(`STORE 1 +FLAGS.SILENT (\Flagged)`)
	if u := a.ok("NOOP"); !contains(u, `* 1 FETCH (UID 2 FLAGS (\Flagged \Recent))`) {
		t.Fatalf("flag update: %q", u)
	}

	a.send("idle1 IDLE\r\n")
	if l := a.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("IDLE: %q", l)
	}
	deliver(t, env, "third")
	if l := a.line(); l != "* 2 EXISTS" {
		t.Fatalf("IDLE after delivery: %q", l)
	}
	a.send("DONE\r\n")
	if _, st := a.readUntil("idle1"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("IDLE end: %q", st)
	}
}

// TestUIDsStableAcrossRestart: RFC 9051 2.3.1.1, UIDs and UIDVALIDITY
// persist.
func TestUIDsStableAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	var before []string
	func() {
		env := newEnv(t, dir)
		deliver(t, env, "a")
		deliver(t, env, "b")
		tc := dialTranscript(t, env.tlsAddr, env.tls.ClientConfig(testServerName)).login()
		before = tc.ok("SELECT INBOX")
		before = append(before, tc.ok("UID FETCH 1:* UID")...)
		tc.ok("LOGOUT")
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		env.srv.Shutdown(ctx)
		env.store.Close()
	}()
	env := newEnv(t, dir)
	tc := dialTranscript(t, env.tlsAddr, env.tls.ClientConfig(testServerName)).login()
	after := append(tc.ok("SELECT INBOX"), tc.ok("UID FETCH 1:* UID")...)
	// \Recent is claimed once (RFC 3501 2.3.2): the second SELECT has none.
	after = slices.DeleteFunc(after, func(l string) bool { return strings.HasSuffix(l, " RECENT") })
	before = slices.DeleteFunc(before, func(l string) bool { return strings.HasSuffix(l, " RECENT") })
	for i := range before {
		before[i] = strings.ReplaceAll(before[i], ` \Recent`, "")
	}
	if strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Fatalf("before restart:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}
}

func TestShutdownSaysByeToIdlers(t *testing.T) {
	env := newEnv(t, "")
	tc := dialTranscript(t, env.tlsAddr, env.tls.ClientConfig(testServerName)).login()
	tc.ok("SELECT INBOX")
	tc.send("i IDLE\r\n")
	tc.line()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go env.implicit.Shutdown(ctx)
	if l := tc.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("got %q, want BYE", l)
	}
}
