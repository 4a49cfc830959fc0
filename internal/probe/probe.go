// Package probe connects to a mail port the way `openssl s_client` does and
// reports what it serves: the greeting, the negotiated TLS version and
// cipher suite, the peer's certificate chain and whether it verifies. It
// speaks implicit TLS and the STARTTLS dialogues of SMTP (EHLO, STARTTLS;
// RFC 3207), IMAP (STARTTLS; RFC 9051 6.2.1) and POP3 (STLS; RFC 2595 4).
// The mailstack_tls_probe data source is built on it.
package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Protocols and modes a probe speaks.
const (
	SMTP       = "smtp"
	Submission = "submission"
	IMAP       = "imap"
	POP3       = "pop3"

	Implicit = "implicit"
	StartTLS = "starttls"
)

// Protocols and Modes list the accepted values, in documentation order.
var (
	Protocols = []string{SMTP, Submission, IMAP, POP3}
	Modes     = []string{Implicit, StartTLS}
)

// Options describe one probe. Address, Protocol and Mode are required.
type Options struct {
	// Address is host:port.
	Address string
	// Protocol is one of Protocols; submission speaks SMTP.
	Protocol string
	// Mode is Implicit (TLS from the first byte) or StartTLS.
	Mode string
	// ServerName is sent as SNI and checked against the certificate; empty
	// means the host part of Address (SNI is not sent for an IP address).
	ServerName string
	// Roots verify the chain; nil means the system roots.
	Roots *x509.CertPool
	// Timeout bounds the whole probe; zero means 10 seconds.
	Timeout time.Duration
	// Hello is the name sent in EHLO; empty means "mailstack-probe".
	Hello string
}

// Result is what a probe saw.
type Result struct {
	// Greeting is the server's first line (the SMTP 220, IMAP "* OK" or
	// POP3 "+OK" line), read before STARTTLS or after the handshake.
	Greeting string
	// Version is "TLS 1.2" or "TLS 1.3"; CipherSuite its IANA name.
	Version, CipherSuite string
	// Chain is the peer's certificates, leaf first.
	Chain []*x509.Certificate
	// VerifyError says why the chain does not verify for ServerName
	// against the roots; empty when it does.
	VerifyError string
}

// Verified reports whether the chain verified.
func (r *Result) Verified() bool { return r.VerifyError == "" }

// Error is a failed probe: the step that failed and why.
type Error struct {
	// Step is "dial", "greeting", "starttls" or "handshake".
	Step string
	Err  error
}

func (e *Error) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Probe connects, upgrades to TLS as the mode says, and reports. A chain
// that does not verify is not an error (see Result.VerifyError); failing
// to connect, greet or handshake is.
func Probe(ctx context.Context, o Options) (*Result, error) {
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Hello == "" {
		o.Hello = "mailstack-probe"
	}
	dialog, ok := dialogs[o.Protocol]
	if !ok {
		return nil, fmt.Errorf("protocol %q is not one of %s", o.Protocol, strings.Join(Protocols, ", "))
	}
	if o.Mode != Implicit && o.Mode != StartTLS {
		return nil, fmt.Errorf("mode %q is not one of %s", o.Mode, strings.Join(Modes, ", "))
	}
	host, _, err := net.SplitHostPort(o.Address)
	if err != nil {
		return nil, &Error{"dial", err}
	}
	name := o.ServerName
	if name == "" {
		name = host
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", o.Address)
	if err != nil {
		return nil, &Error{"dial", err}
	}
	defer raw.Close()
	deadline, _ := ctx.Deadline()
	raw.SetDeadline(deadline)

	res := &Result{}
	// The chain is verified below, after the handshake, so that a chain
	// that does not verify is still reported.
	cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10}
	if net.ParseIP(name) == nil {
		cfg.ServerName = name
	}
	var conn *tls.Conn
	if o.Mode == Implicit {
		conn = tls.Client(raw, cfg)
		if err := conn.HandshakeContext(ctx); err != nil {
			return nil, &Error{"handshake", err}
		}
		c := newText(conn)
		if res.Greeting, err = dialog.greet(c); err != nil {
			return nil, &Error{"greeting", err}
		}
		dialog.quit(c)
	} else {
		c := newText(raw)
		if res.Greeting, err = dialog.greet(c); err != nil {
			return nil, &Error{"greeting", err}
		}
		if err := dialog.starttls(c, o.Hello); err != nil {
			return nil, &Error{"starttls", err}
		}
		conn = tls.Client(raw, cfg)
		if err := conn.HandshakeContext(ctx); err != nil {
			return nil, &Error{"handshake", err}
		}
		dialog.quit(newText(conn))
	}
	st := conn.ConnectionState()
	res.Version = tls.VersionName(st.Version)
	res.CipherSuite = tls.CipherSuiteName(st.CipherSuite)
	res.Chain = st.PeerCertificates
	res.VerifyError = verify(st.PeerCertificates, name, o.Roots)
	return res, nil
}

// verify checks chain for name against roots, as a client would.
func verify(chain []*x509.Certificate, name string, roots *x509.CertPool) string {
	if len(chain) == 0 {
		return "the server sent no certificate"
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter})
	if err != nil {
		return err.Error()
	}
	return ""
}

