package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/errkind"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/dkim"
	"github.com/mailstack/terraform-provider-mailstack/runtime/outbound"
	"github.com/mailstack/terraform-provider-mailstack/runtime/queue"
	"github.com/mailstack/terraform-provider-mailstack/runtime/smtp"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
	"github.com/mailstack/terraform-provider-mailstack/runtime/store"
	"github.com/mailstack/terraform-provider-mailstack/runtime/tlsrpt"
)

// QueueDir is the folder of a state directory that holds the outbound
// queue.
const QueueDir = "queue"

var (
	_ control.OutboundBackend = (*mailRuntime)(nil)
	_ smtp.Relayer            = (*smtpBackend)(nil)
)

// outboundMail is the runtime's outbound side: the durable queue, the
// engine that delivers it, the DKIM keys that sign what enters it and the
// TLS reports of its deliveries.
type outboundMail struct {
	queue   *queue.Queue
	engine  *outbound.Engine
	dkim    *dkim.Keys
	reports *tlsrpt.Reports
	log     *slog.Logger
}

func newOutbound(dir string, st store.Deliverer, doc *config.Document, log *slog.Logger) (*outboundMail, error) {
	log = log.With("component", "outbound")
	q, err := queue.Open(filepath.Join(dir, QueueDir), queue.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("opening outbound queue: %w", err)
	}
	keys, err := dkim.Open(filepath.Join(dir, statedir.DKIMDir), doc.DKIM)
	if err != nil {
		q.Close()
		return nil, err
	}
	reports, err := tlsrpt.Open(tlsrpt.Options{
		Dir:          filepath.Join(dir, statedir.TLSReportsDir),
		Organization: doc.Server.Hostname, Contact: reportContact(doc.Server),
		Logger: log,
	})
	if err != nil {
		q.Close()
		return nil, err
	}
	eng, err := outbound.New(outbound.Options{
		Queue: q, Local: st, LocalPermanent: localPermanent,
		Hostname: doc.Server.Hostname, StateDir: dir, Logger: log, TLSReports: reports,
	}, doc.Server)
	if err != nil {
		reports.Close()
		q.Close()
		return nil, err
	}
	return &outboundMail{queue: q, engine: eng, dkim: keys, reports: reports, log: log}, nil
}

// reportContact is the contact-info of TLS reports: the postmaster of the
// first local domain, else of the host name.
func reportContact(s config.Server) string {
	if len(s.Domains) > 0 {
		return "postmaster@" + s.Domains[0]
	}
	return "postmaster@" + s.Hostname
}

func (o *outboundMail) close() {
	o.engine.Close()
	if err := o.reports.Close(); err != nil {
		o.log.Warn("writing TLS reports", "err", err)
	}
	o.queue.Close()
}

// localPermanent: a user that does not exist will not come back by itself;
// a full mailbox or a failing disk might get better.
func localPermanent(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalidAddress)
}

// Submit implements smtp.Relayer: a message with recipients in other
// domains is signed with the sender domain's DKIM keys and queued whole,
// its local recipients with it, so that one durable write covers all of
// them and no recipient can get it twice because another failed.
func (b *smtpBackend) Submit(ctx context.Context, user, from string, recipients []string, body []byte) error {
	if b.out == nil {
		return errors.New("outbound mail is not running")
	}
	domains := b.server.Load().Domains
	env := queue.Envelope{From: from, User: user, SMTPUTF8: !isASCII(from), EightBit: !isASCII(string(body))}
	for _, r := range recipients {
		local := slices.ContainsFunc(domains, func(d string) bool { return strings.EqualFold(d, domainOf(r)) })
		env.Recipients = append(env.Recipients, queue.Recipient{Address: r, Local: local})
		env.SMTPUTF8 = env.SMTPUTF8 || !isASCII(r)
	}
	signed, err := b.out.dkim.Sign(body)
	if err != nil {
		return err
	}
	_, err = b.out.engine.Submit(env, signed)
	return err
}

