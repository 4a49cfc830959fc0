package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/errkind"
	"github.com/mailstack/terraform-provider-mailstack/runtime/acme"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/listener"
	"github.com/mailstack/terraform-provider-mailstack/runtime/metrics"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
)

// mailRuntime is the control API's view of a running runtime.
type mailRuntime struct {
	dir       string
	state     *statedir.Locked // config.json, under the lock held for life
	opts      Options
	log       *slog.Logger
	started   time.Time
	listeners *listener.Manager
	fronts    *frontends
	acme      *acme.Service // ACME keystores (acme.go)
	out       *outboundMail // queue, delivery, DKIM (outbound.go)
	metrics   *metrics.Metrics

	// change serializes changes (the control API's PUTs and DELETEs and the
	// first start). It is held while new listeners bind and build; Status
	// never takes it. It guards metricsSrv.
	change sync.Mutex
	// metricsSrv serves /metrics on doc.Server.MetricsAddress; nil when
	// that is empty or could not be bound at start-up.
	metricsSrv *metricsServer
	mu         sync.Mutex // guards doc and startErrs; held only briefly
	doc        *config.Document
	// startErrs holds why a configured listener could not start (port
	// taken at boot, keystore gone); status reports it as not bound.
	startErrs map[string]string
}

var _ control.Backend = (*mailRuntime)(nil)

func newRuntime(dir string, state *statedir.Locked, doc *config.Document, opts Options) (*mailRuntime, error) {
	rt := &mailRuntime{
		dir:       dir,
		state:     state,
		opts:      opts,
		log:       opts.Logger,
		started:   time.Now(),
		doc:       doc,
		startErrs: map[string]string{},
	}
	rt.metrics = metrics.New(metrics.Sources{
		Listeners: func() []listener.Stats { return rt.listeners.Stats() },
		Queue: func() (int, time.Duration) {
			n, oldest := rt.out.queue.Stats()
			if n == 0 {
				return 0, 0
			}
			return n, time.Since(oldest)
		},
	})
	fronts, err := newFrontends(context.Background(), dir, doc.Server, opts.Logger, rt.metrics)
	if err != nil {
		return nil, err
	}
	fronts.setServer(doc.Server)
	rt.fronts = fronts
	if rt.acme, err = newACME(dir, opts); err != nil {
		fronts.close()
		return nil, err
	}
	if rt.out, err = newOutbound(dir, liveDeliverer{&fronts.stores}, doc, opts.Logger); err != nil {
		rt.acme.Close()
		fronts.close()
		return nil, err
	}
	fronts.out = rt.out
	rt.listeners = listener.New(listener.Options{
		NewFrontend:  fronts.build,
		Logger:       opts.Logger,
		DrainTimeout: opts.DrainTimeout,
		OCSPCacheDir: filepath.Join(dir, "ocsp"),
	})
	rt.setLimits(doc.Server)
	return rt, nil
}

func (rt *mailRuntime) close() {
	rt.change.Lock()
	if rt.metricsSrv != nil {
		rt.metricsSrv.close()
		rt.metricsSrv = nil
	}
	rt.change.Unlock()
	rt.acme.Close()
	rt.out.close()
	rt.fronts.close()
}

// setLimits applies the server's connection limits to every listener.
func (rt *mailRuntime) setLimits(s config.Server) {
	rt.listeners.SetMaxConnections(s.Connections())
	rt.listeners.SetMaxConnectionsPerIP(s.ConnectionsPerIP())
}

// startListeners brings up every configured listener; one that fails is
// logged and reported in status, and the others serve.
func (rt *mailRuntime) startListeners() {
	rt.change.Lock()
	defer rt.change.Unlock()
	rt.mu.Lock()
	doc := rt.doc
	rt.mu.Unlock()
	if a := doc.Server.MetricsAddress; a != "" {
		srv, err := startMetrics(a, rt.metrics.Handler(), rt.log)
		if err != nil {
			rt.log.Error("metrics not served", "err", err)
		}
		rt.metricsSrv = srv
	}
	for id, l := range doc.Listeners {
		if err := rt.listeners.Apply(id, l); err != nil {
			rt.mu.Lock()
			rt.startErrs[id] = err.Error()
			rt.mu.Unlock()
			rt.log.Error("listener failed to start", "id", id, "err", err)
		}
	}
}