// text reads CRLF lines and writes commands.
type text struct {
	r *bufio.Reader
	w net.Conn
}

func newText(c net.Conn) *text { return &text{r: bufio.NewReader(c), w: c} }

func (t *text) line() (string, error) {
	l, err := t.r.ReadString('\n')
	if err != nil {
		if errors.Is(err, net.ErrClosed) || l == "" {
			return "", fmt.Errorf("connection closed before a reply: %w", err)
		}
		return "", err
	}
	return strings.TrimRight(l, "\r\n"), nil
}

func (t *text) cmd(s string) error {
	_, err := t.w.Write([]byte(s + "\r\n"))
	return err
}

// dialog is one protocol's greeting, upgrade and goodbye.
type dialog struct {
	greet    func(*text) (string, error)
	starttls func(t *text, hello string) error
	quit     func(*text)
}

var dialogs = map[string]dialog{
	SMTP:       smtpDialog,
	Submission: smtpDialog,
	IMAP:       imapDialog,
	POP3:       pop3Dialog,
}

// smtpReply reads a (multi-line) SMTP reply: its code and lines.
func smtpReply(t *text) (int, []string, error) {
	var lines []string
	for {
		l, err := t.line()
		if err != nil {
			return 0, lines, err
		}
		lines = append(lines, l)
		if len(l) < 3 {
			return 0, lines, fmt.Errorf("malformed SMTP reply %q", l)
		}
		var code int
		if _, err := fmt.Sscanf(l[:3], "%d", &code); err != nil {
			return 0, lines, fmt.Errorf("malformed SMTP reply %q", l)
		}
		if len(l) == 3 || l[3] == ' ' {
			return code, lines, nil
		}
		if l[3] != '-' {
			return 0, lines, fmt.Errorf("malformed SMTP reply %q", l)
		}
	}
}

var smtpDialog = dialog{
	greet: func(t *text) (string, error) {
		code, lines, err := smtpReply(t)
		if err != nil {
			return "", err
		}
		if code != 220 {
			return strings.Join(lines, "\n"), fmt.Errorf("server greeted with %q, not 220", strings.Join(lines, " / "))
		}
		return lines[0], nil
	},
	// RFC 3207 4: EHLO, see STARTTLS advertised, STARTTLS, expect 220.
	starttls: func(t *text, hello string) error {
		if err := t.cmd("EHLO " + hello); err != nil {
			return err
		}
		code, lines, err := smtpReply(t)
		if err != nil {
			return err
		}
		if code != 250 {
			return fmt.Errorf("EHLO answered %q", strings.Join(lines, " / "))
		}
		offered := false
		for _, l := range lines[1:] {
			if f := strings.Fields(l[min(len(l), 4):]); len(f) > 0 && strings.EqualFold(f[0], "STARTTLS") {
				offered = true
			}
		}
		if !offered {
			return errors.New("the server does not offer STARTTLS in its EHLO reply")
		}
		if err := t.cmd("STARTTLS"); err != nil {
			return err
		}
		code, lines, err = smtpReply(t)
		if err != nil {
			return err
		}
		if code != 220 {
			return fmt.Errorf("STARTTLS answered %q", strings.Join(lines, " / "))
		}
		return nil
	},
	quit: func(t *text) { _ = t.cmd("QUIT") },
}

var imapDialog = dialog{
	greet: func(t *text) (string, error) {
		l, err := t.line()
		if err != nil {
			return "", err
		}
		if !strings.HasPrefix(l, "* OK") && !strings.HasPrefix(l, "* PREAUTH") {
			return l, fmt.Errorf("server greeted with %q, not * OK", l)
		}
		return l, nil
	},
	// RFC 9051 6.2.1: "a STARTTLS" answered "a OK" before the handshake;
	// untagged lines may come first.
	starttls: func(t *text, _ string) error {
		if err := t.cmd("a STARTTLS"); err != nil {
			return err
		}
		for {
			l, err := t.line()
			if err != nil {
				return err
			}
			if strings.HasPrefix(l, "* ") {
				continue
			}
			if strings.HasPrefix(l, "a OK") {
				return nil
			}
			return fmt.Errorf("STARTTLS answered %q", l)
		}
	},
	quit: func(t *text) { _ = t.cmd("z LOGOUT") },
}

var pop3Dialog = dialog{
	greet: func(t *text) (string, error) {
		l, err := t.line()
		if err != nil {
			return "", err
		}
		if !strings.HasPrefix(l, "+OK") {
			return l, fmt.Errorf("server greeted with %q, not +OK", l)
		}
		return l, nil
	},
	// RFC 2595 4: STLS answered +OK before the handshake.
	starttls: func(t *text, _ string) error {
		if err := t.cmd("STLS"); err != nil {
			return err
		}
		l, err := t.line()
		if err != nil {
			return err
		}
		if !strings.HasPrefix(l, "+OK") {
			return fmt.Errorf("STLS answered %q", l)
		}
		return nil
	},
	quit: func(t *text) { _ = t.cmd("QUIT") },
}
