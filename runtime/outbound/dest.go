package outbound

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/dnsclient"
	"github.com/mailstack/terraform-provider-mailstack/runtime/tlspolicy"
)

// dest is one destination: a recipient domain, or "relay".
type dest struct {
	key string

	mu    sync.Mutex
	jobs  []*job
	conns int
	ready chan struct{} // signalled when a job is added or the engine closes
}

func (d *dest) signal() {
	select {
	case d.ready <- struct{}{}:
	default:
	}
}

// enqueueJob adds j to its destination and starts a connection for it if
// the destination has fewer than MaxConnections and more jobs than
// connections.
func (e *Engine) enqueueJob(key string, j *job) {
	e.mu.Lock()
	d := e.dests[key]
	if d == nil {
		d = &dest{key: key, ready: make(chan struct{}, 1)}
		e.dests[key] = d
	}
	e.mu.Unlock()
	d.mu.Lock()
	d.jobs = append(d.jobs, j)
	start := d.conns < e.opts.MaxConnections && len(d.jobs) > 0 && (d.conns == 0 || len(d.jobs) > 1)
	if start {
		d.conns++
	}
	d.mu.Unlock()
	d.signal()
	if start {
		e.wg.Add(1)
		go e.work(d)
	}
}

// take returns d's next job; with wait, it waits up to the idle timeout
// for one. nil means none (or the engine is closing).
func (e *Engine) take(d *dest, wait bool) *job {
	var timer *time.Timer
	for {
		if e.ctx.Err() != nil {
			// Closing: what waits stays queued for the next start.
			return nil
		}
		d.mu.Lock()
		for len(d.jobs) > 0 {
			j := d.jobs[0]
			d.jobs[0] = nil
			d.jobs = d.jobs[1:]
			if j.it.gone.Load() {
				e.jobDone(j)
				continue
			}
			d.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return j
		}
		d.mu.Unlock()
		if !wait {
			return nil
		}
		if timer == nil {
			timer = time.NewTimer(e.opts.IdleTimeout)
		}
		select {
		case <-d.ready:
		case <-timer.C:
			return nil
		case <-e.ctx.Done():
			timer.Stop()
			return nil
		}
	}
}

// takeAll empties d's job list.
func (d *dest) takeAll() []*job {
	d.mu.Lock()
	defer d.mu.Unlock()
	jobs := d.jobs
	d.jobs = nil
	return jobs
}

// work is one connection's life: it takes d's jobs until none comes for
// the idle timeout.
func (e *Engine) work(d *dest) {
	defer e.wg.Done()
	var c *conn
	var o *outgoing // the job to send next
	defer func() {
		if c != nil {
			c.quit()
		}
		d.mu.Lock()
		d.conns--
		left := len(d.jobs) > 0 && d.conns == 0 && e.ctx.Err() == nil
		if left {
			d.conns++
		}
		d.mu.Unlock()
		if left { // a job arrived as this connection gave up waiting
			e.wg.Add(1)
			go e.work(d)
		}
	}()
	for {
		if o == nil {
			j := e.take(d, c != nil)
			if j == nil {
				return
			}
			o = &outgoing{j: j}
		}
		if c != nil && c.set != e.set.Load() && !o.written() {
			// Configure ran since this connection was made (another relay,
			// a stricter TLS policy): it carries no more messages.
			c.quit()
			c = nil
		}
		if c == nil {
			var err error
			c, err = e.connect(e.ctx, d.key)
			if err != nil {
				// Every job waiting for this destination would meet the
				// same wall: they are deferred (or failed) together.
				o.close()
				for _, jj := range append([]*job{o.j}, d.takeAll()...) {
					e.complete(jj, nil, err, "")
				}
				return
			}
		}
		if o.env == nil && !e.open(o, c) {
			o = nil
			continue
		}
		next, err := e.send(c, d, o)
		if err != nil {
			c.nc.Close()
			if next != nil && next.written() {
				// Its commands went out on the connection that failed.
				next.close()
				e.complete(next.j, nil, err, c.remote)
				next = nil
			}
			c = nil
		}
		o = next
	}
}

