package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailstack/terraform-provider-mailstack/runtime/authlimit"
)

// Defaults for the zero values of [Options] fields.
const (
	// DefaultMaxMessageBytes is the message size limit: 25 MiB.
	DefaultMaxMessageBytes = 25 << 20
	// DefaultMaxRecipients is the recipient limit per message.
	DefaultMaxRecipients = 100
	// DefaultReadTimeout bounds the wait for a command or a block of data.
	DefaultReadTimeout = 5 * time.Minute
	// DefaultWriteTimeout bounds the writing of a reply.
	DefaultWriteTimeout = time.Minute
)

// Options configures a [Server]. Backend and Hostname are required; every
// other field has a usable zero value.
type Options struct {
	// Backend checks recipients, stores messages and checks logins. Required.
	Backend Backend

	// Hostname is the name in the greeting ("220 <Hostname> ESMTP Service
	// Ready") and in Received: headers. Required. (go-smtp v0.25 answers
	// EHLO with "250-Hello <client name>", without it.)
	Hostname string

	// Submission selects the message submission service (RFC 6409): AUTH is
	// required before MAIL, the envelope and header senders must be the
	// authenticated address, and recipients outside the local domains are
	// accepted only if the Backend is a Relayer. False selects the MX
	// service, which offers no AUTH and never relays.
	Submission bool

	// TLSConfig, when non-nil, offers STARTTLS (RFC 3207). Nil offers no
	// STARTTLS: the listener is either implicit TLS (its connections are
	// *tls.Conn) or plain text.
	TLSConfig *tls.Config

	// AllowInsecureAuth offers AUTH on connections without TLS from
	// loopback clients (127.0.0.0/8, ::1) only: a client from any other
	// address is offered no AUTH and its AUTH is refused with 523 5.7.10
	// (Dovecot's disable_plaintext_auth rule). It is only meant for
	// tls.mode = "none" listeners and is ignored when TLSConfig is set: a
	// password never crosses a connection in clear text where STARTTLS is
	// on offer.
	AllowInsecureAuth bool

	// MaxMessageBytes bounds a message as sent by the client (SIZE, RFC
	// 1870); a larger one is refused with 552 5.3.4 and nothing is
	// delivered. Zero means DefaultMaxMessageBytes (25 MiB).
	MaxMessageBytes int64

	// MaxRecipients bounds the recipients of one message; RCPT beyond it gets
	// 452 4.5.3. Zero means DefaultMaxRecipients (100).
	MaxRecipients int

	// ReadTimeout bounds the wait for each command line and for each 64 KiB
	// of message data (RFC 5321 section 4.5.3.2); zero means
	// DefaultReadTimeout (5 minutes). WriteTimeout bounds each reply; zero
	// means DefaultWriteTimeout (1 minute).
	ReadTimeout, WriteTimeout time.Duration

	// AuthLimiter paces failed logins by client address; the runtime shares
	// one between all its front ends. Nil means a limiter of this server's
	// own with authlimit.DefaultPolicy.
	AuthLimiter *authlimit.Limiter

	// Logger receives one line per delivery and per session; nil means
	// slog.Default(). Passwords and message bodies are never logged.
	Logger *slog.Logger
}

// Server is an SMTP or submission front end. It serves any number of
// listeners with one configuration; its methods are safe for concurrent use.
type Server struct {
	opts Options
	log  *slog.Logger
	gs   *gosmtp.Server

	// ctx is passed to the Backend; Shutdown cancels it when it gives up
	// waiting for sessions, so that deliveries of closed sessions stop.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	listeners []net.Listener

	shutdownOnce sync.Once
	drained      chan struct{} // closed when every connection has ended

	limiter *authlimit.Limiter
}

// New returns a server for opts. It panics if opts.Backend is nil or
// opts.Hostname is empty: both are programming errors the runtime's config
// validation rules out.
func New(opts Options) *Server {
	if opts.Backend == nil {
		panic("smtp: Options.Backend is nil")
	}
	if opts.Hostname == "" {
		panic("smtp: Options.Hostname is empty")
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if opts.MaxRecipients <= 0 {
		opts.MaxRecipients = DefaultMaxRecipients
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.TLSConfig != nil {
		opts.AllowInsecureAuth = false
	}

	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		drained: make(chan struct{}),
		limiter: opts.AuthLimiter,
	}
	if s.limiter == nil {
		s.limiter = authlimit.New(authlimit.DefaultPolicy, nil)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())

	gs := gosmtp.NewServer(gosmtp.BackendFunc(s.newSession))
	gs.Domain = opts.Hostname
	gs.TLSConfig = opts.TLSConfig
	gs.AllowInsecureAuth = opts.AllowInsecureAuth
	gs.MaxMessageBytes = opts.MaxMessageBytes
	gs.MaxRecipients = opts.MaxRecipients
	gs.ReadTimeout = opts.ReadTimeout
	gs.WriteTimeout = opts.WriteTimeout
	gs.EnableSMTPUTF8 = true
	gs.ErrorLog = errorLog{opts.Logger}
	s.gs = gs
	return s
}

// protocol names the service for the AUTH limiter's observer.
func (s *Server) protocol() string {
	if s.opts.Submission {
		return "submission"
	}
	return "smtp"
}

// Serve answers the connections ln accepts until ln is closed or Shutdown is
// called, and then returns nil; other accept errors are returned. Closing ln
// leaves the sessions already open running.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.listeners = append(s.listeners, ln)
	s.mu.Unlock()

	err := s.gs.Serve(ln)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for the open sessions to
// end (the client QUITs or its ReadTimeout runs out), then returns nil.
// When ctx is done first it cancels the context of deliveries still running
// and returns ctx.Err(); the connections still open are closed by whoever
// accepted them (runtime/listener closes every connection it handed over
// at the drain deadline), which ends their sessions. It may be called more
// than once, and concurrently.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		listeners := s.listeners
		s.mu.Unlock()
		for _, ln := range listeners {
			// A Serve call may not have handed ln to go-smtp yet; go-smtp
			// closes the others again, which is harmless.
			ln.Close()
		}
		go func() {
			// go-smtp waits for its connection goroutines without a
			// deadline; ctx is applied below.
			s.gs.Shutdown(context.Background())
			close(s.drained)
		}()
	})

	select {
	case <-s.drained:
		return nil
	case <-ctx.Done():
		s.cancel()
		return ctx.Err()
	}
}

// Refusal is the reply for a client turned away by a connection limit (the
// listener writes it and hangs up): 421 as a greeting, RFC 5321 section
// 3.1, with Postfix's enhanced code.
func (s *Server) Refusal(perClient bool) string {
	if perClient {
		return "421 4.7.0 " + s.opts.Hostname + " Too many connections from your address, try again later\r\n"
	}
	return "421 4.7.0 " + s.opts.Hostname + " Too many connections, try again later\r\n"
}

// errorLog routes go-smtp's internal error reports to slog. Failed TLS
// handshakes and dropped connections are routine on a public port and go to
// Debug; anything else (accept errors, panics) is an Error.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Printf(format string, v ...any) {
	l.report(strings.HasPrefix(format, "error handling"), fmt.Sprintf(format, v...))
}

func (l errorLog) Println(v ...any) {
	l.report(false, strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}

func (l errorLog) report(routine bool, msg string) {
	level := slog.LevelError
	if routine {
		level = slog.LevelDebug
	}
	l.log.Log(context.Background(), level, "smtp connection", "error", msg)
}
