package pop3

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/runtime/authlimit"
)

// Defaults and limits. The idle timeout is an option; RFC 1939 section 3
// requires an autologout timer of at least 10 minutes, which is the default.
const (
	defaultIdleTimeout = 10 * time.Minute
	// handshakeTimeout bounds a TLS handshake (implicit or after STLS), so a
	// client cannot hold a connection open by never finishing one.
	handshakeTimeout = 30 * time.Second
	// maxLineLength bounds a command line including CRLF. RFC 2449 section
	// 4 limits commands to 255 octets; SASL responses carrying long
	// passwords need more, so we accept up to this and close beyond it.
	maxLineLength = 4096
	// writeBufferSize matches the largest TLS record payload, so a RETR
	// fills whole records.
	writeBufferSize = 16 << 10
	// maxBadCommands closes sessions that send unknown, malformed or
	// refused commands instead of speaking POP3 (e.g. a cross-protocol
	// request from a browser).
	maxBadCommands = 10
)

// Options configure a Server. The only required field is Backend.
type Options struct {
	// Backend authenticates users and opens their maildrops. Required.
	Backend Backend
	// Hostname is named in the greeting and the sign-off. Empty: no name.
	Hostname string
	// Logger receives one line per session. Nil means slog.Default().
	Logger *slog.Logger
	// TLSConfig, when non-nil, makes the server offer STLS (RFC 2595) on
	// connections that are not already TLS, and refuse USER, PASS and AUTH
	// before it. Nil: no STLS.
	TLSConfig *tls.Config
	// AllowInsecureAuth permits USER, PASS and AUTH on connections without
	// TLS from loopback clients (127.0.0.0/8, ::1) only; any other client
	// is refused them as without it. It is only for listeners with
	// tls.mode = "none" and is ignored when TLSConfig is set: a listener
	// that offers STLS never takes a password in clear. False (the
	// default) refuses credentials on plain-text connections.
	AllowInsecureAuth bool
	// IdleTimeout is how long the server waits for the next command line
	// (and for a client to accept output) before it closes the session
	// without entering the UPDATE state. Zero or negative means 10
	// minutes, the minimum RFC 1939 section 3 allows for autologout.
	IdleTimeout time.Duration
	// AuthLimiter paces failed logins by client address; the runtime
	// shares one between all its front ends. Nil means a limiter of this
	// server's own with authlimit.DefaultPolicy.
	AuthLimiter *authlimit.Limiter
}

// Server is a POP3 server. Create it with New; it may Serve several
// listeners at once.
type Server struct {
	opts   Options
	logger *slog.Logger
	idle   time.Duration

	limiter *authlimit.Limiter

	// ctx is the parent of every session's context; cancel ends them all
	// when Shutdown runs out of time.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	closing   bool
	listeners map[*net.Listener]struct{}
	sessions  map[*session]struct{}
	wg        sync.WaitGroup // one per running session
}

// New returns a server for opts. Call Serve to start it.
func New(opts Options) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:      opts,
		logger:    opts.Logger,
		idle:      opts.IdleTimeout,
		limiter:   opts.AuthLimiter,
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[*net.Listener]struct{}),
		sessions:  make(map[*session]struct{}),
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.idle <= 0 {
		s.idle = defaultIdleTimeout
	}
	if s.limiter == nil {
		s.limiter = authlimit.New(authlimit.DefaultPolicy, nil)
	}
	return s
}

// Refusal is the reply for a client turned away by a connection limit (the
// listener writes it instead of the greeting and hangs up): -ERR with RFC
// 3206's SYS/TEMP, a temporary condition to retry later.
func (s *Server) Refusal(perClient bool) string {
	if perClient {
		return "-ERR [SYS/TEMP] too many connections from your address, try again later\r\n"
	}
	return "-ERR [SYS/TEMP] too many connections, try again later\r\n"
}

// Serve accepts connections on ln and runs a session for each. It returns
// nil once ln is closed or Shutdown is called (at once, closing ln, if
// Shutdown already was), and an error only if the server cannot run at all,
// such as when Options.Backend is nil. Connections that are *tls.Conn are
// implicit TLS: the handshake completes before the greeting, so a
// plain-text client hears nothing. Accept errors other than a closed
// listener are logged and retried with a backoff.
func (s *Server) Serve(ln net.Listener) error {
	if s.opts.Backend == nil {
		return errors.New("pop3: Options.Backend is required")
	}
	if !s.track(&ln, true) {
		ln.Close()
		return nil
	}
	defer s.track(&ln, false)

	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.shuttingDown() {
				return nil
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logger.Warn("pop3 accept failed", "addr", ln.Addr().String(), "error", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		sess := s.newSession(c)
		if sess == nil {
			c.Close()
			continue
		}
		go func() {
			defer s.wg.Done()
			defer s.untrack(sess)
			sess.serve()
		}()
	}
}

// Shutdown stops accepting connections by closing every listener passed to
// Serve, then waits for the running sessions to end. When ctx is done first,
// it closes the remaining connections (those sessions do not enter the
// UPDATE state, so nothing they marked is deleted), waits for their
// goroutines and returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		(*ln).Close()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.cancel()
	s.mu.Lock()
	for sess := range s.sessions {
		sess.raw.Close()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

func (s *Server) shuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// track adds or removes a listener; adding fails once Shutdown has begun.
func (s *Server) track(ln *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.listeners, ln)
		return true
	}
	if s.closing {
		return false
	}
	s.listeners[ln] = struct{}{}
	return true
}

// newSession registers a session for c, or returns nil once Shutdown has
// begun. Registering under the lock keeps wg.Add ordered before wg.Wait.
func (s *Server) newSession(c net.Conn) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil
	}
	sess := newSession(s, c)
	s.sessions[sess] = struct{}{}
	s.wg.Add(1)
	return sess
}

func (s *Server) untrack(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, sess)
}
