package runtime

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/mail"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/listener"
	"github.com/mailstack/terraform-provider-mailstack/runtime/smtp"
)

// frontends builds protocol front ends on the shared store.
type frontends struct {
	log    *slog.Logger
	server atomic.Pointer[config.Server]
}

func newFrontends(dir string, log *slog.Logger) (*frontends, error) {
	return &frontends{log: log}, nil
}

func (f *frontends) close() {}

// setServer makes s the settings front ends built from now on use.
func (f *frontends) setServer(s config.Server) { f.server.Store(&s) }

func (f *frontends) build(l config.Listener, starttls *tls.Config) (listener.Frontend, error) {
	srv := *f.server.Load()
	log := f.log.With("protocol", l.Protocol, "listener", l.Addr())
	insecure := l.TLS.Mode == config.TLSNone
	switch l.Protocol {
	case config.ProtocolSMTP, config.ProtocolSubmission:
		return smtp.New(smtp.Options{
			Backend:           &mailBackend{server: srv},
			Hostname:          srv.Hostname,
			Submission:        l.Protocol == config.ProtocolSubmission,
			TLSConfig:         starttls,
			AllowInsecureAuth: insecure,
			MaxMessageBytes:   srv.MaxMessageBytes,
			MaxRecipients:     srv.MaxRecipients,
			Logger:            log,
		}), nil
	}
	return nil, fmt.Errorf("protocol %q is not served by this runtime", l.Protocol)
}

// mailBackend adapts the store to the SMTP front end.
type mailBackend struct {
	server config.Server
}

var _ smtp.Backend = (*mailBackend)(nil)

func (b *mailBackend) CheckRecipient(ctx context.Context, address string) error {
	if !b.isLocal(address) {
		return fmt.Errorf("%s: %w", address, smtp.ErrRelayDenied)
	}
	return fmt.Errorf("%s: %w", address, smtp.ErrUnknownRecipient)
}

func (b *mailBackend) Deliver(ctx context.Context, from string, recipients []string, body []byte) error {
	return fmt.Errorf("no mailbox for %s", strings.Join(recipients, ", "))
}

func (b *mailBackend) Authenticate(ctx context.Context, username, password string) error {
	return smtp.ErrAuthFailed
}

// isLocal reports whether address is in one of the server's domains.
func (b *mailBackend) isLocal(address string) bool {
	a, err := mail.ParseAddress("<" + address + ">")
	if err != nil {
		return false
	}
	_, domain, ok := strings.Cut(a.Address, "@")
	return ok && slices.ContainsFunc(b.server.Domains, func(d string) bool { return strings.EqualFold(d, domain) })
}
