package imap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

// fuzzServer is a server on a store with testUser, for runScript,
// and the errors it logs.
func fuzzServer(tb testing.TB) (*Server, *testutil.ErrorLog) {
	st := openStore(tb, tb.TempDir())
	tb.Cleanup(func() { st.Close() })
	if err := st.PutUser(testUser, testPass, 0); err != nil {
		tb.Fatal(err)
	}
	logs := &testutil.ErrorLog{}
	srv := New(Options{Store: st, AllowInsecureAuth: true, MaxLiteralSize: 1 << 16, AuthLimiter: testutil.NoAuthLimit(), Logger: slog.New(logs)})
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv, logs
}

// runScript sends script to srv on a connection of its own, then ends the
// client's half of it (as a client that is done does), checks the answer
// (the server closes the session, answers no [SERVERBUG] and logs nothing
// as an error) and returns it. Ending the half is what lets input that swallowed
// the script's LOGOUT (an open literal) finish at once,
// instead of at a read deadline: that wait made most of the fuzzer's
// executions take seconds.
func runScript(t *testing.T, srv *Server, logs *testutil.ErrorLog, script string) string {
	client, server := socketPair(t)
	defer client.Close()
	ln := testutil.NewOneConn(server, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 143})
	served := make(chan struct{})
	go func() { defer close(served); srv.Serve(ln) }()
	go func() {
		client.Write([]byte(script))
		client.CloseWrite()
	}()
	// A hang guard only: the server must close the session on its own.
	client.SetReadDeadline(time.Now().Add(time.Minute))
	// A server that ends the session with input still unread (after a
	// command it cannot resynchronise from) resets the connection: that
	// is a closed session too.
	out, err := io.ReadAll(client)
	client.Close()
	ln.Close()
	<-served
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the server did not close the session after the client's end for %q:\n%s", script, out)
	}
	if strings.Contains(string(out), "SERVERBUG") {
		t.Fatalf("[SERVERBUG] for %q:\n%s", script, out)
	}
	if msgs := logs.Messages(); len(msgs) > 0 {
		t.Fatalf("logged as errors: %q\nfor %q", msgs, script)
	}
	return string(out)
}

