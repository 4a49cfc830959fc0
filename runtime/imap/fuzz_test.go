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
// the script's LOGOUT (an open literal or quoted string) finish at once,
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
		"in a quoted string's CRLF":             "d LIST \"\" \"*\r\n",
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
