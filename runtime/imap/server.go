// Package imap owns the runtime's IMAP front end: IMAP4rev1 and IMAP4rev2
// (RFC 3501, RFC 9051) on go-imap/v2's imapserver, with a backend on
// runtime/store. It serves what a mail client needs (mailboxes, APPEND,
// FETCH, SEARCH, STORE, COPY, MOVE, EXPUNGE, IDLE woken by deliveries) and
// keeps passwords off clear-text connections. The listener manager owns the
// sockets and TLS and hands listeners to Serve.
package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailstack/terraform-provider-mailstack/runtime/authlimit"
	"github.com/mailstack/terraform-provider-mailstack/runtime/connid"
	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
	"github.com/mailstack/terraform-provider-mailstack/third_party/go-imap/imapserver"
)

// DefaultMaxLiteralSize is the APPEND size limit when Options.MaxLiteralSize
// is zero: 50 MiB, above what common providers accept per message.
const DefaultMaxLiteralSize = 50 << 20

// Options configures a Server. Store is the only required field.
type Options struct {
	// Store holds the users and their mail. Required.
	Store store.Backend
	// Logger receives one line per session and any server errors. Nil
	// means slog.Default(). Passwords are never logged.
	Logger *slog.Logger
	// TLSConfig enables STARTTLS (RFC 9051 6.2.1). When set, LOGIN and
	// AUTHENTICATE are refused until TLS is up and LOGINDISABLED is
	// advertised, whatever AllowInsecureAuth says. Anything a client
	// pipelined in clear text behind STARTTLS is never executed: imapserver
	// hands those bytes to the TLS handshake, which fails and ends the
	// connection (the CVE-2011-0411 class; see TestStartTLSInjection).
	// Nil: no STARTTLS; use it for implicit-TLS listeners (whose
	// connections are already *tls.Conn) and tls.mode = "none".
	TLSConfig *tls.Config
	// AllowInsecureAuth permits LOGIN and AUTHENTICATE on a plain
	// connection from a loopback client (127.0.0.0/8, ::1); any other
	// client is told LOGINDISABLED and refused with PRIVACYREQUIRED
	// (Dovecot's disable_plaintext_auth rule). Only for listeners with
	// tls.mode = "none"; ignored when TLSConfig is set.
	AllowInsecureAuth bool
	// MaxLiteralSize is the largest message APPEND accepts, in bytes
	// (advertised as APPENDLIMIT). Zero means DefaultMaxLiteralSize. Other
	// literals are limited to 4 KiB by imapserver.
	MaxLiteralSize int64
	// AuthLimiter paces failed logins by client address; the runtime
	// shares one between all its front ends. Nil means a limiter of this
	// server's own with authlimit.DefaultPolicy.
	AuthLimiter *authlimit.Limiter
}

// Server is an IMAP server. It can serve several listeners at once.
type Server struct {
	store       store.Backend
	log         *slog.Logger
	limit       uint32
	imap        *imapserver.Server
	limiter     *authlimit.Limiter
	implicitTLS bool // no STARTTLS and no clear-text LOGIN: connections are *tls.Conn

	// shutdown is closed by Shutdown; idling sessions say BYE on it, and
	// logins waiting for the AUTH limiter give up (stop cancels ctx).
	shutdown chan struct{}
	ctx      context.Context
	stop     context.CancelFunc

	mu        sync.Mutex
	closing   bool
	listeners map[net.Listener]struct{}
	sessions  sync.WaitGroup
}

