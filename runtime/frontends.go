package runtime

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/mailstack/terraform-provider-mailstack/runtime/authlimit"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/imap"
	"github.com/mailstack/terraform-provider-mailstack/runtime/listener"
	"github.com/mailstack/terraform-provider-mailstack/runtime/metrics"
	"github.com/mailstack/terraform-provider-mailstack/runtime/pop3"
	"github.com/mailstack/terraform-provider-mailstack/runtime/smtp"
	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
)

// frontendSettings is what a protocol's front end takes from the server
// settings when it is built; a front end is rebuilt only when it changes.
// (Domains and connection limits are read live.)
func frontendSettings(protocol string, s config.Server) any {
	switch protocol {
	case config.ProtocolSMTP, config.ProtocolSubmission:
		return [3]any{s.Hostname, s.MaxMessageBytes, s.MaxRecipients}
	case config.ProtocolIMAP:
		return s.MaxMessageBytes
	case config.ProtocolPOP3:
		return s.Hostname
	}
	return nil
}

// Every front end tells a client refused by a connection limit why.
var (
	_ listener.Refuser = (*smtp.Server)(nil)
	_ listener.Refuser = (*imap.Server)(nil)
	_ listener.Refuser = (*pop3.Server)(nil)
)

// frontends builds protocol front ends on the shared store, with one AUTH
// limiter for all of them: failed logins count per client address whatever
// the protocol and listener.
type frontends struct {
	log     *slog.Logger
	stores  mailStores // the store in force (store.go)
	limiter *authlimit.Limiter
	out     *outboundMail // set once, before any front end is built
	metrics *metrics.Metrics
	server  atomic.Pointer[config.Server]
}

// newFrontends opens the store srv names.
func newFrontends(ctx context.Context, dir string, srv config.Server, log *slog.Logger, m *metrics.Metrics) (*frontends, error) {
	st, err := openStore(ctx, dir, srv, log)
	if err != nil {
		return nil, err
	}
	f := &frontends{log: log, metrics: m, limiter: authlimit.New(authlimit.DefaultPolicy, m.AuthEvent)}
	f.stores.set(st, 0)
	return f, nil
}

func (f *frontends) close() { f.stores.close(f.log) }

// setServer makes s the settings front ends built from now on use.
func (f *frontends) setServer(s config.Server) { f.server.Store(&s) }

func (f *frontends) build(l config.Listener, starttls *tls.Config) (listener.Frontend, error) {
	return f.buildWith(*f.server.Load(), f.stores.current(), l, starttls)
}

// builder builds front ends with server settings srv and store st, before
// they are the ones in force (SetServer prepares listeners with them). A
// front end keeps the store it was built with: its sessions finish on it
// when a new store takes over.
func (f *frontends) builder(srv config.Server, st store.Backend) listener.NewFrontendFunc {
	return func(l config.Listener, starttls *tls.Config) (listener.Frontend, error) {
		return f.buildWith(srv, st, l, starttls)
	}
}

func (f *frontends) buildWith(srv config.Server, st store.Backend, l config.Listener, starttls *tls.Config) (listener.Frontend, error) {
	log := f.log.With("protocol", l.Protocol, "listener", l.Addr())
	insecure := l.TLS.Mode == config.TLSNone
	switch l.Protocol {
	case config.ProtocolSMTP, config.ProtocolSubmission:
		return smtp.New(smtp.Options{
			Backend:           &smtpBackend{store: st, server: &f.server, out: f.out, metrics: f.metrics},
			Hostname:          srv.Hostname,
			Submission:        l.Protocol == config.ProtocolSubmission,
			TLSConfig:         starttls,
			AllowInsecureAuth: insecure,
			MaxMessageBytes:   srv.MaxMessageBytes,
			MaxRecipients:     srv.MaxRecipients,
			AuthLimiter:       f.limiter,
			Logger:            log,
		}), nil
	case config.ProtocolIMAP:
		return imap.New(imap.Options{
			Store:             st,
			Logger:            log,
			TLSConfig:         starttls,
			AllowInsecureAuth: insecure,
			MaxLiteralSize:    srv.MaxMessageBytes,
			AuthLimiter:       f.limiter,
		}), nil
	case config.ProtocolPOP3:
		return pop3.New(pop3.Options{
			Backend:           pop3Backend{store: st},
			Hostname:          srv.Hostname,
			TLSConfig:         starttls,
			AllowInsecureAuth: insecure,
			AuthLimiter:       f.limiter,
			Logger:            log,
		}), nil
	}
	return nil, fmt.Errorf("protocol %q is not served by this runtime; this is always a bug (config validation lets it through)", l.Protocol)
}
