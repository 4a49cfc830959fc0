package pop3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/runtime/authlimit"
	"github.com/mailstack/terraform-provider-mailstack/runtime/connid"
)

// state is the RFC 1939 session state. UPDATE is not a state here: QUIT in
// TRANSACTION performs it and ends the session.
type state int

const (
	stateAuthorization state = iota
	stateTransaction
)

var (
	// errQuit ends a session normally after its last reply.
	errQuit = errors.New("pop3: session ended")
	// errLineTooLong ends a session whose client sent an overlong line.
	errLineTooLong = errors.New("pop3: command line too long")
)

// session is one client connection.
type session struct {
	srv    *Server
	raw    net.Conn // the accepted connection; closing it ends the session
	conn   net.Conn // raw, or the *tls.Conn over it
	r      *bufio.Reader
	out    *connWriter
	w      *bufio.Writer
	ctx    context.Context
	cancel context.CancelFunc
	isTLS  bool
	state  state

	// AUTHORIZATION state.
	id           string     // session id for the logs (connid)
	clientIP     netip.Addr // the AUTH limiter's key
	pendingUser  string     // USER argument awaiting PASS
	authFailures int
	badCommands  int

	// TRANSACTION state.
	user     string
	drop     Maildrop
	msgs     []Message
	deleted  []bool
	ndeleted int

	// For the session log line.
	start     time.Time
	retrieved int
	committed int
	err       error // the first internal (non-client) error
}

func newSession(srv *Server, c net.Conn) *session {
	ctx, cancel := context.WithCancel(srv.ctx)
	out := &connWriter{conn: c, timeout: srv.idle}
	return &session{
		srv:      srv,
		raw:      c,
		conn:     c,
		r:        bufio.NewReaderSize(c, maxLineLength),
		out:      out,
		w:        bufio.NewWriterSize(out, writeBufferSize),
		ctx:      ctx,
		cancel:   cancel,
		start:    time.Now(),
		clientIP: authlimit.ClientIP(c.RemoteAddr()),
		id:       connid.Of(c),
	}
}

// serve runs the session to its end and logs it.
func (s *session) serve() {
	end := s.runRecovering()
	s.cancel()
	if s.drop != nil {
		if err := s.drop.Close(); err != nil {
			s.internal(fmt.Errorf("closing maildrop: %w", err))
		}
	}
	s.conn.Close() // over TLS, sends close_notify first
	s.log(end)
}

// runRecovering runs the session and turns a panic (a bug, most likely in
// a backend) into the end of this session only: the runtime's other
// listeners and sessions keep serving, as net/http and go-smtp do.
func (s *session) runRecovering() (end error) {
	defer func() {
		if v := recover(); v != nil {
			end = fmt.Errorf("panic: %v", v)
			s.internal(fmt.Errorf("panic: %v\n%s", v, debug.Stack()))
		}
	}()
	return s.run()
}

// run greets the client and executes commands until the session ends. The
// returned error says why it ended (errQuit for a client QUIT).
func (s *session) run() error {
	if tc, ok := s.conn.(*tls.Conn); ok {
		if err := s.handshake(tc); err != nil {
			return err
		}
	}
	greeting := "+OK POP3 server ready"
	if h := s.srv.opts.Hostname; h != "" {
		greeting = "+OK " + h + " POP3 server ready"
	}
	s.reply(greeting)
	for {
		line, err := s.readLine()
		if err != nil {
			s.readFailed(err)
			return err
		}
		if err := s.execute(line); err != nil {
			s.w.Flush()
			return err
		}
	}
}

// handshake completes a TLS handshake within handshakeTimeout.
func (s *session) handshake(tc *tls.Conn) error {
	tc.SetDeadline(time.Now().Add(min(handshakeTimeout, s.srv.idle)))
	if err := tc.HandshakeContext(s.ctx); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	tc.SetDeadline(time.Time{})
	s.conn = tc
	s.isTLS = true
	return nil
}

// readLine flushes pending replies unless a whole command is already
// buffered (PIPELINING, RFC 2449 section 6.6: replies to a pipelined batch
// go out together), then reads one line within the idle timeout and returns
// it without its line ending. A bare LF is accepted as a line ending.
func (s *session) readLine() (string, error) {
	if buf, _ := s.r.Peek(s.r.Buffered()); bytes.IndexByte(buf, '\n') < 0 {
		if err := s.w.Flush(); err != nil {
			return "", err
		}
	}
	s.conn.SetReadDeadline(time.Now().Add(s.srv.idle))
	line, err := s.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", errLineTooLong
	}
	if err != nil {
		return "", err
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
	return string(line), nil
}

// readFailed tells the client why the session ends, where that helps it.
func (s *session) readFailed(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, errLineTooLong):
		s.reply("-ERR line too long")
	case errors.As(err, &ne) && ne.Timeout():
		s.reply("-ERR autologout: idle for too long")
	default:
		return
	}
	s.w.Flush()
}

// reply writes one response line. Write errors are sticky in the buffered
// writer and surface at the next flush.
func (s *session) reply(line string) {
	s.w.WriteString(line)
	s.w.WriteString("\r\n")
}

func (s *session) replyf(format string, args ...any) {
	fmt.Fprintf(s.w, format, args...)
	s.w.WriteString("\r\n")
}

// bad replies to a command that is unknown, malformed or not allowed now,
// and ends the session after maxBadCommands of them.
func (s *session) bad(reply string) error {
	s.reply(reply)
	s.badCommands++
	if s.badCommands >= maxBadCommands {
		s.reply("-ERR too many bad commands, closing connection")
		return errQuit
	}
	return nil
}

// internal records an error that is the server's fault, not the client's;
// the client only ever sees a generic response code.
func (s *session) internal(err error) {
	if s.err == nil {
		s.err = err
	}
}

// log writes the session's one log line.
func (s *session) log(end error) {
	level := slog.LevelInfo
	attrs := []slog.Attr{
		slog.String(connid.Key, s.id),
		slog.String("remote", s.raw.RemoteAddr().String()),
		slog.String("user", s.user),
		slog.Bool("tls", s.isTLS),
		slog.Int("retrieved", s.retrieved),
		slog.Int("deleted", s.committed),
		slog.Int("auth_failures", s.authFailures),
		slog.Int64("bytes_out", s.out.n),
		slog.Duration("duration", time.Since(s.start)),
	}
	if end != nil && !errors.Is(end, errQuit) {
		attrs = append(attrs, slog.String("end", end.Error()))
	}
	if s.err != nil {
		level = slog.LevelWarn
		attrs = append(attrs, slog.String("error", s.err.Error()))
	}
	s.srv.logger.LogAttrs(context.Background(), level, "pop3 session", attrs...)
}

// connWriter writes to the connection with a fresh write deadline per
// write, so a client that stops reading is dropped after the idle timeout
// however long the response, and counts the bytes.
type connWriter struct {
	conn    net.Conn
	timeout time.Duration
	n       int64
}

func (w *connWriter) Write(p []byte) (int, error) {
	if err := w.conn.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
		return 0, err
	}
	n, err := w.conn.Write(p)
	w.n += int64(n)
	return n, err
}
