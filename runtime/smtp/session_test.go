package smtp

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDeliveredMessage checks what Deliver gets: the envelope, a Received:
// header in front (RFC 5321 section 4.4) and the data with dot-stuffing
// undone (RFC 5321 section 4.5.2).
func TestDeliveredMessage(t *testing.T) {
	tests := []struct {
		name     string
		mode     tlsMode
		opts     Options
		auth     bool
		rcpts    []string
		received string // regexp for the Received: header
	}{
		{
			name:     "MX over STARTTLS",
			mode:     modeStartTLS,
			rcpts:    []string{"alice@example.com"},
			received: `^Received: from client\.example \(\[127\.0\.0\.1\]\)\r\n\tby mail\.example\.com with ESMTPS \(TLS 1\.3 TLS_[A-Z0-9_]+\)\r\n\tfor <alice@example\.com>;\r\n\t\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n`,
		},
		{
			name:     "MX in clear text, two recipients: no for clause",
			mode:     modeNone,
			rcpts:    []string{"alice@example.com", "bob@example.com"},
			received: `^Received: from client\.example \(\[127\.0\.0\.1\]\)\r\n\tby mail\.example\.com with ESMTP;\r\n\t[^\r\n]+\r\n`,
		},
		{
			name:     "submission over implicit TLS",
			mode:     modeImplicit,
			opts:     Options{Submission: true},
			auth:     true,
			rcpts:    []string{"bob@example.com"},
			received: `^Received: from client\.example \(\[127\.0\.0\.1\]\)\r\n\tby mail\.example\.com with ESMTPSA \(TLS 1\.3 [A-Z0-9_]+\)\r\n\tfor <bob@example\.com>;`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, tc.mode, tc.opts)
			c := dial(t, ts.addr, tc.mode == modeImplicit)
			c.reply()
			c.cmd(ehlo)
			if tc.mode == modeStartTLS {
				c.cmd("STARTTLS")
				c.startTLS()
				c.cmd(ehlo)
			}
			if tc.auth {
				c.cmd(goodAuth)
			}
			c.cmd("MAIL FROM:<alice@example.com>")
			for _, r := range tc.rcpts {
				if got := c.cmd("RCPT TO:<" + r + ">"); !strings.HasPrefix(got, "250") {
					t.Fatalf("RCPT: %q", got)
				}
			}
			c.cmd("DATA")
			if got := c.cmd("From: alice@example.com\r\nSubject: x\r\n\r\n..leading dot\r\nend\r\n."); !strings.HasPrefix(got, "250") {
				t.Fatalf("DATA: %q", got)
			}
			msgs := ts.backend.delivered()
			if len(msgs) != 1 {
				t.Fatalf("%d messages delivered", len(msgs))
			}
			m := msgs[0]
			if m.from != "alice@example.com" || strings.Join(m.recipients, ",") != strings.Join(tc.rcpts, ",") {
				t.Errorf("envelope %q -> %q", m.from, m.recipients)
			}
			if !regexp.MustCompile(tc.received).MatchString(m.body) {
				t.Errorf("Received: header does not match %s:\n%q", tc.received, m.body)
			}
			if !strings.HasSuffix(m.body, "\r\nSubject: x\r\n\r\n.leading dot\r\nend\r\n") {
				t.Errorf("body %q", m.body)
			}
		})
	}
}

// TestLargeMessage: a message larger than the pooled buffer and than one
// read chunk arrives whole.
func TestLargeMessage(t *testing.T) {
	ts := startServer(t, modeImplicit, Options{})
	c := dial(t, ts.addr, true)
	c.reply()
	c.cmd(ehlo)
	c.cmd("MAIL FROM:<a@b.example> SIZE=300000")
	c.cmd("RCPT TO:<alice@example.com>")
	c.cmd("DATA")
	body := benchMessage(300000)
	c.send(string(body))
	if got := c.reply(); !strings.HasPrefix(got, "250") {
		t.Fatalf("DATA: %q", got)
	}
	msgs := ts.backend.delivered()
	sent := string(body[:len(body)-len(".\r\n")])
	if len(msgs) != 1 || !strings.HasSuffix(msgs[0].body, "\r\n"+sent) {
		t.Fatalf("message not delivered whole")
	}
}

// TestStalledData: a client that stops sending in the middle of DATA gets
// 451 after ReadTimeout and nothing is delivered (RFC 5321 4.5.3.2.5).
func TestStalledData(t *testing.T) {
	ts := startServer(t, modeNone, Options{ReadTimeout: 200 * time.Millisecond})
	c := dial(t, ts.addr, false)
	// Everything up to the stall goes out in one write before the greeting
	// is read (PIPELINING), so that the server has it however slowly this
	// test runs: only the stall in DATA is idle time.
	c.send(ehlo + "\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nSubject: half\r\n")
	for _, want := range []string{"220 ", "250-", "250 ", "250 ", "354 "} {
		if got := c.reply(); !strings.HasPrefix(got, want) {
			t.Fatalf("got %q, want %q...", got, want)
		}
	}
	if got := c.reply(); !strings.HasPrefix(got, "451 4.3.0") {
		t.Fatalf("got %q", got)
	}
	if n := len(ts.backend.delivered()); n != 0 {
		t.Fatalf("%d messages delivered", n)
	}
}