// outgoing is a job on its way out: its body, once open, and the
// transaction's envelope.
type outgoing struct {
	j     *job
	env   *envelope
	body  io.Closer
	began bool // the end of data is being sent: the send log knows
}

func (o *outgoing) written() bool { return o.env != nil && o.env.written }

func (o *outgoing) close() {
	if o.body != nil {
		o.body.Close()
	}
}

// open opens o's body and makes its envelope; when the body cannot be
// read, the attempt is recorded as failed and open reports false.
func (e *Engine) open(o *outgoing, c *conn) bool {
	f, err := e.q.Open(o.j.entry.ID)
	if err != nil {
		e.complete(o.j, nil, err, c.remote)
		return false
	}
	j := o.j
	o.body = f
	o.env = &envelope{
		from: j.entry.From, rcpts: j.rcpts, size: j.entry.Size,
		eightBit: j.entry.EightBit, utf8: j.entry.SMTPUTF8, body: f,
		beforeDot: func() error {
			o.began = true
			return e.q.BeginSend(j.entry.ID, j.rcpts)
		},
	}
	return true
}

// send runs o's transaction on c and records its results. When another of
// d's jobs waits and c may pipeline it, its commands go out behind o's end
// of data (conn.transaction); send returns that job, written or not, to be
// sent next.
func (e *Engine) send(c *conn, d *dest, o *outgoing) (next *outgoing, err error) {
	defer o.close()
	var nextEnv *envelope
	if c.set == e.set.Load() && e.ctx.Err() == nil {
		if j := e.take(d, false); j != nil {
			next = &outgoing{j: j}
			if e.open(next, c) {
				nextEnv = next.env
			} else {
				next = nil
			}
		}
	}
	j := o.j
	replies, err := c.transaction(o.env, nextEnv)
	// Write down which recipients the peer accepted before anything else,
	// so that a kill during the durable commit below sends none again.
	var delivered []string
	if o.began {
		for i, r := range replies {
			if r != nil && r.Code/100 == 2 {
				delivered = append(delivered, j.rcpts[i])
			}
		}
		if err := e.q.Replied(j.entry.ID, j.rcpts, delivered); err != nil {
			e.log.Warn("writing the send log", "id", j.entry.ID, "err", err)
		}
	}
	if err == nil {
		e.logDelivery(j, replies, c)
	}
	// The results are committed (a group commit, shared with the other
	// connections' and the submissions', and allowed to wait for them)
	// while this connection goes on with the destination's next job: what
	// the peer accepted is in the send log already, so a kill before the
	// commit lands sends none of it again, and the message's next attempt
	// cannot start before the commit, because the job counts as running
	// until then.
	began := o.began
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.completeLater(j, replies, err, c.remote)
		if began {
			e.q.Recorded(j.entry.ID, delivered)
		}
	}()
	return next, err
}

func (e *Engine) logDelivery(j *job, replies []*Reply, c *conn) {
	for i, r := range replies {
		if r == nil {
			continue
		}
		e.log.Info("outbound delivery", "id", j.entry.ID, "to", j.rcpts[i], "remote", c.remote,
			"tls", c.tlsInfo(), "reply", r.String())
	}
}

// connect opens a connection to destination key: the relay, or the MX
// hosts of a domain.
func (e *Engine) connect(ctx context.Context, key string) (*conn, error) {
	set := e.set.Load()
	var c *conn
	var err error
	if key == "relay" && set.relay != nil {
		c, err = e.connectRelay(ctx, set, set.relay)
	} else {
		c, err = e.connectMX(ctx, set, key)
	}
	if err != nil {
		return nil, err
	}
	c.set = set
	return c, nil
}

