package outbound

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/queue"
	"github.com/mailstack/terraform-provider-mailstack/runtime/smtp"
	"github.com/mailstack/terraform-provider-mailstack/runtime/tlsrpt"
)

// sink is a destination MX: the runtime's own SMTP front end (real
// protocol, STARTTLS) with a backend that keeps what it is given.
type sink struct {
	addr string
	cert *testutil.Certificate
	be   *sinkBackend
	logs *testutil.SyncBuffer
}

type sinkBackend struct {
	mu       sync.Mutex
	msgs     []sinkMsg
	sessions int
	// reply, when it returns an error for the n-th delivery (from 1), is
	// how that delivery is refused.
	reply func(n int) error
	n     int
	// users may log in (submission sinks: a relay).
	users map[string]string
}

type sinkMsg struct {
	from  string
	rcpts []string
	body  string
}

func (b *sinkBackend) CheckRecipient(_ context.Context, address string) error {
	if strings.HasPrefix(address, "unknown@") {
		return fmt.Errorf("%s: %w", address, smtp.ErrUnknownRecipient)
	}
	return nil
}

func (b *sinkBackend) Deliver(_ context.Context, from string, rcpts []string, body []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n++
	if b.reply != nil {
		if err := b.reply(b.n); err != nil {
			return err
		}
	}
	b.msgs = append(b.msgs, sinkMsg{from, append([]string(nil), rcpts...), string(body)})
	return nil
}

func (b *sinkBackend) Authenticate(_ context.Context, user, pass string) error {
	if pw, ok := b.users[user]; ok && pw == pass {
		return nil
	}
	return smtp.ErrAuthFailed
}

func (b *sinkBackend) Submit(ctx context.Context, user, from string, rcpts []string, body []byte) error {
	return b.Deliver(ctx, from, rcpts, body)
}

func (b *sinkBackend) messages() []sinkMsg {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]sinkMsg(nil), b.msgs...)
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	b *sinkBackend
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.b.mu.Lock()
		l.b.sessions++
		l.b.mu.Unlock()
	}
	return c, err
}

// startSink starts a destination on 127.0.0.1 with a certificate for
// hosts, offering STARTTLS (or implicit TLS). submission makes it a relay
// that requires AUTH.
func startSink(t testing.TB, implicit, submission bool, hosts ...string) *sink {
	t.Helper()
	return startSinkWith(t, testutil.SelfSigned(t, hosts...), implicit, submission, hosts[0])
}

// startSinkWith is startSink with a given certificate (and chain).
func startSinkWith(t testing.TB, cert *testutil.Certificate, implicit, submission bool, hostname string) *sink {
	t.Helper()
	s := &sink{cert: cert, be: &sinkBackend{}, logs: &testutil.SyncBuffer{}}
	var be smtp.Backend = s.be
	if !submission {
		be = mxOnly{s.be}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln = countingListener{ln, s.be}
	opts := smtp.Options{Backend: be, Hostname: hostname, Submission: submission,
		Logger: slog.New(slog.NewTextHandler(s.logs, nil))}
	if implicit {
		ln = tls.NewListener(ln, s.cert.ServerConfig())
	} else {
		opts.TLSConfig = s.cert.ServerConfig()
	}
	srv := smtp.New(opts)
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	s.addr = ln.Addr().String()
	return s
}

// mxOnly hides the sink's Submit so that the MX service sees a plain
// Backend.
type mxOnly struct{ *sinkBackend }

func (m mxOnly) Submit() {}

// memLocal is this server's mailboxes: it keeps DSNs and local deliveries.
type memLocal struct {
	mu   sync.Mutex
	msgs map[string][]string
}

func (l *memLocal) Deliver(_ context.Context, rcpts []string, body []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range rcpts {
		if strings.HasPrefix(r, "ghost@") {
			return errNoUser
		}
	}
	if l.msgs == nil {
		l.msgs = map[string][]string{}
	}
	for _, r := range rcpts {
		l.msgs[r] = append(l.msgs[r], string(body))
	}
	return nil
}

var errNoUser = errors.New("no such user")

func (l *memLocal) get(rcpt string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.msgs[rcpt]...)
}

