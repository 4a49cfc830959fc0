package listener

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

const (
	testPassword = "changeit"
	testAlias    = "mail"
)

// testKeystore is a keystore file with one private key entry (alias "mail")
// for a self-signed certificate, optionally with trusted entries.
type testKeystore struct {
	path        string
	fingerprint string
	cert        *x509.Certificate
}

// newKeystore writes a keystore with a fresh key of spec for 127.0.0.1,
// 127.0.0.2 and mail.example.com into dir/name.
func newKeystore(t testing.TB, dir, name string, spec keystore.KeySpec, trusted ...*x509.Certificate) *testKeystore {
	t.Helper()
	ks := &testKeystore{path: filepath.Join(dir, name)}
	ks.rewrite(t, spec, trusted...)
	return ks
}

// rewrite replaces the private key entry with a new key and certificate
// (and the trusted entries with trusted), as a renewal would.
func (ks *testKeystore) rewrite(t testing.TB, spec keystore.KeySpec, trusted ...*x509.Certificate) {
	t.Helper()
	c := testutil.WriteKeystore(t, testutil.Keystore{
		Path: ks.path, Password: testPassword, Alias: testAlias, Key: spec,
		Hosts:   []string{"mail.example.com", "127.0.0.1", "127.0.0.2"},
		Trusted: trusted,
	})
	ks.cert = c.TLS.Leaf
	ks.fingerprint = keystore.Fingerprint(ks.cert)
}

var ecdsaKey = keystore.KeySpec{Algorithm: "ECDSA"}

// testCA issues client certificates.
type testCA struct {
	cert *x509.Certificate
	key  any
}

func newCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := keystore.GenerateKey(ecdsaKey)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

// clientCert issues a client certificate for cn.
func (ca *testCA) clientCert(t testing.TB, cn string) tls.Certificate {
	t.Helper()
	key, err := keystore.GenerateKey(ecdsaKey)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// lineFrontend is a small line protocol standing in for SMTP/IMAP/POP3:
// it greets with "HELLO <tag> <tls>", answers "STARTTLS" with "GO" and a
// handshake (when it has a STARTTLS config), "QUIT" with "BYE" and
// anything else with "<tag> <line>". tag names the generation (the n-th
// front end the factory built), so tests see which front end serves a
// connection.
type lineFrontend struct {
	tag      string
	starttls *tls.Config

	mu     sync.Mutex
	lns    []net.Listener
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// lineFactory builds lineFrontends and counts them.
type lineFactory struct{ n atomic.Int64 }

func (f *lineFactory) build(l config.Listener, starttls *tls.Config) (Frontend, error) {
	n := f.n.Add(1)
	return &lineFrontend{tag: fmt.Sprintf("%s#%d", l.Protocol, n), starttls: starttls, conns: map[net.Conn]struct{}{}}, nil
}

func (fe *lineFrontend) Refusal(perClient bool) string {
	if perClient {
		return "FULL " + fe.tag + " per-client\r\n"
	}
	return "FULL " + fe.tag + "\r\n"
}

func (fe *lineFrontend) Serve(ln net.Listener) error {
	fe.mu.Lock()
	fe.lns = append(fe.lns, ln)
	fe.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		fe.mu.Lock()
		if fe.closed {
			fe.mu.Unlock()
			c.Close()
			continue
		}
		fe.conns[c] = struct{}{}
		fe.wg.Add(1)
		fe.mu.Unlock()
		go func() {
			defer fe.wg.Done()
			fe.serveConn(c)
			fe.mu.Lock()
			delete(fe.conns, c)
			fe.mu.Unlock()
		}()
	}
}

func tlsState(c net.Conn) string {
	if tc, ok := c.(*tls.Conn); ok {
		if !tc.ConnectionState().HandshakeComplete {
			return "tls-not-handshaken"
		}
		return "tls"
	}
	return "plain"
}

func (fe *lineFrontend) serveConn(c net.Conn) {
	defer c.Close()
	fmt.Fprintf(c, "HELLO %s %s\r\n", fe.tag, tlsState(c))
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "QUIT":
			io.WriteString(c, "BYE\r\n")
			return
		case line == "STARTTLS" && fe.starttls != nil && tlsState(c) == "plain":
			io.WriteString(c, "GO\r\n")
			tc := tls.Server(c, fe.starttls)
			if err := tc.Handshake(); err != nil {
				return
			}
			c, r = tc, bufio.NewReader(tc)
		default:
			fmt.Fprintf(c, "%s %s %s\r\n", fe.tag, tlsState(c), line)
		}
	}
}

