package pop3

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
)

// memBackend is an in-memory Backend with one lockable maildrop per user.
type memBackend struct {
	mu       sync.Mutex
	users    map[string]string // name -> password
	drops    map[string][]memMessage
	locked   map[string]bool
	logins   int      // successful logins
	closes   int      // Maildrop.Close calls
	commits  []string // every committed UID, in order
	failWith error    // when set, Login returns it after checking credentials
	badUID   bool     // Messages returns an invalid unique-id
	panicky  bool     // Open panics
}

type memMessage struct {
	uid  string
	body string
}

func newMemBackend() *memBackend {
	return &memBackend{
		users:  map[string]string{"alice": "secret", "bob": "pass word"},
		drops:  map[string][]memMessage{"alice": slices.Clone(fixture), "bob": nil},
		locked: map[string]bool{},
	}
}

// fixture is alice's maildrop. Message 2 has lines starting with "." and a
// last line without CRLF; message 3 has no blank line after its header.
var fixture = []memMessage{
	{"uid-1", "Subject: one\r\n\r\nHello\r\n"},
	{"uid-2", "Subject: two\r\nFrom: a@example.com\r\n\r\n.dotted\r\nline 2\r\n..\r\nlast"},
	{"uid-3", "Subject: three\r\n"},
}

func (b *memBackend) Login(ctx context.Context, username, password string) (Maildrop, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if pw, ok := b.users[username]; !ok || pw != password {
		return nil, ErrAuthFailed
	}
	if b.failWith != nil {
		return nil, b.failWith
	}
	if b.locked[username] {
		return nil, ErrMaildropLocked
	}
	b.locked[username] = true
	b.logins++
	return &memDrop{b: b, user: username}, nil
}

func (b *memBackend) stats() (logins, closes int, commits []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.logins, b.closes, slices.Clone(b.commits)
}

type memDrop struct {
	b    *memBackend
	user string
}

func (d *memDrop) Messages() ([]Message, error) {
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	var msgs []Message
	for _, m := range d.b.drops[d.user] {
		msgs = append(msgs, Message{UID: m.uid, Size: int64(len(m.body))})
	}
	if d.b.badUID && len(msgs) > 0 {
		msgs[0].UID = "evil\r\n+OK"
	}
	return msgs, nil
}

func (d *memDrop) Open(uid string) (io.ReadCloser, error) {
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	if d.b.panicky {
		panic("backend bug")
	}
	for _, m := range d.b.drops[d.user] {
		if m.uid == uid {
			return io.NopCloser(strings.NewReader(m.body)), nil
		}
	}
	return nil, errors.New("no such message")
}

func (d *memDrop) Commit(uids []string) error {
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	d.b.drops[d.user] = slices.DeleteFunc(d.b.drops[d.user], func(m memMessage) bool {
		return slices.Contains(uids, m.uid)
	})
	d.b.commits = append(d.b.commits, uids...)
	return nil
}

func (d *memDrop) Close() error {
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	d.b.locked[d.user] = false
	d.b.closes++
	return nil
}

// testPKI is the servers' certificate, self-signed for localhost and
// 127.0.0.1 and made once per test binary, as TLS configs.
type testPKI struct {
	server *tls.Config
	client *tls.Config
}

func getPKI(t testing.TB) testPKI {
	t.Helper()
	c := testutil.SelfSigned(t, "localhost", "127.0.0.1")
	return testPKI{server: c.ServerConfig(), client: c.ClientConfig("127.0.0.1")}
}

// caFile writes the servers' certificate as PEM for external clients.
func caFile(t testing.TB) string {
	t.Helper()
	return testutil.SelfSigned(t, "localhost", "127.0.0.1").WriteCAFile(t, t.TempDir())
}

// testServer is a running server on 127.0.0.1 with its backend and logs.
type testServer struct {
	srv     *Server
	backend *memBackend
	logs    *testutil.SyncBuffer
	addr    string
	done    chan error // Serve's result
}

// listenerKind says how the test listener serves TLS.
type listenerKind int

const (
	plainInsecure listenerKind = iota // tls.mode = "none" with AllowInsecureAuth
	plainNoAuth                       // tls.mode = "none" without AllowInsecureAuth
	starttls                          // STLS offered
	implicitTLS                       // connections are *tls.Conn
)

// startServer runs a server on a free port and stops it when the test ends.
// Failed-login delays are shortened; adjust further with configure.
func startServer(t testing.TB, kind listenerKind, configure ...func(*Server)) *testServer {
	t.Helper()
	ts := &testServer{backend: newMemBackend(), logs: &testutil.SyncBuffer{}, done: make(chan error, 1)}
	opts := Options{
		Backend:  ts.backend,
		Hostname: "mail.test",
		Logger:   slog.New(slog.NewTextHandler(ts.logs, nil)),

		AuthLimiter: testutil.NoAuthLimit(),
	}
	switch kind {
	case plainInsecure:
		opts.AllowInsecureAuth = true
	case starttls:
		opts.TLSConfig = getPKI(t).server
	}
	ts.srv = New(opts)
	for _, f := range configure {
		f(ts.srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = ln.Addr().String()
	if kind == implicitTLS {
		ln = tls.NewListener(ln, getPKI(t).server)
	}
	go func() { ts.done <- ts.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ts.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-ts.done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

// testClient speaks POP3 line by line with a deadline on every read.
type testClient struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

// dial connects and reads the greeting; implicit TLS when tlsConf is set.
func dial(t testing.TB, addr string, tlsConf *tls.Config) *testClient {
	t.Helper()
	conn := testutil.Dial(t, addr, tlsConf)
	c := &testClient{t: t, conn: conn, r: bufio.NewReader(conn)}
	if g := c.line(); !strings.HasPrefix(g, "+OK") {
		t.Fatalf("greeting = %q", g)
	}
	return c
}

func (c *testClient) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("send %q: %v", s, err)
	}
}

// line reads one response line without CRLF.
func (c *testClient) line() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(testutil.HangGuard))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading response: %v (got %q)", err, l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// cmd sends one command and returns the first response line.
func (c *testClient) cmd(line string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.line()
}

// multi reads the rest of a multi-line response, un-stuffed.
func (c *testClient) multi() []string {
	c.t.Helper()
	var lines []string
	for {
		l := c.line()
		if l == "." {
			return lines
		}
		lines = append(lines, strings.TrimPrefix(l, "."))
	}
}

// stls upgrades the connection after a successful STLS.
func (c *testClient) stls() {
	c.t.Helper()
	if r := c.cmd("STLS"); !strings.HasPrefix(r, "+OK") {
		c.t.Fatalf("STLS: %q", r)
	}
	tc := tls.Client(c.conn, getPKI(c.t).client)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("handshake after STLS: %v", err)
	}
	c.conn = tc
	c.r = bufio.NewReader(tc)
}

// login authenticates with USER/PASS and fails the test otherwise.
func (c *testClient) login(user, pass string) {
	c.t.Helper()
	if r := c.cmd("USER " + user); !strings.HasPrefix(r, "+OK") {
		c.t.Fatalf("USER: %q", r)
	}
	if r := c.cmd("PASS " + pass); !strings.HasPrefix(r, "+OK") {
		c.t.Fatalf("PASS: %q", r)
	}
}

// expectClosed checks that the server closes the connection without
// sending anything more.
func (c *testClient) expectClosed() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(testutil.HangGuard))
	rest, err := io.ReadAll(c.r)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatalf("connection still open; read %q", rest)
		}
	}
	if len(rest) > 0 {
		c.t.Fatalf("unexpected output before close: %q", rest)
	}
}
