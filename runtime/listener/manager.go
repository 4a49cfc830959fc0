// Package listener owns the runtime's sockets: it binds each configured
// address, applies the listener's TLS mode (implicit TLS handshakes every
// connection, within a timeout, before the front end sees it; STARTTLS
// hands the front end a TLS config to offer; none does neither), serves
// certificates and client CAs from watched files, limits connections per
// listener and per client address, and swaps front ends in place when a
// listener changes, so sockets that stay are never closed and reopened
// and connections in flight drain in the background.
//
// Certificates come from sources - keystore entries or PEM pairs, each
// loaded once however many listeners serve it and reloaded on its own
// when its files change (inotify where available, polling always) -
// and a handshake picks among a listener's by the client's server name
// (sni.go). OCSP responses are fetched, kept on disk and stapled in the
// background (ocsp.go). Session tickets are sealed with the server's own
// keys, shared by all its listeners and rotated daily (tickets.go).
//
// Handshakes take no lock and do no I/O for certificates: GetCertificate
// loads an atomic pointer to an index that sources rebuild when what they
// serve changes.
package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/errkind"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

// Frontend is a protocol server (SMTP, IMAP, POP3) serving the connections
// of one listener.
type Frontend interface {
	// Serve accepts connections from ln until it is closed.
	Serve(ln net.Listener) error
	// Shutdown stops accepting and lets sessions end until ctx is done,
	// then closes them.
	Shutdown(ctx context.Context) error
}

// NewFrontendFunc builds the front end for l. starttls is the TLS config to
// offer with STARTTLS, nil unless l.TLS.Mode is starttls.
type NewFrontendFunc func(l config.Listener, starttls *tls.Config) (Frontend, error)

// Options configure a Manager. NewFrontend is the only required field.
type Options struct {
	// NewFrontend builds protocol front ends.
	NewFrontend NewFrontendFunc
	// Logger receives socket and certificate events; nil means slog.Default().
	Logger *slog.Logger
	// DrainTimeout bounds how long a replaced or removed front end's
	// sessions may take to end; zero means 30 seconds.
	DrainTimeout time.Duration
	// CertPollInterval is how often keystore files are checked for
	// changes; zero means one second.
	CertPollInterval time.Duration
	// HandshakeTimeout bounds an implicit-TLS handshake, from accept to
	// finished; zero means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// OCSPCacheDir keeps the latest OCSP response of each stapled
	// certificate, so that a restarted runtime staples at once; "" keeps
	// none on disk.
	OCSPCacheDir string
	// OCSPClient asks OCSP responders; nil means an http.Client with a
	// 10-second timeout.
	OCSPClient *http.Client
}

// DefaultHandshakeTimeout is how long an implicit-TLS client has to finish
// its handshake when Options.HandshakeTimeout is zero (the POP3 front end
// gives STLS the same).
const DefaultHandshakeTimeout = 30 * time.Second

// Manager runs a set of listeners by id.
type Manager struct {
	opts    Options
	log     *slog.Logger
	certs   *certCache
	tickets *ticketKeys // the server's session ticket keys, shared by its listeners

	// maxConns limits open connections per listener; zero means none.
	maxConns atomic.Int64
	// perIP limits open connections per client address and listener;
	// nil means none.
	perIP atomic.Pointer[perIPSetting]

	changeMu  sync.Mutex // serializes Apply, Remove and Shutdown
	mu        sync.Mutex // guards listeners and their cfg and cert; held only briefly
	listeners map[string]*listener
	drains    sync.WaitGroup
}

// SetMaxConnections limits the open connections of each listener whose
// settings set no limit of their own (config.Listener.MaxConnections);
// zero means no limit. Connections already open are kept.
func (m *Manager) SetMaxConnections(n int) { m.maxConns.Store(int64(n)) }

