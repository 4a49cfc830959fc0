package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/metrics"
	"github.com/mailstack/terraform-provider-mailstack/runtime/pop3"
	"github.com/mailstack/terraform-provider-mailstack/runtime/smtp"
	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
)

// smtpBackend adapts the store to the SMTP front end: mail is accepted for
// known users of the server's local domains only. The domains are read
// from the server settings in force at each RCPT, so changing them needs
// no new front end.
type smtpBackend struct {
	store   store.Backend
	server  *atomic.Pointer[config.Server]
	out     *outboundMail // Submit (outbound.go)
	metrics *metrics.Metrics
}

var _ smtp.Backend = (*smtpBackend)(nil)

func (b *smtpBackend) CheckRecipient(ctx context.Context, address string) error {
	addr, err := store.CanonicalAddress(address)
	if err != nil {
		return fmt.Errorf("%s: %w", address, smtp.ErrUnknownRecipient)
	}
	_, domain, _ := strings.Cut(addr, "@")
	if !slices.ContainsFunc(b.server.Load().Domains, func(d string) bool { return strings.EqualFold(d, domain) }) {
		return fmt.Errorf("%s: %w", address, smtp.ErrRelayDenied)
	}
	if _, err := b.store.User(addr); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%s: %w", address, smtp.ErrUnknownRecipient)
		}
		return err
	}
	return nil
}

func (b *smtpBackend) Deliver(ctx context.Context, from string, recipients []string, body []byte) error {
	err := b.store.Deliver(ctx, recipients, body)
	b.metrics.Delivery(err, len(recipients))
	if errors.Is(err, store.ErrQuotaExceeded) {
		return fmt.Errorf("%w: %w", smtp.ErrQuotaExceeded, err)
	}
	return err
}

func (b *smtpBackend) Authenticate(ctx context.Context, username, password string) error {
	return authError(b.store.Authenticate(username, password), smtp.ErrAuthFailed)
}

// authError maps the store's authentication failure to a front end's.
func authError(err, failed error) error {
	if errors.Is(err, store.ErrAuthFailed) || errors.Is(err, store.ErrInvalidAddress) {
		return failed
	}
	return err
}

// pop3Backend adapts the store to the POP3 front end.
type pop3Backend struct{ store store.Backend }

var _ pop3.Backend = pop3Backend{}

func (b pop3Backend) Login(ctx context.Context, username, password string) (pop3.Maildrop, error) {
	if err := authError(b.store.Authenticate(username, password), pop3.ErrAuthFailed); err != nil {
		return nil, err
	}
	md, err := b.store.OpenMaildrop(username)
	if errors.Is(err, store.ErrMaildropLocked) {
		return nil, pop3.ErrMaildropLocked
	}
	if err != nil {
		return nil, err
	}
	return pop3Maildrop{md}, nil
}

// pop3Maildrop converts the store's message list to the POP3 type.
type pop3Maildrop struct{ md store.Maildrop }

func (m pop3Maildrop) Messages() ([]pop3.Message, error) {
	msgs, err := m.md.Messages()
	if err != nil {
		return nil, err
	}
	out := make([]pop3.Message, len(msgs))
	for i, msg := range msgs {
		out[i] = pop3.Message{UID: msg.UID, Size: msg.Size}
	}
	return out, nil
}

func (m pop3Maildrop) Open(uid string) (io.ReadCloser, error) { return m.md.Open(uid) }
func (m pop3Maildrop) Commit(uids []string) error             { return m.md.Commit(uids) }
func (m pop3Maildrop) Close() error                           { return m.md.Close() }
