package runtime

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/runtime/acme"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/listener"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
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

	mu  sync.Mutex // serializes changes; guards doc and startErrs
	doc *config.Document
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
	fronts, err := newFrontends(dir, opts.Logger)
	if err != nil {
		return nil, err
	}
	fronts.setServer(doc.Server)
	rt.fronts = fronts
	if rt.acme, err = newACME(dir, opts); err != nil {
		fronts.close()
		return nil, err
	}
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
	rt.acme.Close()
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
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for id, l := range rt.doc.Listeners {
		if err := rt.listeners.Apply(id, l); err != nil {
			rt.startErrs[id] = err.Error()
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
	return st
}

// listenerStatus is called with rt.mu held.
func (rt *mailRuntime) listenerStatus(id string) control.ListenerStatus {
	if s, ok := rt.listeners.Status(id); ok {
		return s
	}
	l := rt.doc.Listeners[id]
	return control.ListenerStatus{Protocol: l.Protocol, Mode: l.TLS.Mode, LastError: rt.startErrs[id]}
}

func (rt *mailRuntime) Server() config.Server {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.doc.Server
}

func (rt *mailRuntime) SetServer(ctx context.Context, s config.Server) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	next := rt.doc.Clone()
	next.Server = s
	if err := next.Validate(); err != nil {
		return control.Invalid(err)
	}
	if err := rt.state.SaveConfig(ctx, next); err != nil {
		return err
	}
	prev := rt.doc.Server
	rt.doc = next
	rt.fronts.setServer(s)
	rt.setLimits(s)
	// Front ends read the hostname and message limits when they are built:
	// rebuild those whose settings changed, in place (sockets stay bound,
	// sessions drain). The others, and every session on them, are left
	// alone: domains and connection limits apply live.
	for _, id := range rt.listeners.IDs() {
		l := next.Listeners[id]
		if frontendSettings(l.Protocol, prev) == frontendSettings(l.Protocol, s) {
			continue
		}
		if err := rt.listeners.Apply(id, l); err != nil {
			rt.log.Error("listener could not take the new server settings", "id", id, "err", err)
		}
	}
	return nil
}

func (rt *mailRuntime) Listener(id string) (control.ListenerObject, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	l, ok := rt.doc.Listeners[id]
	if !ok {
		return control.ListenerObject{}, control.NotFound("listener %q does not exist", id)
	}
	return control.ListenerObject{ID: id, Config: l, Status: rt.listenerStatus(id)}, nil
}

func (rt *mailRuntime) PutListener(ctx context.Context, id string, l config.Listener) (control.ListenerObject, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	next := rt.doc.Clone()
	next.Listeners[id] = l
	if err := next.Validate(); err != nil {
		return control.ListenerObject{}, control.Invalid(err)
	}
	prev, existed := rt.doc.Listeners[id]
	if err := rt.listeners.Apply(id, l); err != nil {
		return control.ListenerObject{}, err
	}
	if err := rt.state.SaveConfig(ctx, next); err != nil {
		rt.rollback(id, prev, existed)
		return control.ListenerObject{}, err
	}
	rt.doc = next
	delete(rt.startErrs, id)
	return control.ListenerObject{ID: id, Config: l, Status: rt.listenerStatus(id)}, nil
}

// rollback restores listener id after its new settings went live but could
// not be persisted, so memory and config.json agree.
func (rt *mailRuntime) rollback(id string, prev config.Listener, existed bool) {
	var err error
	if existed {
		err = rt.listeners.Apply(id, prev)
	} else {
		err = rt.listeners.Remove(id)
	}
	if err != nil {
		rt.log.Error("rolling back listener failed", "id", id, "err", err)
	}
}

func (rt *mailRuntime) DeleteListener(ctx context.Context, id string) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if _, ok := rt.doc.Listeners[id]; !ok {
		return control.NotFound("listener %q does not exist", id)
	}
	next := rt.doc.Clone()
	delete(next.Listeners, id)
	if err := rt.state.SaveConfig(ctx, next); err != nil {
		return err
	}
	rt.doc = next
	delete(rt.startErrs, id)
	if slices.Contains(rt.listeners.IDs(), id) {
		return rt.listeners.Remove(id)
	}
	return nil
}
