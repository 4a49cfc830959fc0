package outbound

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/runtime/tlspolicy"
)

// Timeouts of the SMTP client, after RFC 5321 section 4.5.3.2.
const (
	connectTimeout = 30 * time.Second
	replyTimeout   = 5 * time.Minute
	dataTimeout    = 10 * time.Minute
)

// Reply is an SMTP reply from a peer.
type Reply struct {
	Code     int
	Enhanced string // "4.3.0", or empty
	Text     string // the lines after the code, joined with a space
}

func (r *Reply) String() string {
	if r.Enhanced != "" {
		return fmt.Sprintf("%d %s %s", r.Code, r.Enhanced, r.Text)
	}
	return fmt.Sprintf("%d %s", r.Code, r.Text)
}

// Permanent reports whether the reply is a 5xx.
func (r *Reply) Permanent() bool { return r.Code >= 500 }

// ReplyError is a reply that ends an attempt, with the host that sent it.
type ReplyError struct {
	Remote string // "mx.example.org[192.0.2.1]"
	Reply  *Reply
}

func (e *ReplyError) Error() string { return e.Remote + ": " + e.Reply.String() }

// conn is one SMTP client connection to a peer MX or relay.
type conn struct {
	nc     net.Conn
	r      *bufio.Reader
	w      *bufio.Writer
	dot    *bufio.Writer // message data on its way into w, which it never flushes
	remote string        // for messages: "host[ip]"
	host   string
	ext    map[string]string // EHLO keywords, upper case
	tls    *tls.ConnectionState
	// reportErr is how the connection fails a policy that only reports
	// (MTA-STS testing); nil when it meets it or there is none.
	reportErr error
	// set is the configuration the connection was made under; after a
	// Configure it takes no further message.
	set *settings
}

// dialSpec is what a connection needs besides the address.
type dialSpec struct {
	host        string // peer name: MX host or relay host
	domain      string // the recipient domain (TLS reports); empty for the relay
	addr        string // ip:port
	helo        string // our EHLO name
	implicitTLS bool
	noTLS       bool // relay mode "none", or a retry after a failed opportunistic handshake
	policy      *tlspolicy.Policy
	roots       *x509.CertPool
	sessions    *tlspolicy.Sessions // nil: no resumption
	dialer      func(ctx context.Context, network, addr string) (net.Conn, error)
}

// tlsConfig is the policy's client configuration, resuming sessions of
// earlier connections to the same address under the same policy.
func (s dialSpec) tlsConfig() *tls.Config {
	cfg := s.policy.TLSConfig(s.host, s.roots)
	cfg.ClientSessionCache = s.sessions.For(s.policy, s.addr)
	return cfg
}

// errNoTLSRetry means an opportunistic handshake failed and a plain-text
// connection may be tried instead.
var errNoTLSRetry = errors.New("STARTTLS handshake failed; retrying without TLS")

// dial connects, reads the greeting, says EHLO and negotiates TLS as the
// policy demands. A policy the peer does not meet is a *tlspolicy.Error;
// the connection is closed without a MAIL command.
func dial(ctx context.Context, s dialSpec) (*conn, error) {
	host, _, _ := net.SplitHostPort(s.addr)
	remote := s.host + "[" + host + "]"
	dctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	nc, err := s.dialer(dctx, "tcp", s.addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", remote, err)
	}
	c := &conn{nc: nc, remote: remote, host: s.host}
	if s.implicitTLS {
		tc := tls.Client(nc, s.tlsConfig())
		if err := tc.HandshakeContext(dctx); err != nil {
			nc.Close()
			if tlspolicy.IsPolicyError(err) {
				return nil, err
			}
			return nil, s.policy.Violation("TLS handshake with %s failed: %v", remote, err)
		}
		st := tc.ConnectionState()
		c.tls = &st
		nc = tc
		c.nc = tc
	}
	c.r = bufio.NewReaderSize(nc, 4096)
	c.w = bufio.NewWriterSize(nc, 32<<10)
	// (Hidden behind an interface: given a *bufio.Writer, bufio would
	// return it instead of a buffer of its own.)
	c.dot = bufio.NewWriterSize(struct{ io.Writer }{c.w}, 4<<10)
	if err := c.hello(s.helo); err != nil {
		c.nc.Close()
		return nil, err
	}
	if c.tls == nil && !s.noTLS {
		if err := c.startTLS(dctx, s); err != nil {
			if !errors.Is(err, errNoTLSRetry) {
				c.quit()
			}
			return nil, err
		}
	}
	if c.tls == nil && s.policy.RequiresTLS() {
		// noTLS with a policy that needs TLS never gets here: the relay
		// policy of mode "none" is opportunistic.
		c.quit()
		return nil, s.policy.NoTLS("no TLS with %s", remote)
	}
	if c.tls != nil && s.policy.Report != nil {
		c.reportErr = s.policy.Report.Check(s.host, s.roots, *c.tls)
	}
	return c, nil
}

