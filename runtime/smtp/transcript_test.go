package smtp

import (
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

// step is one exchange of a transcript: send is written as is (it may hold
// several pipelined commands) and each entry of want is the prefix of one
// reply read after it. contains and absent are checked against the last
// reply.
type step struct {
	send     string
	want     []string
	contains []string
	absent   []string
}

// handshake, as a step's send, makes the client start TLS after the 220 to
// STARTTLS it read in the previous step.
const handshake = "\x00handshake"

// hangup, as a want entry, expects the server to close the connection.
const hangup = "\x00EOF"

func in(send string, want ...string) step { return step{send: send + "\r\n", want: want} }

func plain(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

const (
	ehlo     = "EHLO client.example"
	goodAuth = "AUTH PLAIN AGFsaWNlQGV4YW1wbGUuY29tAGNvcnJlY3QgaG9yc2U=" // alice@example.com / testPassword
	message  = "From: Alice <alice@example.com>\r\nSubject: test\r\n\r\nHello.\r\n.\r\n"
)

// startTLSSteps upgrade a fresh connection and introduce the client again
// (RFC 3207 section 4.2).
var startTLSSteps = []step{in(ehlo, "250-"), in("STARTTLS", "220 2.0.0"), {send: handshake}, in(ehlo, "250-")}

func steps(groups ...[]step) []step {
	var all []step
	for _, g := range groups {
		all = append(all, g...)
	}
	return all
}

func TestTranscripts(t *testing.T) {
	if goodAuth != "AUTH PLAIN "+plain("alice@example.com", testPassword) {
		t.Fatal("goodAuth is stale")
	}
	tests := []struct {
		name       string
		mode       tlsMode
		opts       Options
		steps      []step
		deliveries int
	}{
		{
			name: "RFC 5321 4.1.1.1 EHLO lists the extensions; MX offers no AUTH",
			mode: modeStartTLS,
			steps: []step{{send: ehlo + "\r\n", want: []string{"250-"},
				contains: []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "SIZE 26214400", "STARTTLS", "LIMITS RCPTMAX=100"},
				absent:   []string{"AUTH"}}},
		},
		{
			name: "RFC 5321 3.3 mail for a local user is delivered",
			mode: modeStartTLS,
			steps: steps(startTLSSteps, []step{
				in("MAIL FROM:<someone@elsewhere.example>", "250 2.0.0"),
				in("RCPT TO:<alice@example.com>", "250 2.0.0"),
				in("DATA", "354"),
				{send: message, want: []string{"250 2.0.0"}},
			}),
			deliveries: 1,
		},
		{
			name: "RFC 5321 3.3 null reverse-path accepted on MX (bounces)",
			mode: modeNone,
			steps: []step{in(ehlo, "250-"), in("MAIL FROM:<>", "250"), in("RCPT TO:<bob@example.com>", "250"),
				in("DATA", "354"), {send: message, want: []string{"250"}}},
			deliveries: 1,
		},
		{
			name:  "RFC 5321 3.6.2 MX is no open relay: 550 5.7.1",
			mode:  modeStartTLS,
			steps: steps(startTLSSteps, []step{in("MAIL FROM:<a@elsewhere.example>", "250"), in("RCPT TO:<x@other.example>", "550 5.7.1"), in("DATA", "502 5.5.1")}),
		},
		{
			name:  "RFC 5321 4.2.2 unknown local user: 550 5.1.1",
			mode:  modeNone,
			steps: []step{in(ehlo, "250-"), in("MAIL FROM:<a@elsewhere.example>", "250"), in("RCPT TO:<nobody@example.com>", "550 5.1.1")},
		},
		{
			name: "RFC 2920 3.1 pipelined transaction answered in order",
			mode: modeNone,
			steps: []step{in(ehlo, "250-"),
				{send: "MAIL FROM:<a@elsewhere.example>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<nobody@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n",
					want: []string{"250", "250", "550 5.1.1", "250", "354"}},
				{send: message, want: []string{"250 2.0.0"}}},
			deliveries: 1,
		},
		{
			name:  "RFC 5321 4.1.1.5 RSET clears the transaction",
			mode:  modeNone,
			steps: []step{in(ehlo, "250-"), in("MAIL FROM:<a@elsewhere.example>", "250"), in("RCPT TO:<alice@example.com>", "250"), in("RSET", "250"), in("DATA", "502 5.5.1")},
		},
		{
			name:  "RFC 5321 4.5.3.1.8 recipients beyond MaxRecipients: 452 4.5.3",
			mode:  modeNone,
			opts:  Options{MaxRecipients: 2},
			steps: []step{in(ehlo, "250-"), in("MAIL FROM:<a@b.example>", "250"), in("RCPT TO:<alice@example.com>", "250"), in("RCPT TO:<bob@example.com>", "250"), in("RCPT TO:<alice@example.com>", "452 4.5.3")},
		},
		{
			name:  "RFC 1870 6 MAIL SIZE over the limit: 552 5.3.4",
			mode:  modeNone,
			opts:  Options{MaxMessageBytes: 1000},
			steps: []step{in(ehlo, "250-"), in("MAIL FROM:<a@b.example> SIZE=1001", "552 5.3.4"), in("MAIL FROM:<a@b.example> SIZE=1000", "250")},
		},
		{
			name: "RFC 1870 6.3 message over the limit: 552 5.3.4, nothing delivered",
			mode: modeNone,
			opts: Options{MaxMessageBytes: 1000},
			steps: []step{in(ehlo, "250-"), in("MAIL FROM:<a@b.example>", "250"), in("RCPT TO:<alice@example.com>", "250"), in("DATA", "354"),
				{send: strings.Repeat(strings.Repeat("x", 98)+"\r\n", 20) + ".\r\n", want: []string{"552 5.3.4"}},
				in("NOOP", "250")},
		},
		{
			name: "RFC 5321 4.5.3.1.6 over-long text line in DATA: 500, nothing delivered",
			mode: modeNone,
			steps: []step{in(ehlo, "250-"), in("MAIL FROM:<a@b.example>", "250"), in("RCPT TO:<alice@example.com>", "250"), in("DATA", "354"),
				{send: strings.Repeat("x", 2500) + "\r\n.\r\n", want: []string{"500 5.5.2", "500 5.4.0", hangup}}},
		},
		{
			name: "RFC 3463 X.2.2 full mailbox: 552 5.2.2",
			mode: modeNone,
			steps: []step{in(ehlo, "250-"), in("MAIL FROM:<a@b.example>", "250"), in("RCPT TO:<full@example.com>", "250"), in("DATA", "354"),
				{send: message, want: []string{"552 5.2.2"}}},
		},
		{
			name:       "RFC 6531 3.4 SMTPUTF8 and RFC 6152 BODY=8BITMIME accepted",
			mode:       modeNone,
			steps:      []step{in(ehlo, "250-"), in("MAIL FROM:<a@b.example> BODY=8BITMIME SMTPUTF8", "250"), in("RCPT TO:<alice@example.com>", "250"), in("DATA", "354"), {send: "Subject: caf\xc3\xa9\r\n\r\n\xc3\xa9\r\n.\r\n", want: []string{"250"}}},
			deliveries: 1,
		},
		{
			name: "RFC 3030 2 BDAT chunks are one message",
			mode: modeNone,
			steps: []step{in(ehlo, "250-"), in("MAIL FROM:<a@b.example>", "250"), in("RCPT TO:<alice@example.com>", "250"),
				{send: "BDAT 9\r\nSubject: ", want: []string{"250 2.0.0"}},
				{send: "BDAT 10 LAST\r\nx\r\n\r\nbody\r\n", want: []string{"250 2.0.0"}}},
			deliveries: 1,
		},
		{
			name: "RFC 3207 4.2 commands pipelined behind STARTTLS are discarded (CVE-2011-0411)",
			mode: modeStartTLS,
			steps: []step{in(ehlo, "250-"),
				{send: "STARTTLS\r\nMAIL FROM:<attacker@elsewhere.example>\r\n", want: []string{"220"}},
				{send: handshake},
				in(ehlo, "250-"),
				in("RCPT TO:<alice@example.com>", "502 5.5.1")},
		},
		{
			name:  "RFC 3207 4.2 the client must EHLO again after STARTTLS",
			mode:  modeStartTLS,
			steps: []step{in(ehlo, "250-"), in("STARTTLS", "220"), {send: handshake}, in("MAIL FROM:<a@b.example>", "502 5.5.1")},
		},
		{
			name:  "RFC 3207 4.2 STARTTLS not offered again after TLS",
			mode:  modeStartTLS,
			steps: steps(startTLSSteps[:3], []step{{send: ehlo + "\r\n", want: []string{"250-"}, absent: []string{"STARTTLS"}}, in("STARTTLS", "502 5.5.1")}),
		},
		{
			name:  "RFC 3207 4 no STARTTLS on an implicit TLS listener",
			mode:  modeImplicit,
			steps: []step{{send: ehlo + "\r\n", want: []string{"250-"}, absent: []string{"STARTTLS"}}, in("STARTTLS", "502 5.5.1")},
		},
		{
			name:  "RFC 3207 4 no STARTTLS without a TLS config",
			mode:  modeNone,
			steps: []step{{send: ehlo + "\r\n", want: []string{"250-"}, absent: []string{"STARTTLS", "AUTH"}}, in("STARTTLS", "502 5.5.1")},
		},
		{
			name: "RFC 4954 4 submission: AUTH neither advertised nor accepted before STARTTLS",
			mode: modeStartTLS,
			opts: Options{Submission: true},
			steps: []step{{send: ehlo + "\r\n", want: []string{"250-"}, contains: []string{"STARTTLS"}, absent: []string{"AUTH"}},
				in(goodAuth, "523 5.7.10"), in("AUTH LOGIN", "523 5.7.10"), in("MAIL FROM:<alice@example.com>", "530 5.7.0")},
		},
		{
			name: "RFC 4954 4 AllowInsecureAuth is ignored where STARTTLS is offered",
			mode: modeStartTLS,
			opts: Options{Submission: true, AllowInsecureAuth: true},
			steps: []step{{send: ehlo + "\r\n", want: []string{"250-"}, absent: []string{"AUTH"}},
				in(goodAuth, "523 5.7.10")},
		},
		{
			name: "RFC 4954 4 AllowInsecureAuth offers AUTH on a listener without TLS",
			mode: modeNone,
			opts: Options{Submission: true, AllowInsecureAuth: true},
			steps: []step{{send: ehlo + "\r\n", want: []string{"250-"}, contains: []string{"AUTH PLAIN LOGIN"}},
				in(goodAuth, "235 2.0.0")},
		},
		{
			name: "RFC 6409 4.3, RFC 4954 6 submission after STARTTLS: AUTH PLAIN, then mail",
			mode: modeStartTLS,
			opts: Options{Submission: true},
			steps: steps(startTLSSteps[:3], []step{
				{send: ehlo + "\r\n", want: []string{"250-"}, contains: []string{"AUTH PLAIN LOGIN"}},
				in("MAIL FROM:<alice@example.com>", "530 5.7.0"),
				in(goodAuth, "235 2.0.0"),
				in("MAIL FROM:<alice@example.com>", "250"), in("RCPT TO:<bob@example.com>", "250"), in("DATA", "354"),
				{send: message, want: []string{"250 2.0.0"}},
			}),
			deliveries: 1,
		},
		{
			name: "RFC 4954 4 AUTH LOGIN with challenges",
			mode: modeImplicit,
			opts: Options{Submission: true},
			steps: []step{in(ehlo, "250-"), in("AUTH LOGIN", "334 "+b64("Username:")), in(b64("alice@example.com"), "334 "+b64("Password:")),
				in(b64(testPassword), "235 2.0.0"), in("MAIL FROM:<alice@example.com>", "250")},
		},
		{
			name:  "RFC 4954 4 AUTH LOGIN with the username as initial response",
			mode:  modeImplicit,
			opts:  Options{Submission: true},
			steps: []step{in(ehlo, "250-"), in("AUTH LOGIN "+b64("alice@example.com"), "334 "+b64("Password:")), in(b64(testPassword), "235 2.0.0")},
		},
		{
			name:  "RFC 4954 4 AUTH PLAIN without initial response",
			mode:  modeImplicit,
			opts:  Options{Submission: true},
			steps: []step{in(ehlo, "250-"), in("AUTH PLAIN", "334 "), in(plain("bob@example.com", testPassword), "235 2.0.0")},
		},
		{
			name:  "RFC 4954 4 client cancels with *: 501",
			mode:  modeImplicit,
			opts:  Options{Submission: true},
			steps: []step{in(ehlo, "250-"), in("AUTH LOGIN", "334 "), in("*", "501"), in(goodAuth, "235")},
		},
		{
			name:  "RFC 4954 4 malformed PLAIN response: 501 5.5.2",
			mode:  modeImplicit,
			opts:  Options{Submission: true},
			steps: []step{in(ehlo, "250-"), in("AUTH PLAIN "+b64("no separators"), "501 5.5.2")},
		},
		{
			name:  "RFC 4954 4 unknown mechanism: 504 5.7.4",
			mode:  modeImplicit,
			opts:  Options{Submission: true},
			steps: []step{in(ehlo, "250-"), in("AUTH CRAM-MD5", "504 5.7.4")},
		},
		{
			name:  "RFC 4954 4 AUTH after AUTH: 503",
			mode:  modeImplicit,
			opts:  Options{Submission: true},
			steps: []step{in(ehlo, "250-"), in(goodAuth, "235"), in(goodAuth, "503 5.5.1")},
		},
		{
			name:  "RFC 4616 2 authorization identity other than the user: 535",
			mode:  modeImplicit,
			opts:  Options{Submission: true},
			steps: []step{in(ehlo, "250-"), in("AUTH PLAIN "+b64("bob@example.com\x00alice@example.com\x00"+testPassword), "535 5.7.8"), in("MAIL FROM:<alice@example.com>", "530")},
		},
		{
			name: "RFC 4954 6 wrong password: 535 5.7.8, RFC 5321 3.8 hang up with 421 after five",
			mode: modeImplicit,
			opts: Options{Submission: true},
			steps: []step{in(ehlo, "250-"),
				in("AUTH PLAIN "+plain("alice@example.com", "wrong"), "535 5.7.8"),
				in("AUTH PLAIN "+plain("alice@example.com", "wrong"), "535 5.7.8"),
				in("AUTH LOGIN", "334"), in(b64("alice@example.com"), "334"), in(b64("wrong"), "535 5.7.8"),
				in("AUTH PLAIN "+plain("nobody@example.com", "wrong"), "535 5.7.8"),
				in("AUTH PLAIN "+plain("alice@example.com", "wrong"), "421 4.7.0", hangup)},
		},
		{
			name: "RFC 6409 6.1 sender must be the authenticated address: 553 5.7.1",
			mode: modeImplicit,
			opts: Options{Submission: true},
			steps: []step{in(ehlo, "250-"), in(goodAuth, "235"),
				in("MAIL FROM:<bob@example.com>", "553 5.7.1"),
				in("MAIL FROM:<>", "553 5.7.1"),
				in("MAIL FROM:<Alice@example.com>", "553 5.7.1"),
				in("MAIL FROM:<alice@EXAMPLE.COM>", "250")},
		},
		{
			name: "RFC 6409 3.3 submission without a relaying backend refuses other domains",
			mode: modeImplicit,
			opts: Options{Submission: true},
			steps: []step{in(ehlo, "250-"), in(goodAuth, "235"), in("MAIL FROM:<alice@example.com>", "250"),
				{send: "RCPT TO:<friend@other.example>\r\n", want: []string{"550 5.7.1"}, contains: []string{"only recipients in local domains"}}},
		},
		{
			name: "RFC 6409 3.3 submission relays other domains for an authenticated user",
			mode: modeImplicit,
			opts: Options{Submission: true, Backend: newRelayBackend()},
			steps: []step{in(ehlo, "250-"), in(goodAuth, "235"), in("MAIL FROM:<alice@example.com>", "250"),
				in("RCPT TO:<friend@other.example>", "250"), in("RCPT TO:<bob@example.com>", "250"),
				in("RCPT TO:<nobody@example.com>", "550 5.1.1"), in("DATA", "354"),
				{send: message, want: []string{"250 2.0.0"}}},
			deliveries: 1,
		},
		{
			name: "RFC 5321 3.6.2 the MX never relays, even with a relaying backend",
			mode: modeImplicit,
			opts: Options{Backend: newRelayBackend()},
			steps: []step{in(ehlo, "250-"), in("MAIL FROM:<alice@example.com>", "250"),
				{send: "RCPT TO:<friend@other.example>\r\n", want: []string{"550 5.7.1"}, contains: []string{"Relaying denied"}},
				in(goodAuth, "502 5.5.1"), in("RCPT TO:<friend@other.example>", "550 5.7.1")},
		},
		{
			name: "RFC 6409 8 submission refuses a header From that is not the user's",
			mode: modeImplicit,
			opts: Options{Submission: true, Backend: newRelayBackend()},
			steps: []step{in(ehlo, "250-"), in(goodAuth, "235"),
				in("MAIL FROM:<alice@example.com>", "250"), in("RCPT TO:<bob@example.com>", "250"), in("DATA", "354"),
				in("From: Bob <bob@example.com>\r\nSubject: forged\r\n\r\nHi.\r\n.", "550 5.7.1"),
				in("MAIL FROM:<alice@example.com>", "250"), in("RCPT TO:<friend@other.example>", "250"), in("DATA", "354"),
				in("From: alice@example.com, bob@example.com\r\nSubject: two\r\n\r\nHi.\r\n.", "550 5.7.1"),
				in("MAIL FROM:<alice@example.com>", "250"), in("RCPT TO:<bob@example.com>", "250"), in("DATA", "354"),
				in("From: alice@example.com\r\nSender: bob@example.com\r\n\r\nHi.\r\n.", "550 5.7.1"),
				in("MAIL FROM:<alice@example.com>", "250"), in("RCPT TO:<bob@example.com>", "250"), in("DATA", "354"),
				in("Subject: no from\r\n\r\nHi.\r\n.", "550 5.6.0"),
				in("MAIL FROM:<alice@example.com>", "250"), in("RCPT TO:<bob@example.com>", "250"), in("DATA", "354"),
				in("From: =?utf-8?q?Al=C3=AFce?= <alice@EXAMPLE.com>\r\nSubject: ok\r\n\r\nHi.\r\n.", "250 2.0.0")},
			deliveries: 1,
		},
		{
			name: "RFC 4954 4 MX offers no AUTH, even over TLS",
			mode: modeImplicit,
			steps: []step{{send: ehlo + "\r\n", want: []string{"250-"}, absent: []string{"AUTH"}},
				in(goodAuth, "502 5.5.1")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, tc.mode, tc.opts)
			c := dial(t, ts.addr, tc.mode == modeImplicit)
			if got := c.reply(); !strings.HasPrefix(got, "220 "+testHostname+" ESMTP") {
				t.Fatalf("greeting %q", got)
			}
			for _, st := range tc.steps {
				if st.send == handshake {
					c.startTLS()
					continue
				}
				c.send(st.send)
				var got string
				for _, want := range st.want {
					if want == hangup {
						c.expectHangup()
						continue
					}
					got = c.reply()
					if !strings.HasPrefix(got, want) {
						t.Fatalf("after %q: got %q, want %q...", st.send, got, want)
					}
				}
				for _, s := range st.contains {
					if !strings.Contains(got, s) {
						t.Errorf("after %q: %q lacks %q", st.send, got, s)
					}
				}
				for _, s := range st.absent {
					if strings.Contains(got, s) {
						t.Errorf("after %q: %q has %q", st.send, got, s)
					}
				}
			}
			if got := len(ts.backend.delivered()); got != tc.deliveries {
				t.Errorf("%d messages delivered, want %d", got, tc.deliveries)
			}
		})
	}
}

// expectHangup expects the server to close the connection.
func (c *textConn) expectHangup() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(testutil.HangGuard))
	line, err := c.r.ReadString('\n')
	if !errors.Is(err, io.EOF) {
		c.t.Fatalf("read %q, %v; want EOF", line, err)
	}
}