func (e *Engine) connectRelay(ctx context.Context, set *settings, r *config.Relay) (*conn, error) {
	host, port, _ := net.SplitHostPort(r.Address)
	mode := r.Mode
	if mode == "" {
		mode = config.TLSStartTLS
	}
	pol := set.eval.ForRelay(host, mode != config.TLSNone)
	addrs, _, err := set.resolver.Addrs(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("relay %s: %w", r.Address, err)
	}
	var errs []error
	for _, ip := range addrs {
		c, err := e.dialHost(ctx, dialSpec{
			host: host, addr: net.JoinHostPort(ip.String(), port), implicitTLS: mode == config.TLSImplicit,
			noTLS: mode == config.TLSNone, policy: pol, roots: set.roots, sessions: set.sessions,
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if r.Username != "" {
			if err := c.auth(r.Username, r.Password); err != nil {
				c.quit()
				errs = append(errs, err)
				continue
			}
		}
		return c, nil
	}
	return nil, errors.Join(errs...)
}

// permanentError is a routing failure that no retry will fix.
type permanentError struct{ reply *Reply }

func (p *permanentError) Error() string { return p.reply.String() }

func (e *Engine) connectMX(ctx context.Context, set *settings, domain string) (*conn, error) {
	mxs, secure, err := set.resolver.MX(ctx, domain)
	implicit := false
	switch {
	case errors.Is(err, dnsclient.ErrNotFound):
		// RFC 5321 section 5.1: the domain is its own MX.
		mxs, implicit = []dnsclient.MX{{Host: domain}}, true
	case err != nil:
		return nil, fmt.Errorf("MX lookup for %s: %w", domain, err)
	case len(mxs) == 1 && mxs[0].Host == ".":
		return nil, &permanentError{&Reply{Code: 556, Enhanced: "5.1.10",
			Text: domain + " accepts no mail (null MX, RFC 7505)"}}
	}
	dom := set.eval.ForDomain(ctx, domain)
	var errs []error
	for _, mx := range mxs {
		if !dom.AllowsMX(mx.Host) {
			err := fmt.Errorf("MX %s is not listed in the MTA-STS policy (enforce) of %s", mx.Host, domain)
			e.reportPolicyFailure(dom.ReportPolicy(), mx.Host, err)
			errs = append(errs, err)
			continue
		}
		addrs, addrSecure, err := set.resolver.Addrs(ctx, mx.Host)
		if err != nil {
			if implicit && errors.Is(err, dnsclient.ErrNotFound) {
				return nil, &permanentError{&Reply{Code: 550, Enhanced: "5.1.2",
					Text: domain + " has no MX and no address record"}}
			}
			errs = append(errs, err)
			continue
		}
		pol, err := dom.ForMX(ctx, mx.Host, secure || implicit && addrSecure)
		if err != nil {
			e.reportPolicyFailure(tlspolicy.DANEReportPolicy(domain, mx.Host), mx.Host, err)
			errs = append(errs, err)
			continue
		}
		for _, ip := range addrs {
			c, err := e.dialHost(ctx, dialSpec{
				host: mx.Host, domain: domain, addr: net.JoinHostPort(ip.String(), strconv.Itoa(e.opts.SMTPPort)),
				policy: pol, roots: set.roots, sessions: set.sessions,
			})
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
		}
	}
	return nil, errors.Join(errs...)
}

// dialHost dials one address; an opportunistic STARTTLS handshake that
// fails is followed by a plain-text connection (RFC 7435).
func (e *Engine) dialHost(ctx context.Context, s dialSpec) (*conn, error) {
	s.helo = e.set.Load().hostname
	s.dialer = e.opts.Dial
	report := e.reportSession(&s)
	c, err := dial(ctx, s)
	report.done(ctx, c, err)
	if errors.Is(err, errNoTLSRetry) {
		e.log.Warn("opportunistic STARTTLS failed; delivering without TLS", "host", s.host, "err", err)
		s.noTLS = true
		c, err = dial(ctx, s)
	}
	if err != nil {
		var pe *tlspolicy.Error
		if errors.As(err, &pe) {
			e.log.Warn("TLS policy not met; mail stays queued", "host", s.host, "addr", s.addr, "err", err)
		}
		return nil, err
	}
	if c.reportErr != nil {
		e.log.Warn("TLS policy in testing mode not met; delivering anyway (RFC 8461 section 5)", "host", s.host, "err", c.reportErr)
	}
	return c, nil
}

// oneLine flattens a joined error for a queue entry and a DSN.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}