// New returns a server for opts. It panics if opts.Store is nil, which is a
// programming error.
func New(opts Options) *Server {
	if opts.Store == nil {
		panic("imap: Options.Store is required")
	}
	s := &Server{
		store:       opts.Store,
		log:         opts.Logger,
		limit:       uint32(min(opts.MaxLiteralSize, 1<<32-1)),
		limiter:     opts.AuthLimiter,
		implicitTLS: opts.TLSConfig == nil && !opts.AllowInsecureAuth,
		shutdown:    make(chan struct{}),
		listeners:   make(map[net.Listener]struct{}),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.limiter == nil {
		s.limiter = authlimit.New(authlimit.DefaultPolicy, nil)
	}
	s.ctx, s.stop = context.WithCancel(context.Background())
	if opts.MaxLiteralSize <= 0 {
		s.limit = DefaultMaxLiteralSize
	}
	s.imap = imapserver.New(&imapserver.Options{
		NewSession: s.newSession,
		Caps:       capabilities,
		ID:         &imap.IDData{Name: "mailstack"},
		Logger:     logAdapter{s.log},
		TLSConfig:  opts.TLSConfig,
		// An idle session keeps these buffers for as long as it idles:
		// 1 KiB holds any command line short of a literal (literals are
		// read through it in chunks), and writes need little, since the
		// coalescingConn gathers them into pooled 16 KiB buffers itself.
		// Together they save 6.5 KiB per session against imapserver's
		// 4 KiB each (10,000 IDLE sessions: docs/benchmarks.md).
		ReadBufferSize:  1024,
		WriteBufferSize: 512,
		// Behind a coalescingConn imapserver cannot tell a TLS connection;
		// on implicit TLS, coalescingListener lets only those through.
		InsecureAuth: opts.TLSConfig == nil,
	})
	return s
}

// capabilities the server advertises; imapserver adds STARTTLS,
// LOGINDISABLED, AUTH=PLAIN, IDLE, APPENDLIMIT and friends by state.
var capabilities = imap.CapSet{
	imap.CapIMAP4rev1:             {},
	imap.CapIMAP4rev2:             {},
	imap.CapNamespace:             {},
	imap.CapUIDPlus:               {},
	imap.CapMove:                  {},
	imap.CapESearch:               {},
	imap.CapSearchRes:             {},
	imap.CapListStatus:            {},
	imap.CapStatusSize:            {},
	imap.CapBinary:                {},
	imap.CapLiteralPlus:           {},
	imap.CapChildren:              {},
	imap.CapListExtended:          {},
	imap.CapID:                    {},
	imap.CapSpecialUse:            {},
	imap.CapCreateSpecialUse:      {},
	imap.CapQuota:                 {},
	imap.CapCondStore:             {},
	imap.CapQResync:               {},
	imap.CapSort:                  {},
	imap.CapMultiAppend:           {},
	imap.CapCatenate:              {},
	imap.CapSortDisplay:           {},
	imap.CapESort:                 {},
	imapserver.CapContextSearch:   {},
	imap.CapNotify:                {},
	"THREAD=ORDEREDSUBJECT":       {},
	"THREAD=REFERENCES":           {},
	imap.Cap("QUOTA=RES-STORAGE"): {},
}

// Serve accepts connections on ln until Shutdown. For implicit TLS (no
// TLSConfig and no AllowInsecureAuth), ln must yield *tls.Conn; any other
// connection is closed at once. It returns nil after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return errors.New("imap: server is shut down")
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	err := s.imap.Serve(coalescingListener{Listener: ln, implicitTLS: s.implicitTLS, log: s.log})
	s.mu.Lock()
	delete(s.listeners, ln)
	closing := s.closing
	s.mu.Unlock()
	if closing {
		return nil
	}
	if err != nil {
		return fmt.Errorf("serving IMAP on %s: %w", ln.Addr(), err)
	}
	return nil
}

// Shutdown stops accepting connections, tells idling clients BYE, lets the
// other sessions finish until ctx is done and then closes them.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.shutdown)
		s.stop()
	}
	var err error
	for ln := range s.listeners {
		if cerr := ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
			err = fmt.Errorf("closing listener %s: %w", ln.Addr(), cerr)
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.sessions.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		if cerr := ctx.Err(); err == nil {
			err = cerr
		}
	}
	// Closes whatever is left; its "already closed" error is expected when
	// nothing was ever served.
	s.imap.Close()
	<-done
	return err
}

// Refusal is the reply for a client turned away by a connection limit (the
// listener writes it and hangs up): a BYE greeting, RFC 9051 section 7.1.5,
// with RFC 5530's UNAVAILABLE.
func (s *Server) Refusal(perClient bool) string {
	if perClient {
		return "* BYE [UNAVAILABLE] Too many connections from your address, try again later\r\n"
	}
	return "* BYE [UNAVAILABLE] Too many connections, try again later\r\n"
}

// logAdapter sends imapserver's messages to slog.
type logAdapter struct{ log *slog.Logger }

func (l logAdapter) Printf(format string, args ...any) {
	l.log.Warn("imap: " + fmt.Sprintf(format, args...))
}

// newSession is imapserver's NewSession hook.
func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	s.mu.Lock()
	closing := s.closing
	if !closing {
		s.sessions.Add(1)
	}
	s.mu.Unlock()
	if closing {
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeBye, Text: "Server shutting down"}
	}
	nc := c.NetConn()
	return &session{srv: s, conn: c, log: s.log.With(connid.Key, connid.Of(nc)), start: time.Now(), remote: nc.RemoteAddr()}, nil, nil
}
