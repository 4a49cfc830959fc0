package runtime

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"path/filepath"
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

// StoreDir is the mail store's folder in a state directory.
const StoreDir = "mail"

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
	store   store.Backend
	limiter *authlimit.Limiter
	out     *outboundMail // set once, before any front end is built
	metrics *metrics.Metrics
	server  atomic.Pointer[config.Server]
}

func newFrontends(dir string, log *slog.Logger, m *metrics.Metrics) (*frontends, error) {
	st, err := store.Open(filepath.Join(dir, StoreDir), store.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("opening mail store: %w", err)
	}
	return &frontends{log: log, store: st, metrics: m, limiter: authlimit.New(authlimit.DefaultPolicy, m.AuthEvent)}, nil
}

func (f *frontends) close() {
	if err := f.store.Close(); err != nil {
		f.log.Error("closing mail store", "err", err)
	}
}

// setServer makes s the settings front ends built from now on use.
func (f *frontends) setServer(s config.Server) { f.server.Store(&s) }

func (f *frontends) build(l config.Listener, starttls *tls.Config) (listener.Frontend, error) {
	return f.buildWith(*f.server.Load(), l, starttls)
}

// builder builds front ends with server settings srv, before they are
// the ones in force (SetServer prepares listeners with them).
func (f *frontends) builder(srv config.Server) listener.NewFrontendFunc {
	return func(l config.Listener, starttls *tls.Config) (listener.Frontend, error) {
		return f.buildWith(srv, l, starttls)
	}
}

func (f *frontends) buildWith(srv config.Server, l config.Listener, starttls *tls.Config) (listener.Frontend, error) {
	log := f.log.With("protocol", l.Protocol, "listener", l.Addr())
	insecure := l.TLS.Mode == config.TLSNone
	switch l.Protocol {
	case config.ProtocolSMTP, config.ProtocolSubmission:
		return smtp.New(smtp.Options{
			Backend:           &smtpBackend{store: f.store, server: &f.server, out: f.out, metrics: f.metrics},
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
			Store:             f.store,
			Logger:            log,
			TLSConfig:         starttls,
			AllowInsecureAuth: insecure,
			MaxLiteralSize:    srv.MaxMessageBytes,
			AuthLimiter:       f.limiter,
		}), nil
	case config.ProtocolPOP3:
		return pop3.New(pop3.Options{
			Backend:           pop3Backend{store: f.store},
			Hostname:          srv.Hostname,
			TLSConfig:         starttls,
			AllowInsecureAuth: insecure,
			AuthLimiter:       f.limiter,
			Logger:            log,
		}), nil
	}
	return nil, fmt.Errorf("protocol %q is not served by this runtime; this is always a bug (config validation lets it through)", l.Protocol)
}