// harness is an engine on a fresh queue with a fake clock.
type harness struct {
	t     *testing.T
	e     *Engine
	q     *queue.Queue
	clock *testutil.Clock
	local *memLocal
	logs  *testutil.SyncBuffer
	// reports are the engine's TLS reports, written only by h.report.
	reports    *tlsrpt.Reports
	reportsDir string
}

func newHarness(t *testing.T, port int, s config.Server, tweak ...func(*Options)) *harness {
	t.Helper()
	return newHarnessIn(t, t.TempDir(), port, s, tweak...)
}

// newHarnessIn is newHarness on the queue (and state) in dir.
func newHarnessIn(t *testing.T, dir string, port int, s config.Server, tweak ...func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, clock: testutil.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)), local: &memLocal{}, logs: &testutil.SyncBuffer{}}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	q, err := queue.Open(dir, queue.Options{Now: h.clock.Now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	h.q = q
	if s.Hostname == "" {
		s.Hostname = "mail.ours.test"
	}
	h.reportsDir = filepath.Join(dir, "tlsrpt")
	h.reports, err = tlsrpt.Open(tlsrpt.Options{Dir: h.reportsDir, Organization: "mail.ours.test",
		Contact: "postmaster@ours.test", FlushInterval: -1, Now: h.clock.Now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Queue: q, Local: h.local, LocalPermanent: func(err error) bool { return errors.Is(err, errNoUser) },
		StateDir: dir, Now: h.clock.Now, Logger: log, SMTPPort: port, IdleTimeout: 200 * time.Millisecond,
		TLSReports: h.reports}
	for _, f := range tweak {
		f(&opts)
	}
	e, err := New(opts, s)
	if err != nil {
		t.Fatal(err)
	}
	h.e = e
	e.Start()
	t.Cleanup(func() {
		e.Close()
		h.reports.Close()
		q.Close()
		if t.Failed() {
			t.Logf("engine log:\n%s", h.logs.String())
		}
	})
	return h
}

func testMessage(from, to, subject string) []byte {
	return []byte("From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + subject + "@ours.test>\r\n\r\nBody of " + subject + ".\r\n.leading dot\r\n")
}

func (h *harness) submit(from string, rcpts ...string) queue.Entry {
	h.t.Helper()
	env := queue.Envelope{From: from, User: from}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, queue.Recipient{Address: r, Local: strings.HasSuffix(r, "@ours.test")})
	}
	en, err := h.e.Submit(env, testMessage(from, strings.Join(rcpts, ", "), "m"+fmt.Sprint(time.Now().UnixNano())))
	if err != nil {
		h.t.Fatal(err)
	}
	return en
}

// waitGone waits until message id has left the queue.
func (h *harness) waitGone(id string) {
	h.t.Helper()
	testutil.Eventually(h.t, "message "+id+" to leave the queue", func() bool {
		_, err := h.q.Entry(id)
		return errors.Is(err, queue.ErrNotFound)
	})
}

// waitAttempted waits until every queued recipient of id has had at least
// n attempts, and returns the entry.
func (h *harness) waitAttempted(id string, n int) queue.Entry {
	h.t.Helper()
	var en queue.Entry
	testutil.Eventually(h.t, fmt.Sprintf("message %s to have %d attempts", id, n), func() bool {
		var err error
		en, err = h.q.Entry(id)
		if err != nil {
			return false
		}
		for _, r := range en.Pending() {
			if r.Attempts < n {
				return false
			}
		}
		h.e.mu.Lock()
		defer h.e.mu.Unlock()
		it := h.e.items[id]
		return it != nil && it.running == 0
	})
	return en
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