// TestDeliverErrorIsNotShown: a store failure is 451 4.3.0 and its text
// stays in the log (the "no internal detail to the client").
func TestDeliverErrorIsNotShown(t *testing.T) {
	ts := startServer(t, modeNone, Options{})
	ts.backend.deliverErr = errors.New("fsync /var/mail/secret/path: input/output error")
	c := dial(t, ts.addr, false)
	c.reply()
	c.cmd(ehlo)
	c.cmd("MAIL FROM:<a@b.example>")
	c.cmd("RCPT TO:<alice@example.com>")
	c.cmd("DATA")
	if got := c.cmd("x\r\n."); got != "451 4.3.0 Temporary failure, please try again later" {
		t.Errorf("got %q", got)
	}
}

func TestSameAddress(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"alice@example.com", "alice@example.com", true},
		{"alice@EXAMPLE.com", "alice@example.COM", true},
		{"Alice@example.com", "alice@example.com", false}, // RFC 5321 2.4: local parts are case-sensitive
		{"alice@example.com", "alice@example.org", false},
		{"alice", "alice", false},
		{"", "alice@example.com", false},
		{"a@b@example.com", "a@b@EXAMPLE.com", true},
	}
	for _, tc := range tests {
		t.Run(tc.a+"~"+tc.b, func(t *testing.T) {
			if got := sameAddress(tc.a, tc.b); got != tc.want {
				t.Errorf("sameAddress(%q, %q) = %v", tc.a, tc.b, got)
			}
		})
	}
}

func TestReplies(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("store: %w", err) }
	tests := []struct {
		name      string
		got       func() (code int, enhanced string, logged bool)
		code      int
		enhanced  string
		notLogged bool
	}{
		{"unknown user", rcpt(wrap(ErrUnknownRecipient), false), 550, "5.1.1", true},
		{"relay MX", rcpt(wrap(ErrRelayDenied), false), 550, "5.7.1", true},
		{"relay submission", rcpt(wrap(ErrRelayDenied), true), 550, "5.7.1", true},
		{"rcpt store failure", rcpt(errors.New("disk"), false), 451, "4.3.0", false},
		{"quota", deliver(wrap(ErrQuotaExceeded)), 552, "5.2.2", true},
		{"deliver failure", deliver(context.DeadlineExceeded), 451, "4.3.0", false},
		{"wrapped auth error is not quota", deliver(wrap(ErrAuthFailed)), 451, "4.3.0", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, enhanced, ok := tc.got()
			if code != tc.code || enhanced != tc.enhanced || ok != tc.notLogged {
				t.Errorf("got %d %s (expected=%v), want %d %s (expected=%v)", code, enhanced, ok, tc.code, tc.enhanced, tc.notLogged)
			}
		})
	}
	if replyRelayNotSupported.Message == replyRelayDenied.Message {
		t.Error("submission relay refusal must say relaying is not supported yet")
	}
}

func rcpt(err error, submission bool) func() (int, string, bool) {
	return func() (int, string, bool) {
		r, ok := rcptReply(err, submission)
		return r.Code, fmt.Sprintf("%d.%d.%d", r.EnhancedCode[0], r.EnhancedCode[1], r.EnhancedCode[2]), ok
	}
}

func deliver(err error) func() (int, string, bool) {
	return func() (int, string, bool) {
		r, ok := deliverReply(err)
		return r.Code, fmt.Sprintf("%d.%d.%d", r.EnhancedCode[0], r.EnhancedCode[1], r.EnhancedCode[2]), ok
	}
}

func TestAppendSanitized(t *testing.T) {
	tests := map[string]string{
		"client.example":      "client.example",
		"[192.0.2.1]":         "[192.0.2.1]",
		"evil\r\nBcc: x":      "evil??Bcc:?x",
		"a(b)<c>;d":           "a?b??c??d",
		"caf\xc3\xa9.example": "caf??.example",
	}
	for in, want := range tests {
		if got := string(appendSanitized(nil, in)); got != want {
			t.Errorf("appendSanitized(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAddressLiteral(t *testing.T) {
	tests := []struct {
		addr string
		want string
	}{
		{"192.0.2.1:25", "[192.0.2.1]"},
		{"[2001:db8::1]:25", "[IPv6:2001:db8::1]"},
		{"[::ffff:192.0.2.1]:25", "[192.0.2.1]"},
		{"not an address", "[unknown]"},
	}
	for _, tc := range tests {
		if got := addressLiteral(fakeAddr(tc.addr)); got != tc.want {
			t.Errorf("addressLiteral(%q) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }
