package outbound

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/dnsclient"
	"github.com/mailstack/terraform-provider-mailstack/runtime/queue"
	"github.com/mailstack/terraform-provider-mailstack/runtime/tlspolicy"
	"github.com/mailstack/terraform-provider-mailstack/runtime/tlsrpt"
)

// Local is this server's mail store: the transport of local recipients and
// where delivery status notifications go.
type Local interface {
	// Deliver stores body for recipients and returns when it is durable.
	Deliver(ctx context.Context, recipients []string, body []byte) error
}

// Defaults for zero Options fields.
const (
	DefaultMaxConnections = 20
	DefaultIdleTimeout    = 2 * time.Second
	// tlsSessionCacheSize bounds the TLS sessions kept for resumption,
	// one per MX address and policy.
	tlsSessionCacheSize = 1024
	// mtaSTSCacheFile is kept in Options.StateDir.
	mtaSTSCacheFile = "mta-sts-cache.json"
)

// Options configures an Engine. Queue and Local are required.
type Options struct {
	Queue *queue.Queue
	Local Local
	// LocalPermanent reports whether a Local.Deliver error will not go
	// away (no such user); the others are retried. Nil means none is.
	LocalPermanent func(error) bool
	// Hostname is the EHLO name and the Reporting-MTA of DSNs when the
	// server settings have none.
	Hostname string
	// StateDir keeps the MTA-STS policy cache; empty keeps it in memory.
	StateDir string
	// Now is the clock; nil means time.Now. Tests move it and call Wake.
	Now func() time.Time
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Dial opens TCP connections; nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// SMTPPort is the port of MX hosts; zero means 25 (Postfix's
	// smtp_tcp_port). TLSA records are looked up for it.
	SMTPPort int
	// HTTPSPort is where MTA-STS policies are fetched; zero means 443.
	HTTPSPort int
	// MaxConnections bounds the connections to one destination; zero
	// means DefaultMaxConnections (Postfix's default_destination_
	// concurrency_limit).
	MaxConnections int
	// IdleTimeout is how long a connection waits for the destination's
	// next message before it QUITs; zero means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// TLSReports counts the TLS sessions of MX deliveries (tlsreport.go);
	// nil counts none. The engine does not close it.
	TLSReports *tlsrpt.Reports
}

// settings is the part of the configuration that can change while the
// engine runs.
type settings struct {
	hostname string
	relay    *config.Relay
	resolver *dnsclient.Resolver
	eval     *tlspolicy.Evaluator
	roots    *x509.CertPool
	retry    config.RetrySchedule
	// sessions start empty with every configuration, so that none
	// outlives the trusted CAs it was verified against.
	sessions *tlspolicy.Sessions
}

// Engine delivers the queue. Its methods are safe for concurrent use.
type Engine struct {
	opts Options
	q    *queue.Queue
	log  *slog.Logger
	set  atomic.Pointer[settings]

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{}

	mu      sync.Mutex
	items   map[string]*item
	dests   map[string]*dest
	started bool // Start ran: Submit dispatches what it queues itself
	closed  bool // Close ran: nothing new is dispatched
}

// item is a queued message as the scheduler sees it.
type item struct {
	id   string
	next time.Time
	// running counts the jobs in flight; a dispatcher claims an idle item
	// by setting it to 1 under Engine.mu before it knows the jobs, so that
	// no other one starts it too.
	running int
	gone    atomic.Bool // left the queue (delivered, or dropped by the operator) while jobs ran
}

// New returns an engine for opts and the outbound settings of s. It loads
// the queue's entries but delivers nothing before Start.
func New(opts Options, s config.Server) (*Engine, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Dial == nil {
		d := &net.Dialer{}
		opts.Dial = d.DialContext
	}
	if opts.SMTPPort == 0 {
		opts.SMTPPort = 25
	}
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = DefaultMaxConnections
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.LocalPermanent == nil {
		opts.LocalPermanent = func(error) bool { return false }
	}
	e := &Engine{
		opts: opts, q: opts.Queue, log: opts.Logger,
		wake:  make(chan struct{}, 1),
		items: map[string]*item{},
		dests: map[string]*dest{},
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	if err := e.Configure(s); err != nil {
		return nil, err
	}
	opts.TLSReports.SetLookup(e.lookupTXT)
	entries, err := e.q.Entries()
	if err != nil {
		return nil, err
	}
	for _, en := range entries {
		e.items[en.ID] = &item{id: en.ID, next: en.NextAttempt}
	}
	return e, nil
}

// Configure makes s's outbound settings (relay, TLS policies, resolvers,
// CAs, retry schedule) the ones new connections use.
func (e *Engine) Configure(s config.Server) error {
	var servers []string
	for _, r := range s.DNSResolvers {
		addr, err := config.ResolverAddr(r)
		if err != nil {
			return err
		}
		servers = append(servers, addr)
	}
	res, err := dnsclient.New(servers)
	if err != nil {
		return fmt.Errorf("outbound DNS: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if s.CACertificatesPEM != "" {
		certs, err := config.ParseCertificates(s.CACertificatesPEM)
		if err != nil {
			return fmt.Errorf("ca_certificates_pem: %w", err)
		}
		for _, c := range certs {
			roots.AddCert(c)
		}
	}
	cache := ""
	if e.opts.StateDir != "" {
		cache = filepath.Join(e.opts.StateDir, mtaSTSCacheFile)
	}
	var relay *config.Relay
	if s.Relay != nil {
		r := *s.Relay
		relay = &r
	}
	hostname := s.Hostname
	if hostname == "" {
		hostname = e.opts.Hostname
	}
	e.set.Store(&settings{
		hostname: hostname,
		relay:    relay,
		resolver: res,
		roots:    roots,
		retry:    s.Queue.Retry(),
		sessions: tlspolicy.NewSessions(tlsSessionCacheSize),
		eval: tlspolicy.New(tlspolicy.Options{
			Resolver: res, Roots: roots, Overrides: s.TLSPolicies, CacheFile: cache,
			Now: e.opts.Now, Logger: e.log, HTTPSPort: e.opts.HTTPSPort,
		}),
	})
	return nil
}

// Start starts delivering.
func (e *Engine) Start() {
	e.mu.Lock()
	e.started = true
	e.mu.Unlock()
	e.wg.Add(1)
	go e.schedule()
}

// Close stops delivering: connections end after their current
// transaction's reply, and Close returns when every one has. What was not
// delivered stays queued.
func (e *Engine) Close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	e.mu.Lock()
	for _, d := range e.dests {
		d.signal()
	}
	e.mu.Unlock()
	e.wg.Wait()
}

// Wake makes the scheduler look at the queue now, as after a change of
// the clock.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Submit queues a message (durably) and starts its delivery at once,
// with the entry in hand: neither the scheduler's look at the whole
// queue nor a read of the entry back from the index stands between the
// 250 of the submission and the first attempt.
func (e *Engine) Submit(env queue.Envelope, body []byte) (queue.Entry, error) {
	en, err := e.q.Enqueue(env, body)
	if err != nil {
		return en, err
	}
	it := &item{id: en.ID, next: en.NextAttempt}
	e.mu.Lock()
	e.items[en.ID] = it
	now := e.started && !e.closed
	if now {
		it.running = 1 // claimed: the scheduler leaves it alone
		e.wg.Add(1)
	}
	e.mu.Unlock()
	if now {
		defer e.wg.Done()
		e.start(it, en)
	}
	return en, nil
}

// RetryNow schedules message id's next attempt for now.
func (e *Engine) RetryNow(id string) error {
	if _, err := e.q.Entry(id); err != nil {
		return err
	}
	e.mu.Lock()
	if it, ok := e.items[id]; ok {
		it.next = e.opts.Now()
	}
	e.mu.Unlock()
	e.Wake()
	return nil
}

// Drop removes message id from the queue without telling its sender.
// Attempts in flight finish but their results are discarded.
func (e *Engine) Drop(id string) error {
	if err := e.q.Remove(id); err != nil {
		return err
	}
	e.mu.Lock()
	if it, ok := e.items[id]; ok {
		it.gone.Store(true)
		delete(e.items, id)
	}
	e.mu.Unlock()
	e.log.Info("queued message dropped by the operator", "id", id)
	return nil
}

// schedule dispatches due messages until the engine closes.
func (e *Engine) schedule() {
	defer e.wg.Done()
	for {
		now := e.opts.Now()
		var due []*item
		next := now.Add(time.Minute)
		e.mu.Lock()
		for _, it := range e.items {
			switch {
			case it.running > 0:
			case !it.next.After(now):
				it.running = 1 // claimed, see item
				due = append(due, it)
			case it.next.Before(next):
				next = it.next
			}
		}
		e.mu.Unlock()
		for _, it := range due {
			e.dispatch(it)
		}
		t := time.NewTimer(next.Sub(now))
		select {
		case <-e.ctx.Done():
			t.Stop()
			return
		case <-e.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// job is the part of one message that goes to one destination.
type job struct {
	it    *item
	entry queue.Entry
	rcpts []string
}

// dispatch starts the jobs of a due message the scheduler claimed.
func (e *Engine) dispatch(it *item) {
	en, err := e.q.Entry(it.id)
	if err != nil {
		e.mu.Lock()
		delete(e.items, it.id)
		e.mu.Unlock()
		if !errors.Is(err, queue.ErrNotFound) {
			e.log.Error("reading queue entry", "id", it.id, "err", err)
		}
		return
	}
	e.start(it, en)
}

// start starts the jobs of claimed message it, whose entry is en.
func (e *Engine) start(it *item, en queue.Entry) {
	set := e.set.Load()
	var local []string
	remote := map[string][]string{}
	for _, r := range en.Pending() {
		switch {
		case r.Local:
			local = append(local, r.Address)
		case set.relay != nil:
			remote["relay"] = append(remote["relay"], r.Address)
		default:
			remote[domainOf(r.Address)] = append(remote[domainOf(r.Address)], r.Address)
		}
	}
	jobs := len(remote)
	if len(local) > 0 {
		jobs++
	}
	if jobs == 0 {
		e.finish(it)
		e.mu.Lock()
		it.running = 0
		e.mu.Unlock()
		return
	}
	e.mu.Lock()
	it.running = jobs
	e.mu.Unlock()
	if len(local) > 0 {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.deliverLocal(&job{it: it, entry: en, rcpts: local})
		}()
	}
	for key, rcpts := range remote {
		e.enqueueJob(key, &job{it: it, entry: en, rcpts: rcpts})
	}
}

func domainOf(addr string) string {
	return strings.ToLower(addr[strings.LastIndexByte(addr, '@')+1:])
}