func (fe *lineFrontend) Shutdown(ctx context.Context) error {
	fe.mu.Lock()
	fe.closed = true
	for _, ln := range fe.lns {
		ln.Close()
	}
	fe.mu.Unlock()
	done := make(chan struct{})
	go func() { fe.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		fe.mu.Lock()
		for c := range fe.conns {
			c.Close()
		}
		fe.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// newManager returns a Manager with lineFrontends, fast keystore polling,
// logs in the test log and everything stopped when the test ends.
func newManager(t testing.TB, opts Options) (*Manager, *lineFactory) {
	t.Helper()
	f := &lineFactory{}
	if opts.NewFrontend == nil {
		opts.NewFrontend = f.build
	}
	if opts.CertPollInterval == 0 {
		opts.CertPollInterval = 20 * time.Millisecond
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	m := New(opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return m, f
}

// testWriter sends log lines to t.Log, and drops them once the test ended.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // a log line after the test ended
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// tlsListener is a listener config on 127.0.0.1 with the keystore ks.
func tlsListener(port int, mode string, ks *testKeystore) config.Listener {
	l := config.Listener{Protocol: config.ProtocolIMAP, Address: "127.0.0.1", Port: port, TLS: config.TLS{Mode: mode}}
	if ks != nil {
		l.TLS.KeystorePath = ks.path
		l.TLS.KeystorePassword = testPassword
	}
	return l
}

// apply applies l as id and fails the test on error.
func apply(t testing.TB, m *Manager, id string, l config.Listener) {
	t.Helper()
	if err := m.Apply(id, l); err != nil {
		t.Fatalf("Apply(%q): %v", id, err)
	}
}

// client is a line-protocol client.
type client struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func newClient(t testing.TB, nc net.Conn) *client {
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(testutil.HangGuard))
	return &client{t: t, nc: nc, r: bufio.NewReader(nc)}
}

// dialPlain connects without TLS.
func dialPlain(t testing.TB, addr string) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, testutil.HangGuard)
	if err != nil {
		t.Fatal(err)
	}
	return newClient(t, nc)
}

// dialTLS connects with implicit TLS, trusting nothing but reporting
// what the server presented.
func dialTLS(t testing.TB, addr string, cfg *tls.Config) (*client, error) {
	t.Helper()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg.InsecureSkipVerify = true
	d := &net.Dialer{Timeout: testutil.HangGuard}
	nc, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	return newClient(t, nc), nil
}

func mustDialTLS(t testing.TB, addr string) *client {
	t.Helper()
	c, err := dialTLS(t, addr, nil)
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	return c
}

// fingerprint is the certificate the server presented.
func (c *client) fingerprint() string {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		c.t.Fatal("not a TLS connection")
	}
	return keystore.Fingerprint(tc.ConnectionState().PeerCertificates[0])
}

func (c *client) line() (string, error) {
	s, err := c.r.ReadString('\n')
	return strings.TrimRight(s, "\r\n"), err
}

func (c *client) mustLine() string {
	c.t.Helper()
	s, err := c.line()
	if err != nil {
		c.t.Fatalf("reading: %v (got %q)", err, s)
	}
	return s
}

func (c *client) cmd(line string) string {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, line+"\r\n"); err != nil {
		c.t.Fatal(err)
	}
	return c.mustLine()
}

// startTLS upgrades the connection.
func (c *client) startTLS(cfg *tls.Config) error {
	c.t.Helper()
	if got := c.cmd("STARTTLS"); got != "GO" {
		c.t.Fatalf("STARTTLS: %q", got)
	}
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg.InsecureSkipVerify = true
	tc := tls.Client(c.nc, cfg)
	if err := tc.Handshake(); err != nil {
		return err
	}
	c.nc, c.r = tc, bufio.NewReader(tc)
	return nil
}