func domainOf(addr string) string { return addr[strings.LastIndexByte(addr, '@')+1:] }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func (rt *mailRuntime) queueSummary() control.QueueSummary {
	n, oldest := rt.out.queue.Stats()
	s := control.QueueSummary{Length: n}
	if n > 0 {
		s.OldestSeconds = int64(time.Since(oldest) / time.Second)
	}
	return s
}

func (rt *mailRuntime) Queue() (control.QueueList, error) {
	entries, err := rt.out.queue.Entries()
	if err != nil {
		return control.QueueList{}, err
	}
	if entries == nil {
		entries = []queue.Entry{}
	}
	return control.QueueList{QueueSummary: rt.queueSummary(), Messages: entries}, nil
}

func (rt *mailRuntime) QueueEntry(id string) (queue.Entry, error) { return rt.out.queue.Entry(id) }
func (rt *mailRuntime) RetryQueued(id string) error               { return rt.out.engine.RetryNow(id) }
func (rt *mailRuntime) DropQueued(id string) error                { return rt.out.engine.Drop(id) }

func (rt *mailRuntime) DKIM(name string) (control.DKIMObject, error) {
	p, err := rt.out.dkim.Get(name)
	if err != nil {
		return control.DKIMObject{}, err
	}
	return dkimObject(p), nil
}

func dkimObject(p dkim.Public) control.DKIMObject {
	return control.DKIMObject{DKIMKey: p.DKIMKey, Name: p.Name, TXT: p.TXT, KeyFileProblem: p.FileProblem}
}

func (rt *mailRuntime) PutDKIM(ctx context.Context, name string, k config.DKIMKey) (control.DKIMObject, error) {
	rt.change.Lock()
	defer rt.change.Unlock()
	if err := k.Validate(); err != nil {
		return control.DKIMObject{}, errkind.With(errkind.Invalid, err)
	}
	if k.Name() != name {
		return control.DKIMObject{}, errkind.With(errkind.Invalid, fmt.Errorf("dkim key %q: the name must be %q, the key's DNS name", name, k.Name()))
	}
	rt.mu.Lock()
	next := rt.doc.Clone()
	rt.mu.Unlock()
	if next.DKIM == nil {
		next.DKIM = map[string]config.DKIMKey{}
	}
	next.DKIM[name] = k
	if err := next.Validate(); err != nil {
		return control.DKIMObject{}, errkind.With(errkind.Invalid, err)
	}
	// The key file first: a config naming a key that is not on disk yet
	// would make one at the next start anyway, but not the same one.
	p, err := rt.out.dkim.Put(k)
	if err != nil {
		return control.DKIMObject{}, err
	}
	if err := rt.state.SaveConfig(ctx, next); err != nil {
		return control.DKIMObject{}, err
	}
	rt.mu.Lock()
	rt.doc = next
	rt.mu.Unlock()
	return dkimObject(p), nil
}

func (rt *mailRuntime) DeleteDKIM(ctx context.Context, name string) error {
	rt.change.Lock()
	defer rt.change.Unlock()
	rt.mu.Lock()
	_, ok := rt.doc.DKIM[name]
	next := rt.doc.Clone()
	rt.mu.Unlock()
	if !ok {
		// Not configured; a key file a lost config.json left behind goes.
		if err := rt.out.dkim.Delete(name); !errors.Is(err, dkim.ErrNotFound) {
			return err
		}
		return errkind.With(dkim.ErrNotFound, fmt.Errorf("dkim key %q does not exist", name))
	}
	delete(next.DKIM, name)
	if err := rt.state.SaveConfig(ctx, next); err != nil {
		return err
	}
	rt.mu.Lock()
	rt.doc = next
	rt.mu.Unlock()
	if err := rt.out.dkim.Delete(name); err != nil && !errors.Is(err, dkim.ErrNotFound) {
		return err
	}
	return nil
}