// TestClientEndingItsHalf: a client that ends its half of the connection
// gets the answers to every command it finished, and nothing for one the
// end cut off (imapserver would answer that NO [SERVERBUG]); the session
// then closes.
func TestClientEndingItsHalf(t *testing.T) {
	srv, logs := fuzzServer(t)
	login := "a LOGIN " + testUser + " {" + strconv.Itoa(len(testPass)) + "+}\r\n" + testPass + "\r\nb SELECT INBOX\r\nc NOOP\r\n"
	for name, cutOff := range map[string]string{
		"after a command":                       "",
		"in a quoted string":                    `d LIST "" "*`,
		"in a quoted string's escape":           `d LIST "" "*\`,
		"in a literal":                          "d APPEND INBOX {100+}\r\nSubject: cut\r\n",
		"before a synchronising literal's data": "d APPEND INBOX {100}\r\n",
		"in a tag":                              "d",
	} {
		t.Run(name, func(t *testing.T) {
			out := runScript(t, srv, logs, login+cutOff)
			for _, want := range []string{"a OK", "b OK", "c OK NOOP completed"} {
				if !strings.Contains(out, "\r\n"+want) {
					t.Errorf("no %q in the answer to %q:\n%s", want, login+cutOff, out)
				}
			}
			if strings.Contains(out, "\r\nd ") {
				t.Errorf("the cut-off command was answered:\n%s", out)
			}
		})
	}
}

// taggedLine returns the line of out that answers tag, or "".
func taggedLine(out, tag string) string {
	for _, l := range strings.Split(out, "\r\n") {
		if strings.HasPrefix(l, tag+" ") {
			return l
		}
	}
	return ""
}

// TestQuotedStringEndsAtLineEnd: a CR or LF cannot be in a quoted string
// (RFC 9051 4.3 and RFC 3501 9: QUOTED-CHAR is a TEXT-CHAR, never CR or
// LF). The command whose quote the line's end leaves open is answered BAD
// at the end of that line, and the next line is the client's next command,
// not more of the string: upstream's decoder read on, so an unclosed quote
// swallowed the commands after it until a quote came.
func TestQuotedStringEndsAtLineEnd(t *testing.T) {
	srv, logs := fuzzServer(t)
	const bad = "a1 BAD [CLIENTBUG] Syntax error: quoted string not closed before the end of the line"
	login := "l LOGIN " + testUser + " \"" + testPass + "\"\r\n"
	selected := login + "s SELECT INBOX\r\n"
	for _, tc := range []struct {
		name, before, line string
	}{
		{"LOGIN, CRLF", "", `a1 LOGIN "alice` + "\r\n"},
		{"LOGIN, bare LF", "", `a1 LOGIN "alice` + "\n"},
		{"LOGIN, lone CR in the line", "", `a1 LOGIN "ali` + "\r" + `ce" secret` + "\r\n"},
		{"LOGIN, escaped CRLF", "", `a1 LOGIN alice "secret\` + "\r\n"},
		{"LOGIN, empty", "", `a1 LOGIN alice "` + "\r\n"},
		{"SELECT", login, `a1 SELECT "INBOX` + "\r\n"},
		{"LIST", login, `a1 LIST "" "*` + "\r\n"},
		{"STATUS", login, `a1 STATUS "INBOX (MESSAGES)` + "\r\n"},
		{"APPEND's date", login, `a1 APPEND INBOX "06-Dec-2026 10:00:00 +0000` + "\r\n"},
		{"ID", login, `a1 ID ("name" "client` + "\r\n"},
		{"SEARCH", selected, `a1 SEARCH SUBJECT "hello` + "\r\n"},
		{"FETCH's header fields", selected, `a1 FETCH 1:* BODY.PEEK[HEADER.FIELDS ("Subject` + "\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := runScript(t, srv, logs, tc.before+tc.line+"a2 NOOP\r\n")
			if got := taggedLine(out, "a1"); !strings.HasPrefix(got, bad) {
				t.Errorf("%q answered %q, want %q:\n%s", tc.line, got, bad, out)
			}
			if got := taggedLine(out, "a2"); !strings.HasPrefix(got, "a2 OK") {
				t.Errorf("the NOOP after %q answered %q, want OK:\n%s", tc.line, got, out)
			}
		})
	}
	// The line after the one with the open quote is a command of its own,
	// run in full: a LOGIN that succeeds and a SELECT in its session.
	out := runScript(t, srv, logs, `a1 LOGIN `+testUser+` "`+testPass+"\r\n"+login+"a2 SELECT INBOX\r\n")
	if !strings.HasPrefix(taggedLine(out, "a1"), bad) || !strings.HasPrefix(taggedLine(out, "l"), "l OK") || !strings.HasPrefix(taggedLine(out, "a2"), "a2 OK") {
		t.Errorf("want a1 BAD, then LOGIN and SELECT OK:\n%s", out)
	}
}

// TestLiteralsHoldLineEnds: unlike a quoted string, a literal's data may
// hold CRLF, bare CR or LF and unbalanced quotes (RFC 9051 4.3), in both
// forms ({n} and LITERAL+'s {n+}): LOGIN takes literal credentials, APPEND
// stores such messages byte for byte, and FETCH returns them.
func TestLiteralsHoldLineEnds(t *testing.T) {
	srv, logs := fuzzServer(t)
	lit := func(s, plus string) string { return fmt.Sprintf("{%d%s}\r\n%s", len(s), plus, s) }
	msgs := []string{
		"Subject: \"sync\r\n\r\nline one\r\n\"unclosed\r\nbare\nLF and bare\rCR\r\n",
		"Subject: non-sync\r\n\r\n\r\n\"\r\n\r\n",
	}
	out := runScript(t, srv, logs, "a LOGIN "+lit(testUser, "")+" "+lit(testPass, "+")+"\r\n"+
		"b APPEND INBOX "+lit(msgs[0], "")+"\r\n"+
		"c APPEND INBOX () "+lit(msgs[1], "+")+"\r\n"+
		"d SELECT INBOX\r\ne FETCH 1:2 BODY.PEEK[]\r\n")
	for _, tag := range []string{"a", "b", "c", "d", "e"} {
		if got := taggedLine(out, tag); !strings.HasPrefix(got, tag+" OK") {
			t.Errorf("%s answered %q, want OK:\n%s", tag, got, out)
		}
	}
	for i, msg := range msgs {
		if want := fmt.Sprintf("* %d FETCH (UID %[1]d BODY[] %s)", i+1, lit(msg, "")); !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}

// socketPair returns the two ends of a connected unix stream socket: unlike
// net.Pipe, the client's end can close its writing half alone.
func socketPair(t *testing.T) (client *net.UnixConn, server net.Conn) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		conns[i], err = net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return conns[0].(*net.UnixConn), conns[1]
}

