package smtp

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailstack/terraform-provider-mailstack/runtime/authlimit"
	"github.com/mailstack/terraform-provider-mailstack/runtime/connid"
)

var (
	_ gosmtp.Session     = (*session)(nil)
	_ gosmtp.AuthSession = (*session)(nil)
)

// session is one SMTP session: from the EHLO to QUIT, a closed connection,
// or STARTTLS (go-smtp then starts a new session for the next EHLO, so a
// session's TLS state never changes).
type session struct {
	srv  *Server
	conn *gosmtp.Conn
	log  *slog.Logger // the server's, with the connection's session id
	// netConn is the connection the session started on; go-smtp swaps
	// conn.Conn() for a *tls.Conn before it ends the session on STARTTLS.
	netConn net.Conn

	remote   string     // remote address, for logs
	clientIP netip.Addr // the AUTH limiter's key
	remoteIP string     // address literal for Received:, "[192.0.2.1]" or "[IPv6:...]"
	tls      string     // "TLS 1.3 TLS_AES_128_GCM_SHA256"; empty without TLS
	started  time.Time

	user         string // authenticated address; empty before AUTH
	authFailures int

	from  string
	rcpts []string
	// relay is set when a recipient is outside the local domains
	// (submission with a Relayer backend only).
	relay bool

	messages int
	bytes    int64
}

func (s *Server) newSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	nc := c.Conn()
	sess := &session{
		srv:      s,
		conn:     c,
		log:      s.log.With(connid.Key, connid.Of(nc)),
		netConn:  nc,
		remote:   nc.RemoteAddr().String(),
		clientIP: authlimit.ClientIP(nc.RemoteAddr()),
		started:  time.Now(),
	}
	sess.remoteIP = addressLiteral(nc.RemoteAddr())
	if state, ok := c.TLSConnectionState(); ok {
		sess.tls = tls.VersionName(state.Version) + " " + tls.CipherSuiteName(state.CipherSuite)
	}
	return sess, nil
}

// Mail implements go-smtp's Session: RFC 5321 section 4.1.1.2. On
// submission the sender must be the authenticated address (RFC 6409
// section 6.1); the MX takes any sender, including the null one.
func (s *session) Mail(from string, _ *gosmtp.MailOptions) error {
	if s.srv.opts.Submission {
		if s.user == "" {
			return replyAuthRequired
		}
		if !sameAddress(from, s.user) {
			return replySenderNotOwned
		}
	}
	s.from = from
	return nil
}

// Rcpt implements go-smtp's Session: RFC 5321 section 4.1.1.3. go-smtp
// enforces MaxRecipients before calling it.
func (s *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	err := s.srv.opts.Backend.CheckRecipient(s.srv.ctx, to)
	if errors.Is(err, ErrRelayDenied) && s.mayRelay() {
		err = nil
		s.relay = true
	}
	if err == nil {
		s.rcpts = append(s.rcpts, to)
		return nil
	}
	reply, ok := rcptReply(err, s.srv.opts.Submission)
	if !ok {
		s.log.Error("checking recipient", "recipient", to, "remote", s.remote, "error", err)
	}
	return reply
}

// Data implements go-smtp's Session: RFC 5321 section 4.1.1.4. The whole
// message is read before anything is delivered, so a message over the size
// limit or cut short delivers nothing.
func (s *session) Data(r io.Reader) error {
	buf := bufPool.Get().(*[]byte)
	defer putBuf(buf)

	b := s.appendReceived((*buf)[:0], time.Now())
	b, err := s.readMessage(b, r)
	*buf = b // keep the grown buffer
	if err != nil {
		var reply *gosmtp.SMTPError
		switch {
		case errors.As(err, &reply):
			return reply // go-smtp's 552 5.3.4 for a message over MaxMessageBytes
		case errors.Is(err, gosmtp.ErrTooLongLine):
			return replyLineTooLong
		}
		return replyTempFailure
	}

	if s.srv.opts.Submission {
		if reply := checkHeaderFrom(b, s.user); reply != nil {
			s.srv.log.Warn("message refused: its From header is missing or not the authenticated address", "user", s.user, "remote", s.remote)
			return reply
		}
	}
	if err := s.deliver(b); err != nil {
		reply, ok := deliverReply(err)
		if !ok {
			s.log.Error("delivering message", "from", s.from, "recipients", len(s.rcpts),
				"size", len(b), "remote", s.remote, "error", err)
		}
		return reply
	}
	s.messages++
	s.bytes += int64(len(b))
	s.log.Info("message delivered", "from", s.from, "recipients", len(s.rcpts),
		"size", len(b), "remote", s.remote, "tls", s.tls != "", "user", s.user)
	return nil
}

// mayRelay reports whether this session may send to other domains: only
// an authenticated submission session, and only if the backend can relay.
func (s *session) mayRelay() bool {
	_, ok := s.srv.opts.Backend.(Relayer)
	return ok && s.srv.opts.Submission && s.user != ""
}

// deliver hands the message to the backend: Submit when it has recipients
// in other domains, Deliver otherwise.
func (s *session) deliver(b []byte) error {
	if s.relay && s.mayRelay() {
		return s.srv.opts.Backend.(Relayer).Submit(s.srv.ctx, s.user, s.from, s.rcpts, b)
	}
	return s.srv.opts.Backend.Deliver(s.srv.ctx, s.from, s.rcpts, b)
}

// readChunk is how much message data may arrive per ReadTimeout.
const readChunk = 64 << 10

// readMessage appends the message r yields to b. The read deadline moves
// forward with every chunk so that a large message on a slow link is timed
// per block (RFC 5321 section 4.5.3.2.5) and not as a whole.
func (s *session) readMessage(b []byte, r io.Reader) ([]byte, error) {
	nc := s.conn.Conn()
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		chunk := b[len(b):min(cap(b), len(b)+readChunk)]
		if err := nc.SetReadDeadline(time.Now().Add(s.srv.opts.ReadTimeout)); err != nil {
			return b, err
		}
		n, err := r.Read(chunk)
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// Reset implements go-smtp's Session: RSET, a new EHLO or the end of a
// transaction. The login survives it.
func (s *session) Reset() {
	s.from = ""
	s.relay = false
	clear(s.rcpts)
	s.rcpts = s.rcpts[:0]
}

// Logout implements go-smtp's Session. go-smtp calls it when the connection
// closes and when STARTTLS succeeds; only the former ends the connection's
// log line.
func (s *session) Logout() error {
	if s.conn.Conn() != s.netConn {
		return nil // STARTTLS: the TLS session that follows logs the connection
	}
	s.log.Info("session closed", "remote", s.remote, "helo", s.conn.Hostname(),
		"tls", s.tls, "user", s.user, "messages", s.messages, "bytes", s.bytes,
		"duration", time.Since(s.started).Round(time.Millisecond))
	return nil
}

// sameAddress reports whether a and b are one mailbox: the local part
// compared exactly (RFC 5321 section 2.4), the domain without regard to case.
func sameAddress(a, b string) bool {
	ai, bi := strings.LastIndexByte(a, '@'), strings.LastIndexByte(b, '@')
	if ai < 0 || bi < 0 {
		return false
	}
	return a[:ai] == b[:bi] && strings.EqualFold(a[ai+1:], b[bi+1:])
}

// maxPooledBuf keeps the buffers of unusually large messages out of the pool.
const maxPooledBuf = 1 << 20

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 16<<10)
	return &b
}}

func putBuf(b *[]byte) {
	if cap(*b) <= maxPooledBuf {
		bufPool.Put(b)
	}
}
