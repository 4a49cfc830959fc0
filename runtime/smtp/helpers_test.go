package smtp

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

const (
	testHostname = "mail.example.com"
	testPassword = "correct horse"
)

// memBackend is an in-memory Backend: local domain example.com with the
// users alice, bob and full (whose mailbox is full).
type memBackend struct {
	mu       sync.Mutex
	messages []delivered
	// deliverErr, when set, is returned by Deliver.
	deliverErr error
}

type delivered struct {
	from       string
	recipients []string
	body       string
}

func (b *memBackend) CheckRecipient(_ context.Context, address string) error {
	at := strings.LastIndexByte(address, '@')
	if at < 0 || !strings.EqualFold(address[at+1:], "example.com") {
		return fmt.Errorf("recipient %q: %w", address, ErrRelayDenied)
	}
	switch strings.ToLower(address[:at]) {
	case "alice", "bob", "full":
		return nil
	}
	return fmt.Errorf("recipient %q: %w", address, ErrUnknownRecipient)
}

func (b *memBackend) Deliver(_ context.Context, from string, recipients []string, body []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.deliverErr != nil {
		return b.deliverErr
	}
	for _, r := range recipients {
		if strings.HasPrefix(r, "full@") {
			return fmt.Errorf("mailbox %q: %w", r, ErrQuotaExceeded)
		}
	}
	b.messages = append(b.messages, delivered{from, append([]string(nil), recipients...), string(body)})
	return nil
}

func (b *memBackend) Authenticate(_ context.Context, username, password string) error {
	if (username == "alice@example.com" || username == "bob@example.com") && password == testPassword {
		return nil
	}
	return fmt.Errorf("user %q: %w", username, ErrAuthFailed)
}

// relayBackend is a memBackend that can relay: Submit records the message
// as Deliver does, with the sender prefixed by "relayed by <user>: ".
type relayBackend struct{ *memBackend }

var _ Relayer = relayBackend{}

func newRelayBackend() *relayBackend { return &relayBackend{&memBackend{}} }

func (b relayBackend) Submit(ctx context.Context, user, from string, recipients []string, body []byte) error {
	return b.Deliver(ctx, "relayed by "+user+": "+from, recipients, body)
}

func (b *memBackend) delivered() []delivered {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]delivered(nil), b.messages...)
}

// testCert is the servers' certificate, self-signed for testHostname and
// 127.0.0.1 and made once per test binary.
func testCert(t testing.TB) *testutil.Certificate {
	t.Helper()
	return testutil.SelfSigned(t, testHostname, "127.0.0.1")
}

func serverTLSConfig(t testing.TB) *tls.Config {
	t.Helper()
	return testCert(t).ServerConfig()
}

// clientTLSConfig trusts testCert.
func clientTLSConfig(t testing.TB) *tls.Config {
	t.Helper()
	return testCert(t).ClientConfig(testHostname)
}

// certFile writes testCert as PEM for external clients and returns its path.
func certFile(t testing.TB) string {
	t.Helper()
	return testCert(t).WriteCAFile(t, t.TempDir())
}

// testServer is a Server on a free 127.0.0.1 port.
type testServer struct {
	*Server
	addr    string
	backend *memBackend
}

type tlsMode int

const (
	modeStartTLS tlsMode = iota
	modeImplicit
	modeNone
)

// startServer starts a server in mode with opts (Hostname filled in, and
// Backend if nil: the returned memBackend) and stops it when the test ends.
func startServer(t testing.TB, mode tlsMode, opts Options) *testServer {
	t.Helper()
	be := &memBackend{}
	switch b := opts.Backend.(type) {
	case nil:
		opts.Backend = be
	case *relayBackend:
		be = b.memBackend
	}
	opts.Hostname = testHostname
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	switch mode {
	case modeStartTLS:
		opts.TLSConfig = serverTLSConfig(t)
	case modeImplicit:
		ln = tls.NewListener(ln, serverTLSConfig(t))
	}
	if opts.AuthLimiter == nil {
		opts.AuthLimiter = testutil.NoAuthLimit()
	}
	srv := New(opts)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testServer{Server: srv, addr: ln.Addr().String(), backend: be}
}

// textConn is a raw protocol client for transcript tests.
type textConn struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func dial(t testing.TB, addr string, implicit bool) *textConn {
	t.Helper()
	var tlsConfig *tls.Config
	if implicit {
		tlsConfig = clientTLSConfig(t)
	}
	nc := testutil.Dial(t, addr, tlsConfig)
	nc.SetDeadline(time.Now().Add(testutil.HangGuard))
	return &textConn{t: t, nc: nc, r: bufio.NewReader(nc)}
}

// reply reads one (possibly multi-line) reply and returns its lines joined
// by "\n".
func (c *textConn) reply() string {
	c.t.Helper()
	var lines []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading reply after %q: %v", lines, err)
		}
		line = strings.TrimRight(line, "\r\n")
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

func (c *textConn) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatal(err)
	}
}

// cmd sends line and returns the reply.
func (c *textConn) cmd(line string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.reply()
}

// startTLS upgrades the connection after a 220 to STARTTLS.
func (c *textConn) startTLS() {
	c.t.Helper()
	tc := tls.Client(c.nc, clientTLSConfig(c.t))
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.nc = tc
	c.r = bufio.NewReader(tc)
}