func (c *conn) hello(helo string) error {
	c.nc.SetDeadline(time.Now().Add(replyTimeout))
	greet, err := c.readReply()
	if err != nil {
		return err
	}
	if greet.Code != 220 {
		return &ReplyError{c.remote, greet}
	}
	return c.ehlo(helo)
}

// ehlo says EHLO (RFC 5321 section 4.1.1.1) and records the extensions;
// a peer that refuses it gets HELO.
func (c *conn) ehlo(helo string) error {
	rep, lines, err := c.cmdLines("EHLO " + helo)
	if err != nil {
		return err
	}
	c.ext = map[string]string{}
	if rep.Code != 250 {
		rep, err = c.cmd("HELO " + helo)
		if err != nil {
			return err
		}
		if rep.Code != 250 {
			return &ReplyError{c.remote, rep}
		}
		return nil
	}
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, " ")
		c.ext[strings.ToUpper(k)] = v
	}
	return nil
}

func (c *conn) startTLS(ctx context.Context, s dialSpec) error {
	if _, ok := c.ext["STARTTLS"]; !ok {
		if s.policy.RequiresTLS() {
			return s.policy.NoTLS("%s did not offer STARTTLS", c.remote)
		}
		return nil
	}
	rep, err := c.cmd("STARTTLS")
	if err != nil {
		return err
	}
	if rep.Code != 220 {
		if s.policy.RequiresTLS() {
			return s.policy.NoTLS("%s refused STARTTLS: %s", c.remote, rep)
		}
		return nil
	}
	tc := tls.Client(c.nc, s.tlsConfig())
	if err := tc.HandshakeContext(ctx); err != nil {
		c.nc.Close()
		if tlspolicy.IsPolicyError(err) {
			return err
		}
		if s.policy.RequiresTLS() {
			return s.policy.Violation("TLS handshake with %s failed: %v", c.remote, err)
		}
		return fmt.Errorf("%s: %w: %v", c.remote, errNoTLSRetry, err)
	}
	st := tc.ConnectionState()
	c.tls = &st
	c.nc = tc
	c.r.Reset(tc)
	c.w.Reset(tc)
	return c.ehlo(s.helo)
}

// auth logs in with AUTH PLAIN (RFC 4954, RFC 4616), only over TLS.
func (c *conn) auth(user, pass string) error {
	if c.tls == nil {
		return fmt.Errorf("%s: refusing to send the relay password without TLS", c.remote)
	}
	mechs, ok := c.ext["AUTH"]
	if !ok {
		return fmt.Errorf("%s: the relay does not offer AUTH", c.remote)
	}
	if !strings.Contains(" "+strings.ToUpper(mechs)+" ", " PLAIN ") {
		return fmt.Errorf("%s: the relay offers AUTH %s but not PLAIN", c.remote, mechs)
	}
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	rep, err := c.cmd("AUTH PLAIN " + ir)
	if err != nil {
		return err
	}
	if rep.Code != 235 {
		return &ReplyError{c.remote, rep}
	}
	return nil
}

// tlsInfo describes the connection's TLS for logs and Received: headers.
func (c *conn) tlsInfo() string {
	if c.tls == nil {
		return "none"
	}
	info := tls.VersionName(c.tls.Version) + " " + tls.CipherSuiteName(c.tls.CipherSuite)
	if c.tls.DidResume {
		info += " resumed"
	}
	return info
}

// envelope is one transaction's worth of work.
type envelope struct {
	from     string
	rcpts    []string
	size     int64
	eightBit bool
	utf8     bool
	body     io.Reader
	// beforeDot is called after the data was sent, just before the
	// final dot; an error stops the transaction.
	beforeDot func() error
	// written is set once the commands (MAIL, RCPT, DATA) went out
	// behind the previous transaction's end of data.
	written bool
}

