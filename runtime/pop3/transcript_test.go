package pop3

import (
	"bufio"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

// transcript is one exchange: the harness connects to a fresh server
// (tls.mode "none" with insecure auth allowed, so it can read the wire),
// reads the greeting, logs in as alice when login is set, sends input in a
// single write (so every case also exercises PIPELINING, RFC 2449 section
// 6.6), half-closes, and compares everything the server says with want.
// Lines in input and want are separated by "\n" and sent as CRLF.
type transcript struct {
	name  string
	rfc   string
	login bool
	input string
	want  string
	// commits, when non-nil, are the UIDs the backend must have removed.
	commits []string
}

var transcripts = []transcript{
	// Authorization state.
	{
		name:  "capa before login",
		rfc:   "RFC 2449 section 5",
		input: "CAPA",
		want:  "+OK capability list follows\nTOP\nUIDL\nRESP-CODES\nAUTH-RESP-CODE\nPIPELINING\nUSER\nSASL PLAIN\nIMPLEMENTATION mailstack\n.",
	},
	{
		name:  "user pass",
		rfc:   "RFC 1939 section 7 USER, PASS",
		input: "USER alice\nPASS secret",
		want:  "+OK send PASS\n+OK maildrop has 3 messages (101 octets)",
	},
	{
		name:  "password with spaces",
		rfc:   "RFC 1939 section 7 PASS: spaces may be part of the password",
		input: "USER bob\nPASS pass word",
		want:  "+OK send PASS\n+OK maildrop has 0 messages (0 octets)",
	},
	{
		name:  "keywords are case-insensitive",
		rfc:   "RFC 1939 section 3",
		input: "user alice\npAsS secret\nstat",
		want:  "+OK send PASS\n+OK maildrop has 3 messages (101 octets)\n+OK 3 101",
	},
	{
		name:  "bad password",
		rfc:   "RFC 1939 section 7 PASS; RFC 3206 section 4 [AUTH]",
		input: "USER alice\nPASS wrong",
		want:  "+OK send PASS\n-ERR [AUTH] invalid credentials",
	},
	{
		name:  "unknown user looks like a bad password",
		rfc:   "RFC 1939 section 7 USER; RFC 3206 section 4 [AUTH]",
		input: "USER mallory\nPASS secret",
		want:  "+OK send PASS\n-ERR [AUTH] invalid credentials",
	},
	{
		name:  "pass without user",
		rfc:   "RFC 1939 section 7 PASS",
		input: "PASS secret",
		want:  "-ERR send USER first",
	},
	{
		name:  "pass after a failed pass needs user again",
		rfc:   "RFC 1939 section 7 PASS: failure returns to AUTHORIZATION",
		input: "USER alice\nPASS wrong\nPASS secret",
		want:  "+OK send PASS\n-ERR [AUTH] invalid credentials\n-ERR send USER first",
	},
	{
		name:  "third failure closes the connection",
		rfc:   "RFC 3206 section 4 [AUTH]",
		input: "USER alice\nPASS a\nUSER alice\nPASS b\nUSER alice\nPASS c\nUSER alice",
		want:  "+OK send PASS\n-ERR [AUTH] invalid credentials\n+OK send PASS\n-ERR [AUTH] invalid credentials\n+OK send PASS\n-ERR [AUTH] invalid credentials, too many failures",
	},
	{
		name:  "auth plain with initial response",
		rfc:   "RFC 5034 section 4; RFC 4616",
		input: "AUTH PLAIN AGFsaWNlAHNlY3JldA==\nSTAT",
		want:  "+OK maildrop has 3 messages (101 octets)\n+OK 3 101",
	},
	{
		name:  "auth plain with a challenge",
		rfc:   "RFC 5034 section 4: empty challenge is \"+ \"",
		input: "auth plain\nAGJvYgBwYXNzIHdvcmQ=",
		want:  "+ \n+OK maildrop has 0 messages (0 octets)",
	},
	{
		name:  "auth plain with own authorization identity",
		rfc:   "RFC 4616 section 2",
		input: "AUTH PLAIN YWxpY2UAYWxpY2UAc2VjcmV0",
		want:  "+OK maildrop has 3 messages (101 octets)",
	},
	{
		name:  "auth plain as someone else",
		rfc:   "RFC 4616 section 2: authorization identity not permitted",
		input: "AUTH PLAIN Ym9iAGFsaWNlAHNlY3JldA==",
		want:  "-ERR [AUTH] invalid credentials",
	},
	{
		name:  "auth plain bad password",
		rfc:   "RFC 5034 section 4; RFC 3206 section 4",
		input: "AUTH PLAIN AGFsaWNlAHdyb25n",
		want:  "-ERR [AUTH] invalid credentials",
	},
	{
		name:  "auth plain empty initial response",
		rfc:   "RFC 5034 section 4: \"=\" is a zero-length initial response",
		input: "AUTH PLAIN =",
		want:  "-ERR [AUTH] invalid credentials",
	},
	{
		name:  "auth cancelled",
		rfc:   "RFC 5034 section 4: \"*\" cancels",
		input: "AUTH PLAIN\n*\nSTAT",
		want:  "+ \n-ERR authentication cancelled\n-ERR command not valid in this state",
	},
	{
		name:  "auth bad base64",
		rfc:   "RFC 5034 section 4: undecodable response is rejected",
		input: "AUTH PLAIN !!!!\nAUTH PLAIN\nnot base64",
		want:  "-ERR invalid base64 in initial response\n+ \n-ERR invalid base64 in response",
	},
	{
		name:  "auth unsupported mechanism",
		rfc:   "RFC 5034 section 4",
		input: "AUTH CRAM-MD5\nAUTH",
		want:  "-ERR unsupported SASL mechanism\n-ERR usage: AUTH mechanism [initial-response]",
	},
	{
		name:  "no stls without tls config",
		rfc:   "RFC 2595 section 4",
		input: "STLS",
		want:  "-ERR unknown command",
	},
	{
		name:  "quit in authorization",
		rfc:   "RFC 1939 section 4 QUIT",
		input: "QUIT\nNOOP",
		want:  "+OK mail.test POP3 server signing off",
	},
	{
		name:  "transaction commands before login",
		rfc:   "RFC 1939 section 5: TRANSACTION state only",
		input: "STAT\nRETR 1\nNOOP",
		want:  "-ERR command not valid in this state\n-ERR command not valid in this state\n-ERR command not valid in this state",
	},
	{
		name:  "unknown and malformed commands",
		rfc:   "RFC 1939 section 3",
		input: "XYZZY\n\nNO\x01OP\n1234\nTOOLONGWORD x",
		want:  "-ERR unknown command\n-ERR empty command\n-ERR control character in command\n-ERR malformed command keyword\n-ERR malformed command keyword",
	},

	// Transaction state.
	{
		name:  "stat",
		rfc:   "RFC 1939 section 5 STAT",
		login: true,
		input: "STAT\nSTAT x",
		want:  "+OK 3 101\n-ERR STAT takes no arguments",
	},
	{
		name:  "list",
		rfc:   "RFC 1939 section 5 LIST",
		login: true,
		input: "LIST\nLIST 2\nLIST 4\nLIST 0\nLIST x\nLIST +1\nLIST 1 2",
		want:  "+OK 3 messages (101 octets)\n1 23\n2 62\n3 16\n.\n+OK 2 62\n-ERR no such message\n-ERR no such message\n-ERR invalid message number\n-ERR invalid message number\n-ERR too many arguments",
	},
	{
		name:  "uidl",
		rfc:   "RFC 1939 section 7 UIDL",
		login: true,
		input: "UIDL\nUIDL 3\nUIDL 9",
		want:  "+OK 3 messages (101 octets)\n1 uid-1\n2 uid-2\n3 uid-3\n.\n+OK 3 uid-3\n-ERR no such message",
	},
	{
		name:  "retr",
		rfc:   "RFC 1939 section 5 RETR",
		login: true,
		input: "RETR 1\nRETR\nRETR 7",
		want:  "+OK 23 octets\nSubject: one\n\nHello\n.\n-ERR usage: RETR msg\n-ERR no such message",
	},
	{
		name:  "retr byte-stuffs and terminates the last line",
		rfc:   "RFC 1939 section 3: lines starting with the termination octet are byte-stuffed",
		login: true,
		input: "RETR 2",
		want:  "+OK 62 octets\nSubject: two\nFrom: a@example.com\n\n..dotted\nline 2\n...\nlast\n.",
	},
	{
		name:  "top",
		rfc:   "RFC 1939 section 7 TOP",
		login: true,
		input: "TOP 2 1\nTOP 2 0\nTOP 1 100\nTOP 3 5",
		want: "+OK top of message follows\nSubject: two\nFrom: a@example.com\n\n..dotted\n.\n" +
			"+OK top of message follows\nSubject: two\nFrom: a@example.com\n\n.\n" +
			"+OK top of message follows\nSubject: one\n\nHello\n.\n" +
			"+OK top of message follows\nSubject: three\n.",
	},
	{
		name:  "top arguments",
		rfc:   "RFC 1939 section 7 TOP: both arguments required, n non-negative",
		login: true,
		input: "TOP 1\nTOP 1 -1\nTOP 5 1",
		want:  "-ERR usage: TOP msg n\n-ERR invalid line count\n-ERR no such message",
	},
	{
		name:  "dele",
		rfc:   "RFC 1939 section 5 DELE: deleted messages are not counted or listed and cannot be touched",
		login: true,
		input: "DELE 1\nDELE 1\nSTAT\nLIST\nLIST 1\nRETR 1\nTOP 1 0\nUIDL 1",
		want: "+OK message 1 deleted\n-ERR message 1 already deleted\n+OK 2 78\n+OK 2 messages (78 octets)\n2 62\n3 16\n.\n" +
			"-ERR message 1 already deleted\n-ERR message 1 already deleted\n-ERR message 1 already deleted\n-ERR message 1 already deleted",
	},
	{
		name:    "rset",
		rfc:     "RFC 1939 section 5 RSET",
		login:   true,
		input:   "DELE 2\nRSET\nSTAT\nQUIT",
		want:    "+OK message 2 deleted\n+OK maildrop has 3 messages (101 octets)\n+OK 3 101\n+OK mail.test POP3 server signing off (3 messages left)",
		commits: []string{},
	},
	{
		name:  "noop",
		rfc:   "RFC 1939 section 5 NOOP",
		login: true,
		input: "NOOP\nNOOP x",
		want:  "+OK\n-ERR NOOP takes no arguments",
	},
	{
		name:    "quit enters update",
		rfc:     "RFC 1939 section 6: QUIT from TRANSACTION removes the marked messages",
		login:   true,
		input:   "DELE 1\nDELE 3\nQUIT\nNOOP",
		want:    "+OK message 1 deleted\n+OK message 3 deleted\n+OK mail.test POP3 server signing off (1 messages left)",
		commits: []string{"uid-1", "uid-3"},
	},
	{
		name:    "no update without quit",
		rfc:     "RFC 1939 section 6: a session that ends without QUIT does not enter UPDATE",
		login:   true,
		input:   "DELE 1",
		want:    "+OK message 1 deleted",
		commits: []string{},
	},
	{
		name:  "capa after login keeps authorization capabilities",
		rfc:   "RFC 2449 section 5",
		login: true,
		input: "CAPA",
		want:  "+OK capability list follows\nTOP\nUIDL\nRESP-CODES\nAUTH-RESP-CODE\nPIPELINING\nUSER\nSASL PLAIN\nIMPLEMENTATION mailstack\n.",
	},
	{
		name:  "authorization commands after login",
		rfc:   "RFC 1939 section 7; RFC 2595 section 4: STLS only in AUTHORIZATION",
		login: true,
		input: "USER alice\nPASS secret\nAUTH PLAIN\nSTLS",
		want:  "-ERR command not valid in this state\n-ERR command not valid in this state\n-ERR command not valid in this state\n-ERR command not valid in this state",
	},
}

func TestTranscripts(t *testing.T) {
	t.Parallel()
	for _, tc := range transcripts {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, plainInsecure)
			got := runTranscript(t, ts.addr, tc.login, tc.input)
			if want := crlf(tc.want) + "\r\n"; got != want {
				t.Errorf("%s\ninput:\n%s\ngot:\n%s\nwant:\n%s", tc.rfc, tc.input, got, want)
			}
			if tc.commits != nil {
				_, closes, commits := ts.backend.stats()
				if !slices.Equal(commits, tc.commits) {
					t.Errorf("%s: committed %q, want %q", tc.rfc, commits, tc.commits)
				}
				if closes != 1 {
					t.Errorf("maildrop closed %d times, want 1", closes)
				}
			}
		})
	}
}

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// runTranscript returns everything the server writes after the greeting
// (and the login) until it closes the connection.
func runTranscript(t *testing.T, addr string, login bool, input string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &testClient{t: t, conn: conn, r: bufio.NewReader(conn)}
	if g := c.line(); g != "+OK mail.test POP3 server ready" {
		t.Fatalf("greeting = %q", g)
	}
	if login {
		c.login("alice", "secret")
	}
	c.send(crlf(input) + "\r\n")
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(testutil.HangGuard))
	out, err := io.ReadAll(c.r)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatalf("reading transcript: %v (got %q)", err, out)
	}
	return string(out)
}