func (rt *mailRuntime) Status() control.Status {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	st := control.Status{
		Version:   rt.opts.Version,
		PID:       os.Getpid(),
		StartedAt: rt.started,
		Uptime:    time.Since(rt.started).Round(time.Second).String(),
		Listeners: map[string]control.ListenerStatus{},
	}
	for id := range rt.doc.Listeners {
		st.Listeners[id] = rt.listenerStatus(id)
	}
	st.ACME = rt.acme.Statuses()
	st.Queue = rt.queueSummary()
	return st
}

// listenerStatus is called with rt.mu held.
func (rt *mailRuntime) listenerStatus(id string) control.ListenerStatus {
	if s, ok := rt.listeners.Status(id); ok {
		return apiListenerStatus(s)
	}
	l := rt.doc.Listeners[id]
	return control.ListenerStatus{Protocol: l.Protocol, Mode: l.TLS.Mode, LastError: rt.startErrs[id]}
}

func (rt *mailRuntime) Server() config.Server {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.doc.Server
}

// SetServer keeps the apply promise: it returns only when the settings
// are live, and if any listener cannot take them nothing changes. Front
// ends read the hostname and message limits when they are built, so those
// whose settings change are rebuilt with the new ones first (sockets stay
// bound; their sessions drain once the new ones serve); domains and
// connection limits apply live to every session. A change of store opens
// the new one first (a database that cannot be reached changes nothing),
// then rebuilds every front end on it.
func (rt *mailRuntime) SetServer(ctx context.Context, s config.Server) error {
	rt.change.Lock()
	defer rt.change.Unlock()
	rt.mu.Lock()
	next := rt.doc.Clone()
	prev := rt.doc.Server
	rt.mu.Unlock()
	next.Server = s
	if err := next.Validate(); err != nil {
		return errkind.With(errkind.Invalid, err)
	}
	st := rt.fronts.stores.current()
	var newStore store.Backend
	if !prev.SameStore(&s) {
		var err error
		if newStore, err = openStore(ctx, rt.dir, s, rt.log); err != nil {
			return errkind.With(errkind.Invalid, fmt.Errorf("the server settings were not applied: %w", err))
		}
		st = newStore
	}
	var changes []*listener.Change
	abort := func() {
		for _, c := range changes {
			c.Abort()
		}
		if newStore != nil {
			newStore.Close()
		}
	}
	build := rt.fronts.builder(s, st)
	for _, id := range rt.listeners.IDs() {
		l := next.Listeners[id]
		if newStore == nil && frontendSettings(l.Protocol, prev) == frontendSettings(l.Protocol, s) {
			continue
		}
		c, err := rt.listeners.Prepare(id, l, build)
		if err != nil {
			abort()
			return fmt.Errorf("the server settings were not applied: %w", err)
		}
		changes = append(changes, c)
	}
	if err := ctx.Err(); err != nil {
		abort()
		return err
	}
	// A new metrics address is bound before anything is saved: one in use
	// refuses the whole change.
	var started *metricsServer
	if s.MetricsAddress != prev.MetricsAddress && s.MetricsAddress != "" {
		var err error
		if started, err = startMetrics(s.MetricsAddress, rt.metrics.Handler(), rt.log); err != nil {
			abort()
			return errkind.With(errkind.Conflict, err)
		}
	}
	if err := rt.state.SaveConfig(ctx, next); err != nil {
		abort()
		if started != nil {
			started.close()
		}
		return err
	}
	if s.MetricsAddress != prev.MetricsAddress {
		if rt.metricsSrv != nil {
			rt.metricsSrv.close()
		}
		rt.metricsSrv = started
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.doc = next
	rt.fronts.setServer(s)
	if newStore != nil {
		rt.fronts.stores.set(newStore, rt.opts.DrainTimeout)
		rt.log.Info("mail store changed", "store", s.StoreKind())
	}
	rt.setLimits(s)
	// Validate has checked what Configure parses: resolvers and CAs.
	if err := rt.out.engine.Configure(s); err != nil {
		rt.log.Error("outbound delivery could not take the new server settings", "err", err)
	}
	rt.out.reports.SetOrganization(s.Hostname, reportContact(s))
	for _, c := range changes {
		c.Commit()
	}
	return nil
}

func (rt *mailRuntime) Listener(id string) (control.ListenerObject, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	l, ok := rt.doc.Listeners[id]
	if !ok {
		return control.ListenerObject{}, errkind.With(listener.ErrNotFound, fmt.Errorf("listener %q does not exist", id))
	}
	return control.ListenerObject{ID: id, Config: l, Status: rt.listenerStatus(id)}, nil
}

// PutListener binds and builds the new listener without holding the lock
// Status takes, persists the config, then swaps it in; it returns when
// the listener is live. A failure, or a request that is canceled before
// the swap, leaves everything as it was.
func (rt *mailRuntime) PutListener(ctx context.Context, id string, l config.Listener) (control.ListenerObject, error) {
	rt.change.Lock()
	defer rt.change.Unlock()
	rt.mu.Lock()
	next := rt.doc.Clone()
	rt.mu.Unlock()
	next.Listeners[id] = l
	if err := next.Validate(); err != nil {
		return control.ListenerObject{}, errkind.With(errkind.Invalid, err)
	}
	c, err := rt.listeners.Prepare(id, l, nil)
	if err != nil {
		return control.ListenerObject{}, err
	}
	if err := ctx.Err(); err != nil {
		c.Abort()
		return control.ListenerObject{}, err
	}
	if err := rt.state.SaveConfig(ctx, next); err != nil {
		c.Abort()
		return control.ListenerObject{}, err
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	c.Commit()
	rt.doc = next
	delete(rt.startErrs, id)
	return control.ListenerObject{ID: id, Config: l, Status: rt.listenerStatus(id)}, nil
}

func (rt *mailRuntime) DeleteListener(ctx context.Context, id string) error {
	rt.change.Lock()
	defer rt.change.Unlock()
	rt.mu.Lock()
	_, ok := rt.doc.Listeners[id]
	next := rt.doc.Clone()
	rt.mu.Unlock()
	if !ok {
		return errkind.With(listener.ErrNotFound, fmt.Errorf("listener %q does not exist", id))
	}
	delete(next.Listeners, id)
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := rt.state.SaveConfig(ctx, next); err != nil {
		return err
	}
	rt.mu.Lock()
	rt.doc = next
	delete(rt.startErrs, id)
	rt.mu.Unlock()
	if slices.Contains(rt.listeners.IDs(), id) {
		return rt.listeners.Remove(id)
	}
	return nil
}

// apiListenerStatus is a listener's status as the control API reports it.
func apiListenerStatus(s listener.Status) control.ListenerStatus {
	return control.ListenerStatus{
		Address:                s.Address,
		Protocol:               s.Protocol,
		Mode:                   s.Mode,
		Bound:                  s.Bound,
		CertificateFingerprint: s.CertificateFingerprint,
		CertificateNotAfter:    s.CertificateNotAfter,
		OpenConnections:        s.OpenConnections,
		LastError:              s.LastError,
		Certificates:           apiCertificates(s.Certificates),
	}
}

func apiCertificates(cs []listener.CertificateStatus) []control.CertificateStatus {
	if cs == nil {
		return nil
	}
	out := make([]control.CertificateStatus, len(cs))
	for i, c := range cs {
		out[i] = control.CertificateStatus{Source: c.Source, Names: c.Names, Fingerprint: c.Fingerprint,
			NotAfter: c.NotAfter, Served: c.Served, OCSP: c.OCSP, LastError: c.LastError}
	}
	return out
}