// canPipeline reports whether env's commands may go out before the reply
// to what precedes them: the peer offers PIPELINING (RFC 2920) and, if env
// needs it, SMTPUTF8 (which transaction checks before writing anything).
func (c *conn) canPipeline(env *envelope) bool {
	_, pipelining := c.ext["PIPELINING"]
	_, utf8 := c.ext["SMTPUTF8"]
	return pipelining && (utf8 || !env.utf8)
}

func (c *conn) mailCommand(env *envelope) string {
	mail := "MAIL FROM:<" + env.from + ">"
	if _, ok := c.ext["SIZE"]; ok {
		mail += " SIZE=" + strconv.FormatInt(env.size, 10)
	}
	if _, ok := c.ext["8BITMIME"]; ok && env.eightBit {
		mail += " BODY=8BITMIME"
	}
	if env.utf8 {
		mail += " SMTPUTF8"
	}
	return mail
}

// writeCommands buffers env's MAIL, every RCPT and DATA, to go out in one
// write (RFC 2920 section 3.1: DATA ends the group).
func (c *conn) writeCommands(env *envelope) {
	c.w.WriteString(c.mailCommand(env) + "\r\n")
	for _, r := range env.rcpts {
		c.w.WriteString("RCPT TO:<" + r + ">\r\n")
	}
	c.w.WriteString("DATA\r\n")
	env.written = true
}

// transaction sends one message. It returns one reply per recipient (the
// RCPT refusal, or the reply to the end of data); err is non-nil when the
// connection can no longer be used, and then the replies of recipients
// not yet answered are nil.
//
// With PIPELINING, env's commands may have gone out already (env.written)
// behind the previous message, and when next is not nil and may be
// pipelined, its commands go out behind this message's end of data, in
// the same write (RFC 2920 section 3.1 lets message content start a group
// of commands; "." is not among those that must end one): a stream of
// messages costs one write and one wait for replies each, not two. The
// caller sees that next's commands went out by next.written; the replies
// to them belong to next's transaction.
func (c *conn) transaction(env *envelope, next *envelope) ([]*Reply, error) {
	replies := make([]*Reply, len(env.rcpts))
	if env.utf8 {
		if _, ok := c.ext["SMTPUTF8"]; !ok {
			rep := &Reply{Code: 553, Enhanced: "5.6.7", Text: c.remote + " does not support SMTPUTF8, which the addresses need (RFC 6531 section 3.2)"}
			for i := range replies {
				replies[i] = rep
			}
			return replies, nil
		}
	}
	_, pipelining := c.ext["PIPELINING"]
	c.nc.SetDeadline(time.Now().Add(replyTimeout))

	accepted := 0
	if pipelining {
		// With PIPELINING (RFC 2920) MAIL, every RCPT and DATA go in one
		// write and the replies are read in order.
		if !env.written {
			c.writeCommands(env)
		}
		if err := c.w.Flush(); err != nil {
			return replies, err
		}
		mailRep, err := c.readReply()
		if err != nil {
			return replies, err
		}
		for i := range env.rcpts {
			rep, err := c.readReply()
			if err != nil {
				return replies, err
			}
			if mailRep.Code != 250 {
				replies[i] = mailRep
			} else if rep.Code/100 != 2 {
				replies[i] = rep
			} else {
				accepted++
			}
		}
		dataRep, err := c.readReply()
		if err != nil {
			return replies, err
		}
		if dataRep.Code != 354 {
			if accepted > 0 {
				fillNil(replies, dataRep)
			}
			return replies, c.rset()
		}
		if accepted == 0 {
			// RFC 2920 section 3.1: DATA was accepted although no
			// recipient was; send an empty message's end so the
			// transaction closes, and forget it.
			if _, err := c.w.WriteString(".\r\n"); err != nil {
				return replies, err
			}
			c.w.Flush()
			if _, err := c.readReply(); err != nil {
				return replies, err
			}
			return replies, c.rset()
		}
	} else {
		rep, err := c.cmd(c.mailCommand(env))
		if err != nil {
			return replies, err
		}
		if rep.Code != 250 {
			fillAll(replies, rep)
			return replies, c.rset()
		}
		for i, r := range env.rcpts {
			rep, err := c.cmd("RCPT TO:<" + r + ">")
			if err != nil {
				return replies, err
			}
			if rep.Code/100 != 2 {
				replies[i] = rep
			} else {
				accepted++
			}
		}
		if accepted == 0 {
			return replies, c.rset()
		}
		rep, err = c.cmd("DATA")
		if err != nil {
			return replies, err
		}
		if rep.Code != 354 {
			fillNil(replies, rep)
			return replies, c.rset()
		}
	}

	c.nc.SetDeadline(time.Now().Add(dataTimeout))
	// textproto's DotWriter flushes the writer it is given when it
	// closes; c.dot keeps the end of data in c.w, so that next's commands
	// go out in the same write.
	dw := textproto.NewWriter(c.dot).DotWriter()
	if _, err := io.Copy(dw, env.body); err != nil {
		return replies, err
	}
	if env.beforeDot != nil {
		if err := env.beforeDot(); err != nil {
			return replies, err
		}
	}
	if err := dw.Close(); err != nil {
		return replies, err
	}
	if next != nil && c.canPipeline(next) {
		c.writeCommands(next)
	}
	if err := c.w.Flush(); err != nil {
		return replies, err
	}
	c.nc.SetDeadline(time.Now().Add(replyTimeout))
	rep, err := c.readReply()
	if err != nil {
		return replies, err
	}
	fillNil(replies, rep)
	return replies, nil
}