// SetMaxConnectionsPerIP limits the connections one client address may have
// open on a listener whose settings set no such limit of their own
// (config.Listener.MaxConnectionsPerIP, which applies to loopback too);
// zero means no limit. With exemptLoopback, clients on loopback addresses
// are not limited. Connections already open are kept.
func (m *Manager) SetMaxConnectionsPerIP(n int, exemptLoopback bool) {
	if n <= 0 {
		m.perIP.Store(nil)
		return
	}
	m.perIP.Store(&perIPSetting{limit: n, exemptLoopback: exemptLoopback})
}

type perIPSetting struct {
	limit          int
	exemptLoopback bool
}

// New returns a Manager with no listeners.
func New(opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	if opts.CertPollInterval == 0 {
		opts.CertPollInterval = time.Second
	}
	if opts.HandshakeTimeout == 0 {
		opts.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if opts.OCSPClient == nil {
		opts.OCSPClient = &http.Client{Timeout: ocspFetchTimeout}
	}
	ocsp := &ocspOptions{cacheDir: opts.OCSPCacheDir, client: opts.OCSPClient, now: time.Now}
	return &Manager{
		opts:      opts,
		log:       opts.Logger,
		certs:     &certCache{poll: opts.CertPollInterval, log: opts.Logger, ocsp: ocsp},
		tickets:   newTicketKeys(),
		listeners: map[string]*listener{},
	}
}

// listener is one bound socket and the front end currently serving it.
type listener struct {
	m     *Manager
	id    string
	cfg   config.Listener
	sock  net.Listener
	certs *certSet // nil without TLS
	gen   atomic.Pointer[generation]
	conns atomic.Int64
	perIP ipCounter
	// maxConns and maxPerIP are cfg's own limits (zero: the Manager's),
	// kept where the accept loop reads them without m.mu.
	maxConns, maxPerIP atomic.Int64
	done               chan struct{} // closed when the accept loop has returned

	// stopping is closed, and ctx canceled, when the listener stops:
	// handshakes in progress end and nothing more reaches a front end.
	stopping chan struct{}
	ctx      context.Context
	cancel   context.CancelFunc

	refused  refusals
	refusing atomic.Int32 // refusal replies being written
	counters *counters    // totals for Stats, kept across re-binds
}

// generation is one front end, the TLS settings it was built with and the
// connections it was handed.
type generation struct {
	queue    *connQueue
	fe       Frontend
	implicit *tls.Config // non-nil for implicit TLS
	conns    connSet
}

// Apply creates or changes listener id and returns when it is live: bound
// and serving with the new settings. If anything fails (bad settings, a
// keystore that does not load, an address in use) nothing changes and the
// listener keeps serving as before. It is Prepare and Commit.
func (m *Manager) Apply(id string, cfg config.Listener) error {
	m.changeMu.Lock()
	defer m.changeMu.Unlock()
	c, err := m.Prepare(id, cfg, nil)
	if err != nil {
		return err
	}
	c.Commit()
	return nil
}

// Change is a prepared listener change: bound and built, not serving yet.
// Exactly one of Commit and Abort must follow.
type Change struct {
	m        *Manager
	id       string
	cfg      config.Listener
	old      *listener // the listener it replaces, if any
	sock     net.Listener
	certs    *certSet
	gen      *generation
	counters *counters // the old listener's, or new ones
}

// Prepare readies listener id with cfg without touching what serves: it
// validates cfg, loads its certificate, binds its address (a socket that
// stays is reused) and builds its front end with build (nil means
// Options.NewFrontend). None of it holds the lock Status takes, so a slow
// bind or build never makes Status wait. If it fails nothing changed.
//
// Callers serialize changes: no other Prepare, Apply or Remove of the same
// listener may run until the Change is committed or aborted.
func (m *Manager) Prepare(id string, cfg config.Listener, build NewFrontendFunc) (*Change, error) {
	if err := cfg.Validate(); err != nil {
		return nil, errkind.With(ErrInvalid, fmt.Errorf("listener %q: %w", id, err))
	}
	if build == nil {
		build = m.opts.NewFrontend
	}
	m.mu.Lock()
	old := m.listeners[id]
	m.mu.Unlock()

	c := &Change{m: m, id: id, cfg: cfg, old: old, counters: &counters{}}
	if old != nil {
		c.counters = old.counters
	}
	var tlsCfg *tls.Config
	if cfg.TLS.Mode != config.TLSNone {
		var err error
		if c.certs, err = m.certs.newCertSet(cfg.TLS); err != nil {
			return nil, errkind.With(ErrInvalid, fmt.Errorf("listener %q: %w", id, err))
		}
		if tlsCfg, err = tlsConfig(cfg, c.certs, m.tickets); err != nil {
			m.certs.releaseSet(c.certs)
			return nil, errkind.With(ErrInvalid, fmt.Errorf("listener %q: %w", id, err))
		}
		tlsCfg = countHandshakes(tlsCfg, c.counters)
	}

	if old != nil && old.cfg.Addr() == cfg.Addr() {
		c.sock = old.sock
	} else {
		var err error
		if c.sock, err = net.Listen("tcp", cfg.Addr()); err != nil {
			m.certs.releaseSet(c.certs)
			return nil, errkind.With(ErrConflict, fmt.Errorf("listener %q: cannot bind %s: %w", id, cfg.Addr(), err))
		}
	}

	var err error
	if c.gen, err = m.newGeneration(cfg, c.sock.Addr(), tlsCfg, build); err != nil {
		if !c.reusesSocket() {
			c.sock.Close()
		}
		m.certs.releaseSet(c.certs)
		return nil, errkind.With(ErrInvalid, fmt.Errorf("listener %q: %w", id, err))
	}
	return c, nil
}

func (c *Change) reusesSocket() bool { return c.old != nil && c.sock == c.old.sock }

// Commit makes the change live: the new front end takes the next
// connection; the one it replaces drains in the background.
func (c *Change) Commit() {
	m := c.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if c.reusesSocket() {
		// Same socket: swap the front end in place.
		prev := c.old.gen.Swap(c.gen)
		m.certs.releaseSet(c.old.certs)
		c.old.certs, c.old.cfg = c.certs, c.cfg
		c.old.setLimits(c.cfg)
		m.drain(prev)
	} else {
		l := &listener{m: m, id: c.id, cfg: c.cfg, sock: c.sock, certs: c.certs, counters: c.counters, done: make(chan struct{}), stopping: make(chan struct{})}
		l.ctx, l.cancel = context.WithCancel(context.Background())
		l.setLimits(c.cfg)
		l.gen.Store(c.gen)
		m.listeners[c.id] = l
		go m.acceptLoop(l)
		if c.old != nil {
			m.stop(c.old)
		}
	}
	m.log.Info("listener live", "id", c.id, "protocol", c.cfg.Protocol, "address", c.sock.Addr().String(), "tls", c.cfg.TLS.Mode)
}

// Abort undoes Prepare: the socket it bound is closed, its front end shut
// down; the listener serves as before.
func (c *Change) Abort() {
	c.gen.queue.Close()
	ctx, cancel := context.WithTimeout(context.Background(), c.m.opts.DrainTimeout)
	_ = c.gen.fe.Shutdown(ctx)
	cancel()
	if !c.reusesSocket() {
		c.sock.Close()
	}
	c.m.certs.releaseSet(c.certs)
}

func (m *Manager) newGeneration(cfg config.Listener, addr net.Addr, tlsCfg *tls.Config, build NewFrontendFunc) (*generation, error) {
	gen := &generation{queue: newConnQueue(addr)}
	var starttls *tls.Config
	switch cfg.TLS.Mode {
	case config.TLSImplicit:
		gen.implicit = tlsCfg
	case config.TLSStartTLS:
		starttls = tlsCfg
	}
	fe, err := build(cfg, starttls)
	if err != nil {
		return nil, err
	}
	gen.fe = fe
	go func() {
		if err := fe.Serve(gen.queue); err != nil && !errors.Is(err, net.ErrClosed) {
			m.log.Error("front end stopped", "address", addr.String(), "err", err)
		}
	}()
	return gen, nil
}

// drain retires a front end: it gets no new connections and its sessions
// may finish within the drain timeout; the connections still open then are
// closed here, so no front end can hold a session past the deadline.
func (m *Manager) drain(g *generation) {
	g.queue.Close()
	m.drains.Add(1)
	go func() {
		defer m.drains.Done()
		ctx, cancel := context.WithTimeout(context.Background(), m.opts.DrainTimeout)
		defer cancel()
		shut := make(chan struct{})
		go func() {
			defer close(shut)
			_ = g.fe.Shutdown(ctx)
		}()
		select {
		case <-shut:
		case <-ctx.Done():
		}
		if n := g.conns.len(); n > 0 {
			m.log.Info("closing sessions still open after the drain", "address", g.queue.Addr().String(), "sessions", n)
			g.conns.closeAll()
		}
		<-shut
	}()
}

// stop closes a listener's socket, waits for its accept loop and drains
// its front end. Called with m.mu held.
func (m *Manager) stop(l *listener) {
	close(l.stopping)
	l.cancel()
	l.sock.Close()
	<-l.done
	m.drain(l.gen.Load())
	m.certs.releaseSet(l.certs)
}

// Remove stops listener id and frees its port; sessions in flight drain in
// the background.
func (m *Manager) Remove(id string) error {
	m.changeMu.Lock()
	defer m.changeMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.listeners[id]
	if !ok {
		return errkind.With(ErrNotFound, fmt.Errorf("listener %q does not exist", id))
	}
	delete(m.listeners, id)
	m.stop(l)
	m.log.Info("listener removed", "id", id, "address", l.cfg.Addr())
	return nil
}

// Shutdown stops every listener and waits for sessions to drain until ctx
// is done.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.changeMu.Lock()
	defer m.changeMu.Unlock()
	m.mu.Lock()
	for id, l := range m.listeners {
		delete(m.listeners, id)
		m.stop(l)
	}
	m.mu.Unlock()
	done := make(chan struct{})
	go func() { m.drains.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Status is what one listener really does.
type Status struct {
	// Address is the bound host:port.
	Address  string
	Protocol string
	Mode     string
	Bound    bool
	// CertificateFingerprint is the SHA-256 fingerprint of the served
	// leaf certificate, in keytool's notation; empty without TLS.
	CertificateFingerprint string
	CertificateNotAfter    time.Time
	OpenConnections        int64
	// LastError is the latest problem, such as a keystore that failed to
	// reload (the previous certificate keeps serving).
	LastError string
	// Certificates describes each certificate the listener serves, the
	// default (whose fingerprint is CertificateFingerprint) first.
	Certificates []CertificateStatus
}

// CertificateStatus is one certificate source of a listener.
type CertificateStatus struct {
	// Source names the keystore (and alias) or PEM files.
	Source string
	// Names are the names it serves (DNS names, or the common name).
	Names       []string
	Fingerprint string
	NotAfter    time.Time
	// Served is false while handshakes do not get it: a certificate that
	// must be stapled without a good OCSP response.
	Served bool
	// OCSP describes its stapling, "" when it names no responder.
	OCSP string
	// LastError is why the latest reload failed (the previous certificate
	// keeps serving).
	LastError string
}

// Status reports what listener id really does.
func (m *Manager) Status(id string) (Status, bool) {
	m.mu.Lock() // Commit changes l.cfg and l.certs in place
	defer m.mu.Unlock()
	l, ok := m.listeners[id]
	if !ok {
		return Status{}, false
	}
	st := Status{
		Address:         l.sock.Addr().String(),
		Protocol:        l.cfg.Protocol,
		Mode:            l.cfg.TLS.Mode,
		Bound:           true,
		OpenConnections: l.conns.Load(),
	}
	if l.certs != nil {
		l.certs.status(&st, l.cfg.TLS)
	}
	return st, true
}

// IDs lists the listeners.
func (m *Manager) IDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.listeners))
	for id := range m.listeners {
		ids = append(ids, id)
	}
	return ids
}