// FuzzLiterals drives a session whose every argument is a literal the
// fuzzer shapes: LOGIN with literal user and password, APPEND with fuzzed
// flags and a message whose declared size may be off by a few bytes, in
// either form ({n} or LITERAL+ {n+}), then SELECT, FETCH and EXPUNGE. No
// input may make the server answer [SERVERBUG], log an error, or crash.
func FuzzLiterals(f *testing.F) {
	f.Add(testUser, testPass, `\Seen`, []byte("Subject: hi\r\n\r\nhello\r\n"), int8(0), false)
	f.Add(testUser, testPass, `\Flagged $Label`, []byte("From: a@example.com\r\n\r\n{5}\r\nx\r\n"), int8(0), true)
	f.Add(testUser, "wrong", ``, []byte(""), int8(0), false)
	f.Add("a\x00b", "\r\n", `(`, []byte("x"), int8(3), true)
	f.Add(testUser, testPass, `\Recent`, []byte("no header\r\n"), int8(-2), false)
	f.Fuzz(func(t *testing.T, user, pass, flags string, msg []byte, off int8, plus bool) {
		srv, logs := fuzzServer(t)
		size := max(len(msg)+int(off%9), 0)
		nonSync := ""
		if plus {
			nonSync = "+"
		}
		lit := func(s string) string { return fmt.Sprintf("{%d%s}\r\n%s", len(s), nonSync, s) }
		runScript(t, srv, logs, "a LOGIN "+lit(user)+" "+lit(pass)+"\r\n"+
			fmt.Sprintf("b APPEND INBOX (%s) {%d%s}\r\n", flags, size, nonSync)+string(msg)+"\r\n"+
			"c SELECT INBOX\r\nd FETCH 1:* (FLAGS BODY.PEEK[])\r\ne STORE 1:* +FLAGS.SILENT (\\Deleted)\r\nf EXPUNGE\r\n"+
			strings.Repeat("g LOGOUT\r\n", 3))
	})
}

// FuzzCommands sends arbitrary commands in the selected state of a mailbox
// with two messages (SEARCH with any nesting, FETCH, STORE, COPY, LIST,
// STATUS, ...): no input may make the server answer [SERVERBUG], log an
// error, or crash.
func FuzzCommands(f *testing.F) {
	for _, seed := range []string{
		"x SEARCH OR (FROM a SUBJECT b) NOT (SEEN (LARGER 5 SMALLER 100000))\r\n",
		"x UID SEARCH RETURN (MIN MAX COUNT SAVE) 1:* BODY hello\r\nx FETCH $ (UID)\r\n",
		"x SEARCH " + strings.Repeat("(", 200) + "ALL" + strings.Repeat(")", 200) + "\r\n",
		"x FETCH 1:* (BODY[HEADER.FIELDS (SUBJECT)] BINARY[1] RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)\r\n",
		"x STORE 2 +FLAGS (\\Answered $Junk)\r\nx COPY 1:2 Archive\r\nx MOVE 1 Trash\r\n",
		"x LIST \"\" \"*\" RETURN (STATUS (MESSAGES UNSEEN SIZE))\r\nx STATUS INBOX (UIDNEXT)\r\n",
		"x CREATE &AKM-\r\nx RENAME a b\r\nx DELETE nonexistent\r\nx SEARCH CHARSET UTF-8 TEXT {3+}\r\nabc\r\n",
		"x SEARCH SUBJECT \"open\r\nx LIST \"\" \"a\\\r\nx NOOP\r\n",
	} {
		f.Add([]byte(seed))
	}
	lit := func(s string) string { return fmt.Sprintf("{%d+}\r\n%s", len(s), s) }
	setup := "a LOGIN " + testUser + " " + lit(testPass) + "\r\n" +
		"b APPEND INBOX (\\Seen) " + lit("Subject: one\r\nFrom: a@b\r\n\r\nx\r\n") + "\r\n" +
		"c APPEND INBOX " + lit("Subject: two\r\n\r\nhello\r\n") + "\r\n" +
		"d SELECT INBOX\r\n"
	cleanup := "y STORE 1:* +FLAGS.SILENT (\\Deleted)\r\ny EXPUNGE\r\n" + strings.Repeat("z LOGOUT\r\n", 3)
	f.Fuzz(func(t *testing.T, input []byte) {
		srv, logs := fuzzServer(t)
		runScript(t, srv, logs, setup+string(input)+"\r\n"+cleanup)
	})
}