func fillAll(replies []*Reply, rep *Reply) {
	for i := range replies {
		replies[i] = rep
	}
}

func fillNil(replies []*Reply, rep *Reply) {
	for i := range replies {
		if replies[i] == nil {
			replies[i] = rep
		}
	}
}

func (c *conn) rset() error {
	rep, err := c.cmd("RSET")
	if err != nil {
		return err
	}
	if rep.Code != 250 {
		return &ReplyError{c.remote, rep}
	}
	return nil
}

// quit ends the session politely and closes the connection.
func (c *conn) quit() {
	c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.cmd("QUIT"); err != nil {
		c.nc.Close()
		return
	}
	c.nc.Close()
}

func (c *conn) cmd(line string) (*Reply, error) {
	rep, _, err := c.cmdLines(line)
	return rep, err
}

func (c *conn) cmdLines(line string) (*Reply, []string, error) {
	c.w.WriteString(line)
	c.w.WriteString("\r\n")
	if err := c.w.Flush(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", c.remote, err)
	}
	return c.readReplyLines()
}

func (c *conn) readReply() (*Reply, error) {
	rep, _, err := c.readReplyLines()
	return rep, err
}

// maxReplyLines bounds a multi-line reply.
const maxReplyLines = 100

// readReplyLines reads one (possibly multi-line) reply (RFC 5321 section
// 4.2) and returns it with its lines' texts.
func (c *conn) readReplyLines() (*Reply, []string, error) {
	var lines []string
	rep := &Reply{}
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return nil, nil, fmt.Errorf("%s: reading reply: %w", c.remote, err)
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 3 {
			return nil, nil, fmt.Errorf("%s: malformed reply %q", c.remote, line)
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil || code < 200 || code > 599 || rep.Code != 0 && code != rep.Code {
			return nil, nil, fmt.Errorf("%s: malformed reply %q", c.remote, line)
		}
		rep.Code = code
		text := ""
		if len(line) > 4 {
			text = line[4:]
		}
		lines = append(lines, text)
		if len(line) == 3 || line[3] == ' ' {
			break
		}
		if line[3] != '-' || len(lines) > maxReplyLines {
			return nil, nil, fmt.Errorf("%s: malformed reply %q", c.remote, line)
		}
	}
	rep.Text = strings.Join(lines, " ")
	if e, rest, ok := strings.Cut(rep.Text, " "); ok && isEnhanced(e, rep.Code) {
		rep.Enhanced, rep.Text = e, rest
		for i := 1; i < len(lines); i++ {
			rep.Text = strings.Replace(rep.Text, " "+e+" ", " ", 1)
		}
	}
	return rep, lines, nil
}

// isEnhanced reports whether s is an RFC 3463 status code of the reply's
// class.
func isEnhanced(s string, code int) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || parts[0] != strconv.Itoa(code/100) {
		return false
	}
	for _, p := range parts[1:] {
		if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 999 {
			return false
		}
	}
	return true
}
